"""Release and autograde the exercises with nbgrader; no broken submission can stop a batch.

    python -m course_utils.grading release [--assignment lessonNN]
    python -m course_utils.grading SUBMISSIONS_DIR [--assignment lessonNN] [--out OUTDIR]

nbgrader does the work (GenerateAssignment, Autograde, GenerateFeedback, its Gradebook). This
module adds what a batch of real submissions needs: a temporary course folder and gradebook, a
repair pass for damaged notebooks, one killable process per student under a wall-clock limit, a
re-run that skips a cell which killed or hung the kernel, and grades.csv with a reason for every
unusual score. Settings come from exercises/nbgrader_config.py.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from .grading_submissions import Submission, find_submissions, nbgrader_meta, read_notebook, repair
from .grading_worker import command, kill_tree, nbgrader_config, quiet_nbgrader, read_events
from .grading_worker import load_config as _load_config

REPO = Path(__file__).resolve().parent.parent
EXERCISES = REPO / "exercises"
ASSIGNMENT = re.compile(r"lesson\d\d")
STUCK_GRACE_S = 30.0  # past cell timeout + iopub timeout, the watchdog kills a stuck cell


@dataclass
class Settings:
    """Grading limits: per cell (nbgrader's Execute.timeout), per submission, parallel jobs."""

    cell_timeout: int = 120
    iopub_timeout: int = 15
    submission_timeout: float = 900.0
    jobs: int = 2
    max_retries: int = 3
    max_output_chars: int = 20000
    feedback: bool = True


@dataclass
class Result:
    """The grade of one submission: per-question scores, status (ok/partial/failed), reasons."""

    student: str
    scores: dict[str, float]
    max_scores: dict[str, float]
    status: str = "failed"
    reasons: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    feedback: Optional[Path] = None

    @property
    def total(self) -> float:
        """Sum of the question scores."""
        return sum(self.scores.values())

    @property
    def max_total(self) -> float:
        """Maximum possible total."""
        return sum(self.max_scores.values())


def load_config(exercises: Path = EXERCISES) -> Any:
    """The traitlets Config of exercises/nbgrader_config.py."""
    return _load_config(exercises)


def load_settings(exercises: Path = EXERCISES, **overrides: Any) -> Settings:
    """Settings from the config file (Execute.*, CourseGrading.*), then non-None overrides."""
    config = load_config(exercises)
    s = Settings()
    execute, grading = config.get("Execute", {}), config.get("CourseGrading", {})
    s.cell_timeout = int(execute.get("timeout", s.cell_timeout))
    s.iopub_timeout = int(execute.get("iopub_timeout", s.iopub_timeout))
    values = {**{k: v for k, v in grading.items() if hasattr(s, k)},
              **{k: v for k, v in overrides.items() if v is not None}}
    for name, value in values.items():
        setattr(s, name, type(getattr(s, name))(value))
    return s


def _path_with_venv() -> str:
    """PATH with this interpreter's folder first: the kernels' "python" must be this venv's."""
    return os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


# ---------------------------------------------------------------------------------------------
# release


def source_assignments(exercises: Path = EXERCISES) -> list[str]:
    """Assignments (lessonNN folders holding a notebook) under exercises/source, sorted."""
    root = Path(exercises) / "source"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and ASSIGNMENT.fullmatch(p.name) and any(p.glob("*.ipynb")))


def _fast_alembic() -> None:
    """Read the gradebook schema version in-process (nbgrader runs the alembic CLI: seconds)."""
    import nbgrader.api
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    if getattr(nbgrader.api.get_alembic_version, "in_process", False):
        return
    config = Config()
    config.set_main_option("script_location", str(Path(nbgrader.api.__file__).parent / "alembic"))
    head = ScriptDirectory.from_config(config).get_current_head()

    def get_alembic_version() -> str:
        return head

    get_alembic_version.in_process = True  # type: ignore[attr-defined]
    nbgrader.api.get_alembic_version = get_alembic_version


