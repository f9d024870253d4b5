"""One student's grading process: nbgrader Autograde + GenerateFeedback, watched from outside.

course_utils.grading starts `python -c <load this file> JOB.json` in a new session per student.
The process reports progress as JSON lines (kernel pid, each cell as it starts, a kernel death,
a cell that ignored the interrupt, truncated output, done), so the parent can kill it and its
kernel, and re-run it with the culprit cell skipped. This file imports nothing from the package
(loading course_utils would cost every student a second).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any


def nbgrader_meta(cell: Any) -> dict:
    """The cell's nbgrader metadata, or {} when it has none (or something that is not a dict)."""
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
    return meta if isinstance(meta, dict) else {}


def load_config(exercises: Path) -> Any:
    """The traitlets Config of exercises/nbgrader_config.py (empty if the file is missing)."""
    from traitlets.config.loader import Config, PyFileConfigLoader

    path = Path(exercises) / "nbgrader_config.py"
    if not path.exists():
        return Config()
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def nbgrader_config(exercises: Path, root: Path, db: Path, assignment: str,
                    student: str = ".") -> Any:
    """The course's config, redirected to a temporary course folder and gradebook."""
    config = load_config(exercises)
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{db}"
    config.CourseDirectory.assignment_id = assignment
    config.CourseDirectory.student_id = student
    config.BaseConverter.force = True
    return config


class ErrorLog(logging.Handler):
    """Collects nbgrader's error messages (its exceptions only say "see the log above")."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def summary(self) -> str:
        """The most telling error line."""
        text = "\n".join(self.lines)
        found = re.findall(r"^\s*((?:\w+\.)*\w*(?:Error|Exception)\b.*)$", text, re.M)
        return (found[-1] if found else (self.lines[0] if self.lines else "unknown error"))[:300]


def quiet_nbgrader(level: int = logging.WARNING) -> ErrorLog:
    """Route nbgrader's log (the "traitlets" logger) to an error collector."""
    logger = logging.getLogger("traitlets")
    logger.setLevel(level)
    logger.propagate = False
    errors = ErrorLog()
    logger.handlers = [errors]
    return errors


