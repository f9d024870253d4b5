"""Every grading setting, with its one default and its help text (nbgrader's traitlets style).

The command line (`python -m course_grading grade --help`), the config file
(`c.CourseGrading.<name> = ...` in exercises/nbgrader_config.py) and the README read these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traitlets import Bool, CaselessStrEnum, Float, Integer, Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import PyFileConfigLoader

REPO = Path(__file__).resolve().parent.parent
EXERCISES = REPO / "exercises"


class CourseGrading(Configurable):
    """Limits and choices of one grading run."""

    cell_timeout = Integer(120, help="Seconds one cell may run before it is interrupted "
                                     "(loading a real checkpoint on a slow CPU takes long)."
                           ).tag(config=True)
    startup_timeout = Integer(120, help="Seconds a kernel may take to start.").tag(config=True)
    interrupt_grace = Integer(15, help="Seconds an interrupted cell may take to stop before its "
                                       "kernel is killed and the cell skipped.").tag(config=True)
    submission_timeout = Float(900.0, help="Wall-clock seconds for one whole submission, "
                                           "re-runs included.").tag(config=True)
    jobs = Integer(2, help="Submissions graded in parallel on this machine: the local Dask "
                           "cluster's workers, one thread each (one per core).").tag(config=True)
    scheduler = Unicode("", help="Address of an existing Dask scheduler (tcp://HOST:PORT) whose "
                                 "workers grade the submissions, each on its own machine; empty: "
                                 "a local cluster of --jobs workers.").tag(config=True)
    scheduler_timeout = Integer(30, help="Seconds to wait for the Dask scheduler to answer and "
                                         "for its first worker to join.").tag(config=True)
    worker_failures = Integer(2, help="Times a submission's task may lose its Dask worker "
                                      "(killed, out of memory, machine down) and be re-run "
                                      "elsewhere before it is recorded as failed. On an existing "
                                      "cluster the scheduler's own distributed.scheduler."
                                      "allowed-failures applies.").tag(config=True)
    max_retries = Integer(3, help="Re-runs of a notebook after a cell killed or hung its "
                                  "kernel (that cell is then skipped).").tag(config=True)
    max_output_chars = Integer(20000, help="Characters of output kept per cell.").tag(config=True)
    memory_limit_mb = Integer(4096, help="Address-space limit of a submission's kernel, MB.",
                              ).tag(config=True)
    max_processes = Integer(256, help="Processes and threads a submission's kernel may run at "
                                      "once.").tag(config=True)
    max_file_size_mb = Integer(256, help="Largest file a submission may write, MB.",
                               ).tag(config=True)
    cpu_time_limit = Integer(900, help="CPU seconds a submission's kernel may use.",
                             ).tag(config=True)
    scratch_mb = Integer(1024, help="Size of the submission's private scratch folders "
                                    "(home and /tmp, in memory), MB.").tag(config=True)
    sandbox = Bool(True, help="Run each kernel in a bubblewrap sandbox. Turn off only on a "
                              "machine without bwrap, for trusted submissions.").tag(config=True)
    roster = Unicode("", help="CSV mapping each submission's name to the student's LMS identity "
                              "(columns: submission, name, and email/idnumber for Moodle or "
                              "id/sis_user_id/sis_login_id/section for Canvas).").tag(config=True)
    lms = CaselessStrEnum(["", "canvas", "moodle"], default_value="",
                          help="Also write OUT/<lms>-<assignment>.csv in that LMS's grade-import "
                               "format (needs --roster).").tag(config=True)
    lms_assignment = Unicode("", help="The assignment's column title in the LMS file (default: "
                                      "the assignment, e.g. lesson01).").tag(config=True)
    full_feedback = Bool(False, help="Feedback pages show the whole executed notebook, hidden "
                                     "tests included (nbgrader's pages); by default they name "
                                     "each test, its score and its message.").tag(config=True)


SETTINGS = [name for name in CourseGrading.class_trait_names(config=True)]


def load_config(exercises: Path = EXERCISES) -> Config:
    """The traitlets Config of exercises/nbgrader_config.py (empty if the file is missing)."""
    path = Path(exercises) / "nbgrader_config.py"
    if not path.exists():
        return Config()
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def load_settings(exercises: Path = EXERCISES, **overrides: Any) -> CourseGrading:
    """Settings: the traits' defaults, then the config file, then non-None overrides."""
    settings = CourseGrading(config=load_config(exercises))
    for name, value in overrides.items():
        if value is not None:
            if name not in SETTINGS:
                raise TypeError(f"unknown grading setting {name!r}")
            setattr(settings, name, value)
    return settings


def settings_help() -> dict[str, tuple[Any, str]]:
    """{name: (default, help)} of every setting, for the CLI and the README."""
    traits = CourseGrading.class_traits(config=True)
    return {name: (traits[name].default_value, traits[name].help) for name in SETTINGS}