def _generate(exercises: Path, root: Path, assignment: str) -> Path:
    """Copy an assignment's source into `root`; run nbgrader GenerateAssignment there."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    src = Path(exercises) / "source" / assignment
    if not src.is_dir():
        raise SystemExit(f"no exercise source {src}")
    _fast_alembic()
    shutil.copytree(src, root / "source" / assignment,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc"))
    config = nbgrader_config(exercises, root, root / "gradebook.db", assignment)
    errors = quiet_nbgrader()
    try:
        GenerateAssignment(coursedir=CourseDirectory(config=config), config=config).start()
    except Exception as err:
        raise RuntimeError(f"nbgrader could not generate {assignment}: {errors.summary()}") from err
    return root / "release" / assignment


def release(assignments: Optional[list[str]] = None, exercises: Path = EXERCISES,
            dest: Optional[Path] = None) -> list[Path]:
    """Regenerate the student versions (release/lessonNN/) from the sources, deterministically."""
    exercises = Path(exercises)
    dest = Path(dest) if dest is not None else exercises / "release"
    names = assignments or source_assignments(exercises)
    written = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
            out = _generate(exercises, Path(tmp), name)
            for nb in sorted(out.rglob("*.ipynb")):
                text = nb.read_text(encoding="utf-8")
                for local in {tmp, str(REPO), str(exercises.resolve())}:
                    if local in text:
                        raise RuntimeError(f"{name}/{nb.name}: the student version would contain "
                                           f"the local path {local}; remove it from the source")
            target = dest / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(out, target)
            for path in [target, *target.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            written += sorted(target.rglob("*.ipynb"))
    if not assignments and dest.is_dir():  # student versions whose source is gone
        for stale in sorted(dest.iterdir()):
            if stale.is_dir() and ASSIGNMENT.fullmatch(stale.name) and stale.name not in names:
                shutil.rmtree(stale)
    return written


# ---------------------------------------------------------------------------------------------
# grading


def notebook_name(exercises: Path, assignment: str) -> str:
    """File name of the assignment's one exercise notebook."""
    notebooks = sorted((Path(exercises) / "source" / assignment).glob("*.ipynb"))
    if len(notebooks) != 1:
        raise SystemExit(f"exercises/source/{assignment} must hold exactly one notebook "
                         f"(found {len(notebooks)})")
    return notebooks[0].name


def infer_assignment(folder: Path, exercises: Path = EXERCISES) -> str:
    """The assignment the submissions belong to: by notebook file name, else by content."""
    known = source_assignments(exercises)
    if len(known) == 1:
        return known[0]
    notebooks = sorted(Path(folder).rglob("*.ipynb"))
    names = [p.name for p in notebooks]
    expected = {a: notebook_name(exercises, a) for a in known}
    counts = {a: names.count(expected[a]) for a in known}
    if not any(counts.values()):  # STUDENT.ipynb files: compare the cells' text with the sources
        texts = {a: {c.get("source", "").strip()
                     for c in _cells(exercises / "source" / a / expected[a])}
                 for a in known}
        for path in notebooks[:20]:
            cells = {c.get("source", "").strip() for c in _cells(path)} - {""}
            for a in known:
                counts[a] += len(cells & texts[a])
    best = max(known, key=lambda a: counts[a], default=None)
    if best is None or counts[best] == 0:
        raise SystemExit(f"cannot tell which assignment {folder} holds: pass --assignment "
                         f"(one of {', '.join(known) or 'none: exercises/source is empty'})")
    return best


def _cells(path: Path) -> list[dict]:
    """The cells of a notebook file, as plain dicts with string sources ([] if unreadable)."""
    try:
        cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
        return [{**c, "source": "".join(c.get("source", ""))} for c in cells if isinstance(c, dict)]
    except Exception:  # not a notebook: it will be reported when graded
        return []