def guarded_execute() -> type:
    """nbgrader's Execute that reports progress, can skip cells and caps each cell's output."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat.v4 import new_output
    from nbgrader.preprocessors import Execute
    from traitlets import Dict, Integer, List, Unicode

    class GuardedExecute(Execute):
        progress_file = Unicode("").tag(config=True)
        skip_cells = List([]).tag(config=True)
        skip_messages = Dict({}).tag(config=True)
        max_output_chars = Integer(20000).tag(config=True)
        _index, _gid, _chars, _truncated = -1, None, 0, False

        def _emit(self, **event: Any) -> None:
            append_event(self.progress_file, event)

        async def async_start_new_kernel(self, **kwargs: Any) -> None:
            await super().async_start_new_kernel(**kwargs)
            prov = getattr(self.km, "provisioner", None)
            self._emit(event="kernel", pid=getattr(prov, "pid", None),
                       pgid=getattr(prov, "pgid", None))

        async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> Any:
            self._emit(event="timeout", index=self._index, grade_id=self._gid)
            return await super()._async_handle_timeout(timeout, cell)

        def output(self, outs: list, msg: dict, display_id: Any, cell_index: int) -> Any:
            out = super().output(outs, msg, display_id, cell_index)
            if out is None:
                return out
            text = out.get("text") if out.get("output_type") == "stream" else None
            size = len(text) if isinstance(text, str) else len(json.dumps(out.get("data", {})))
            room = self.max_output_chars - self._chars
            self._chars += size
            if size <= room:
                return out
            if outs and outs[-1] is out:
                outs.pop()
            if isinstance(text, str) and room > 0:
                out["text"] = text[:room]
                outs.append(out)
            if not self._truncated:
                outs.append(new_output("stream", name="stdout", text=(
                    f"\n[grader] output truncated after {self.max_output_chars} characters\n")))
                self._truncated = True
            return None

        def preprocess_cell(self, cell: Any, resources: Any, index: int) -> Any:
            if cell.cell_type != "code":
                return super().preprocess_cell(cell, resources, index)
            gid = nbgrader_meta(cell).get("grade_id")
            self._index, self._gid, self._chars, self._truncated = index, gid, 0, False
            self._emit(event="cell", index=index, grade_id=gid, t=time.time())
            original = cell.source
            if index in self.skip_cells:
                cell.source = f"raise RuntimeError({self.skip_messages.get(str(index), '')!r})"
            try:
                return super().preprocess_cell(cell, resources, index)
            except DeadKernelError:
                self._emit(event="dead", index=index, grade_id=gid)
                raise
            except CellTimeoutError:
                self._emit(event="hung", index=index, grade_id=gid)
                raise
            finally:
                cell.source = original
                if self._truncated:
                    self._emit(event="truncated", index=index, grade_id=gid, chars=self._chars)

    return GuardedExecute


def lenient_save_auto_grades() -> type:
    """nbgrader's SaveAutoGrades, except that text on stderr is no failure.

    nbgrader 0.9 gives a test cell zero when anything reaches stderr, so a library warning
    (transformers logs some) would fail a correct answer. Errors still score zero; the warning
    stays visible in the feedback.
    """
    from nbgrader.preprocessors import SaveAutoGrades

    class LenientSaveAutoGrades(SaveAutoGrades):
        def _add_score(self, cell: Any, resources: Any) -> None:
            if cell.cell_type != "code":
                return super()._add_score(cell, resources)
            outputs = cell.outputs
            cell.outputs = [o for o in outputs
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            try:
                super()._add_score(cell, resources)
            finally:
                cell.outputs = outputs

    return LenientSaveAutoGrades


def run_student(job: dict) -> None:
    """Autograde one student, then generate feedback; report progress."""

    def emit(**event: Any) -> None:
        append_event(job["progress"], {**event, "t": time.time()})

    emit(event="start")

    errors = quiet_nbgrader(logging.INFO)
    logging.getLogger("traitlets").addHandler(logging.StreamHandler(sys.stderr))
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,
                                        LimitOutput)

    config = nbgrader_config(Path(job["exercises"]), Path(job["root"]), Path(job["db"]),
                             job["assignment"], job["student"])
    config.Execute.timeout = job["cell_timeout"]
    config.Execute.iopub_timeout = job["iopub_timeout"]
    config.GuardedExecute.progress_file = job["progress"]
    config.GuardedExecute.skip_cells = job["skip"]
    config.GuardedExecute.skip_messages = job["skip_messages"]
    config.GuardedExecute.max_output_chars = job["max_output_chars"]
    # nbgrader's own autograde steps, with Execute and SaveAutoGrades replaced
    config.Autograde.autograde_preprocessors = [
        guarded_execute(), IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
        lenient_save_auto_grades(), AssignLatePenalties, CheckCellMetadata]
    coursedir = CourseDirectory(config=config)
    try:
        Autograde(coursedir=coursedir, config=config).start()
    except BaseException:  # nbgrader failed this notebook; the parent decides what comes next
        emit(event="failed", error=errors.summary())
        return
    emit(event="autograded")
    if not job.get("feedback", True):
        return
    try:
        GenerateFeedback(coursedir=coursedir, config=config).start()
        emit(event="feedback")
    except Exception:
        emit(event="feedback-failed", error=errors.summary())


def main(job_path: str) -> None:
    """Entry point of the student process."""
    # jsonschema imports rfc3987_syntax (3 s of grammar building) for IRI formats that the
    # notebook schema never uses: skip it
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    run_student(json.loads(Path(job_path).read_text(encoding="utf-8")))


def command(job_path: Path) -> list[str]:
    """The command line that runs this file on a job, without importing course_utils."""
    loader = ("import importlib.util as u, sys; s = u.spec_from_file_location("
              "'course_grading_worker', sys.argv[1]); m = u.module_from_spec(s); "
              "s.loader.exec_module(m); m.main(sys.argv[2])")
    return [sys.executable, "-c", loader, str(Path(__file__).resolve()), str(job_path)]


def append_event(path: str | Path, event: dict) -> None:
    """Add one progress event to the file read_events reads (one JSON object per line)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")


def read_events(path: Path) -> list[dict]:
    """The progress events written so far (a line cut short by a kill is dropped)."""
    events = []
    if Path(path).exists():
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return events


def kill_tree(pid: int, events: list[dict]) -> None:
    """Kill a student's process group, its descendants and its kernels' process groups."""
    try:
        import psutil

        for child in psutil.Process(pid).children(recursive=True):
            child.kill()
    except Exception:  # psutil missing, or the process is gone already
        pass
    groups = [pid] + [e["pgid"] for e in events if e.get("event") == "kernel" and e.get("pgid")]
    for group in groups:  # the student process and its kernels each lead their own group
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:  # already gone
            pass