class _Batch:
    """A temporary nbgrader course in which the submissions of one assignment are graded."""

    def __init__(self, exercises: Path, assignment: str, settings: Settings, root: Path):
        import nbformat

        self.exercises, self.assignment, self.settings, self.root = \
            exercises, assignment, settings, root
        self.notebook = notebook_name(exercises, assignment)
        root.mkdir(parents=True)
        _generate(exercises, root, assignment)
        self.release_nb = nbformat.read(root / "release" / assignment / self.notebook, 4)
        self.source_nb = nbformat.read(root / "source" / assignment / self.notebook, 4)
        self.max_scores = {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c).get("points", 0))
                           for c in self.source_nb.cells if nbgrader_meta(c).get("grade")}
        for sub in ("db", "logs", "progress", "jobs"):
            (root / sub).mkdir()
        self.env = {"PATH": _path_with_venv(), "PYTHONUNBUFFERED": "1",
                    "TOKENIZERS_PARALLELISM": "false"}
        # One torch thread per core and job: two kernels with two threads each on two cores
        # run generation ~10x slower than with one thread each.
        threads = str(max(1, (os.cpu_count() or 1) // max(1, settings.jobs)))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            self.env[name] = os.environ.get(name, threads)
        self.running: dict[int, Path] = {}
        self.lock = threading.Lock()
        self.ids: list[str] = []

    def prepare(self, sub: Submission, sid: str) -> tuple[bool, list[str]]:
        """Check and repair a submission, then put it where nbgrader expects it."""
        import nbformat

        if sub.path is None:
            return False, [sub.note]
        nb, why = read_notebook(sub.path)
        if nb is None:
            return False, [why]
        reasons = ([sub.note] if sub.note else []) + repair(nb, self.release_nb, self.source_nb)
        dest = self.root / "submitted" / sid / self.assignment / self.notebook
        dest.parent.mkdir(parents=True)
        nbformat.write(nb, dest)
        return True, reasons

    def _attempt(self, job: dict, deadline: float) -> tuple[list[dict], str]:
        """Run the student's process once; kill it at the deadline or when a cell is stuck."""
        progress, job_file = Path(job["progress"]), self.root / "jobs" / f"{job['student']}.json"
        progress.write_text("")
        job_file.write_text(json.dumps(job), encoding="utf-8")
        with open(job["log"], "ab") as log:  # the kernel inherits it: its chatter goes there
            proc = subprocess.Popen(command(job_file), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                                    start_new_session=True)  # its own group, killable as one
        with self.lock:
            self.running[proc.pid] = progress
        killed = ""
        stuck_after = self.settings.cell_timeout + self.settings.iopub_timeout + STUCK_GRACE_S
        while proc.poll() is None:
            time.sleep(0.25)
            if time.monotonic() > deadline:
                killed = "deadline"
                break
            cells = [e for e in read_events(progress) if e.get("event") == "cell"]
            if cells and time.time() - cells[-1]["t"] > stuck_after:
                killed = "stuck"
                break
        events = read_events(progress)
        kill_tree(proc.pid, events)  # also on success: nothing the student started survives
        proc.wait()
        with self.lock:
            self.running.pop(proc.pid, None)
        return events, killed

    @staticmethod
    def _cell(event: dict) -> str:
        gid = event.get("grade_id")
        return f"cell {event.get('index')}" + (f" ({gid})" if gid else "")

    def blank_result(self, student: str, reasons: Sequence[str] = ()) -> Result:
        """A Result with zero for every question (filled in as grading succeeds)."""
        return Result(student, {g: 0.0 for g in self.max_scores}, dict(self.max_scores),
                      reasons=list(reasons))

    def grade_one(self, sub: Submission, sid: str) -> Result:
        """Grade one submission in its own processes; always returns a Result."""
        start = time.monotonic()
        ok, reasons = self.prepare(sub, sid)
        result = self.blank_result(sub.student)
        if not ok:
            result.reasons, result.seconds = reasons, time.monotonic() - start
            return result
        db = self.root / "db" / f"{sid}.db"
        shutil.copy(self.root / "gradebook.db", db)
        s = self.settings
        job = {"exercises": str(self.exercises), "root": str(self.root), "db": str(db),
               "assignment": self.assignment, "student": sid,
               "progress": str(self.root / "progress" / f"{sid}.jsonl"),
               "log": str(self.root / "logs" / f"{sid}.log"), "skip": [], "skip_messages": {},
               "cell_timeout": s.cell_timeout, "iopub_timeout": s.iopub_timeout,
               "max_output_chars": s.max_output_chars, "feedback": s.feedback}
        deadline = start + s.submission_timeout
        graded = False
        for attempt in range(s.max_retries + 1):
            events, killed = self._attempt(job, deadline)
            last = {e["event"]: e for e in events}
            fatal = {e.get("index") for e in events if e["event"] in ("dead", "hung")}
            for e in events:
                if e["event"] == "timeout" and e.get("index") not in fatal:
                    reasons.append(f"{self._cell(e)} ran over {s.cell_timeout} s and was "
                                   "interrupted (an endless loop?): it scores zero")
                elif e["event"] == "truncated":
                    reasons.append(f"{self._cell(e)} printed {e['chars']:,} characters: output "
                                   f"truncated to {s.max_output_chars:,}")
            if "autograded" in last:
                graded = True
                if "feedback-failed" in last:
                    reasons.append(f"no feedback page: {last['feedback-failed'].get('error')}")
                break
            cells = [e for e in events if e["event"] == "cell"]
            if "dead" in last:
                culprit, what = last["dead"], "the kernel died (a crash or os._exit)"
            elif "hung" in last:
                culprit, what = last["hung"], f"it ran over {s.cell_timeout} s and ignored " \
                                              "the interrupt"
            elif killed == "stuck" and cells:
                culprit, what = cells[-1], f"it ran over {s.cell_timeout} s and never stopped"
            elif killed == "deadline":
                reasons.append(f"grading took longer than the {s.submission_timeout:g} s limit "
                               "for one submission and was stopped")
                break
            elif not cells and attempt == 0:
                continue  # the kernel never ran a cell (a busy machine?): one more try
            else:
                error = last.get("failed", {}).get("error") or _last_line(Path(job["log"]))
                reasons.append(f"nbgrader could not grade the notebook: {error}")
                break
            index = culprit.get("index")
            if index in job["skip"] or attempt == s.max_retries:
                reasons.append(f"{self._cell(culprit)}: {what}; gave up after {attempt + 1} runs")
                break
            reasons.append(f"{self._cell(culprit)}: {what}; the grader skipped it (it scores "
                           "zero) and graded the notebook again")
            job["skip"].append(index)
            job["skip_messages"][str(index)] = f"The grader did not run this cell: {what}."
        result.seconds = time.monotonic() - start
        result.reasons = list(dict.fromkeys(reasons))  # a cell interrupted in every run: once
        if not graded:
            return result
        scores = self._scores(db, sid)
        for gid in self.max_scores:
            if scores.get(gid) is None:
                result.reasons.append(f"{gid}: nbgrader recorded no score")
            result.scores[gid] = scores.get(gid) or 0.0
        result.status = "partial" if job["skip"] else "ok"
        result.details = self._details(sid)
        page = self.root / "feedback" / sid / self.assignment / self.notebook.replace(".ipynb",
                                                                                     ".html")
        result.feedback = page if page.exists() else None
        return result

    def _scores(self, db: Path, sid: str) -> dict[str, Optional[float]]:
        """Scores as nbgrader's gradebook records them (None: never graded)."""
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(f"sqlite:///{db}") as gb:
            try:
                nb = gb.find_submission_notebook(Path(self.notebook).stem, self.assignment, sid)
            except MissingEntry:
                return {}
            return {g.name: (None if g.auto_score is None and g.manual_score is None
                             else float(g.score)) for g in nb.grades}

    def _details(self, sid: str) -> dict[str, str]:
        """For each test cell of the graded notebook: "passed" or its error line."""
        import nbformat

        try:
            nb = nbformat.read(self.root / "autograded" / sid / self.assignment / self.notebook, 4)
        except Exception:
            return {}
        details = {}
        for cell in nb.cells:
            gid = nbgrader_meta(cell).get("grade_id")
            if gid in self.max_scores and cell.cell_type == "code":
                errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                if errors:
                    value = (str(errors[0].get("evalue", "")).strip().splitlines() or [""])[0]
                    details[gid] = f"{errors[0].get('ename', 'Error')}: {value}"[:240]
                else:
                    details[gid] = "passed"
        return details

    def kill_all(self) -> None:
        """Kill every student process still running (after Ctrl-C)."""
        with self.lock:
            running = list(self.running.items())
        for pid, progress in running:
            kill_tree(pid, read_events(progress))


def _last_line(log: Path) -> str:
    """The last line a crashed student process wrote to its log."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return f"the grading process crashed ({lines[-1].strip()[:200]})" if lines else \
        "the grading process crashed"


def _student_ids(subs: list[Submission]) -> list[str]:
    """nbgrader-safe, unique student ids (folder names)."""
    ids: list[str] = []
    for sub in subs:
        sid = re.sub(r"[^A-Za-z0-9_.@-]+", "_", sub.student).strip("._") or "student"
        base, n = sid, 2
        while sid in ids:
            sid, n = f"{base}-{n}", n + 1
        ids.append(sid)
    return ids


def grade(submissions: Path, assignment: Optional[str] = None, out: Optional[Path] = None,
          exercises: Path = EXERCISES, settings: Optional[Settings] = None,
          keep_work: bool = False, echo: bool = True) -> list[Result]:
    """Grade every submission in the folder; write grades.csv and feedback/ into `out`."""
    submissions, exercises = Path(submissions), Path(exercises)
    if not submissions.is_dir():
        raise SystemExit(f"{submissions} is not a folder of submissions")
    assignment = assignment or infer_assignment(submissions, exercises)
    out = Path(out) if out else submissions.with_name(submissions.name + "-graded")
    return grade_many([(submissions, assignment, out)], exercises, settings, keep_work, echo)[0]


def grade_many(requests: list[tuple[Path, str, Path]], exercises: Path = EXERCISES,
               settings: Optional[Settings] = None, keep_work: bool = False,
               echo: bool = True) -> list[list[Result]]:
    """Grade several (submissions folder, assignment, output folder) in one pool of jobs."""
    exercises = Path(exercises)
    settings = settings or load_settings(exercises)
    say = print if echo else (lambda *args, **kwargs: None)
    work = Path(tempfile.mkdtemp(prefix="course-grading-"))
    batches: list[_Batch] = []
    try:
        tasks, results = [], []
        for i, (folder, assignment, out) in enumerate(requests):
            batch = _Batch(exercises, assignment, settings, work / f"{i}-{assignment}")
            batches.append(batch)
            subs = find_submissions(Path(folder), batch.notebook, skip=(Path(out),))
            ids = _student_ids(subs)
            results.append([Result(sub.student, {}, {}) for sub in subs])
            tasks += [(i, k, sub, sid) for k, (sub, sid) in enumerate(zip(subs, ids))]
            batch.ids = ids
            say(f"{assignment} ({batch.notebook}): {len(subs)} submission(s) in {folder}")
        say(f"grading {len(tasks)} submission(s), {settings.jobs} at a time; limits: "
            f"{settings.cell_timeout} s per cell, {settings.submission_timeout:g} s per submission")
        lock, done = threading.Lock(), [0]

        def run(task: tuple) -> None:
            i, k, sub, sid = task
            batch = batches[i]
            try:
                r = batch.grade_one(sub, sid)
            except Exception as err:  # a bug here must not lose the other submissions
                r = batch.blank_result(
                    sub.student, [f"internal grading error: {type(err).__name__}: {err}"])
            results[i][k] = r
            with lock:
                done[0] += 1
                note = f" - {'; '.join(r.reasons)}" if r.reasons else ""
                say(f"[{done[0]}/{len(tasks)}] {batch.assignment} {r.student}: "
                    f"{r.total:g}/{r.max_total:g} ({r.status}, {r.seconds:.0f} s){note}")

        pool = ThreadPoolExecutor(max_workers=max(1, settings.jobs))
        try:
            for future in [pool.submit(run, task) for task in tasks]:
                future.result()
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            for batch in batches:
                batch.kill_all()
            raise
        pool.shutdown()
        for batch, result, (_, _, out) in zip(batches, results, requests):
            write_outputs(result, batch.ids, batch, Path(out))
            say(f"wrote {Path(out) / 'grades.csv'} and {Path(out) / 'feedback'}/")
        return results
    finally:
        if keep_work:
            say(f"kept nbgrader's working folder (logs, autograded notebooks): {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def summary_text(r: Result, assignment: str, notebook: str) -> str:
    """The short per-student report: total, status, notes, one line per question."""
    lines = [f"{r.student}: {assignment} ({notebook})",
             f"score {r.total:g} / {r.max_total:g}   status: {r.status}"]
    lines += [f"note: {reason}" for reason in r.reasons]
    for gid, points in r.max_scores.items():
        detail = r.details.get(gid, "not graded" if r.status == "failed" else "")
        lines.append(f"  {gid:<24} {r.scores.get(gid, 0):g}/{points:g}  {detail}")
    return "\n".join(lines) + "\n"


def write_outputs(results: list[Result], ids: list[str], batch: _Batch, out: Path) -> None:
    """OUT/grades.csv, and per student OUT/feedback/<student>/: the HTML page + summary.txt."""
    out.mkdir(parents=True, exist_ok=True)
    gids = list(batch.max_scores)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *gids, "total", "max", "status", "reason"])
        for r in sorted(results, key=lambda r: r.student):
            writer.writerow([r.student, *(f"{r.scores.get(g, 0):g}" for g in gids),
                             f"{r.total:g}", f"{r.max_total:g}", r.status, "; ".join(r.reasons)])
    for r, sid in zip(results, ids):
        folder = out / "feedback" / sid
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        text = summary_text(r, batch.assignment, batch.notebook)
        (folder / "summary.txt").write_text(text, encoding="utf-8")
        page = folder / batch.notebook.replace(".ipynb", ".html")
        if r.feedback is not None:  # nbgrader's feedback page
            shutil.copyfile(r.feedback, page)
        else:  # nothing was graded: the summary as a page
            page.write_text(f"<html><body><h1>{html.escape(r.student)}</h1>\n<pre>"
                            f"{html.escape(text)}</pre></body></html>\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# command line


def main(argv: Optional[list[str]] = None) -> int:
    """`python -m course_utils.grading` (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["release"]:
        parser = argparse.ArgumentParser(prog="python -m course_utils.grading release",
                                         description="Regenerate exercises/release/ with nbgrader.")
        parser.add_argument("--assignment", action="append",
                            help="lessonNN, repeatable (default: every exercises/source/lessonNN)")
        parser.add_argument("--exercises", type=Path, default=EXERCISES, help=argparse.SUPPRESS)
        args = parser.parse_args(argv[1:])
        for path in release(args.assignment, args.exercises):
            print(f"wrote {os.path.relpath(path)}")
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.grading",
        description="Autograde a folder of submissions (STUDENT/NN_topic_exercises.ipynb or "
                    "STUDENT.ipynb) with nbgrader; write OUT/grades.csv and OUT/feedback/.")
    parser.add_argument("submissions", type=Path, help="folder with one entry per student")
    parser.add_argument("--assignment", help="lessonNN (default: inferred from the file names)")
    parser.add_argument("--out", type=Path, help="output folder (default: SUBMISSIONS-graded)")
    parser.add_argument("--cell-timeout", type=int, help="seconds per cell (config: 120)")
    parser.add_argument("--submission-timeout", type=float,
                        help="wall-clock seconds per submission (config: 900)")
    parser.add_argument("--jobs", type=int, help="submissions graded in parallel (config: 2)")
    parser.add_argument("--keep-work", action="store_true",
                        help="keep nbgrader's working folder (logs, autograded notebooks)")
    parser.add_argument("--exercises", type=Path, default=EXERCISES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = load_settings(args.exercises, cell_timeout=args.cell_timeout,
                             submission_timeout=args.submission_timeout, jobs=args.jobs)
    grade(args.submissions, args.assignment, args.out, args.exercises, settings, args.keep_work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
