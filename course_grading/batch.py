"""A batch: every entry of a submissions folder graded, each in its own worker and sandbox.

Grades are written as each submission completes (OUT/results.jsonl, then grades.csv and the
feedback pages rewritten), so an interrupted batch keeps what it graded and the same command
grades only what is missing. A worker that dies or overruns costs only its own submission.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

from .config import EXERCISES, REPO, CourseGrading, load_settings
from .feedback import full_page, page, summary_text
from .notebooks import nbgrader_meta, read_notebook, repair, restore_course_cells
from .protocol import Job, Limits, Result, blank_result
from .release import generate, notebook_name, source_assignments
from .sandbox import UID_BASE, bwrap_status, course_copy
from .submissions import Submission, cell_texts, find_submissions, lesson_of, student_ids, vote


def infer_assignment(folder: Path, exercises: Path = EXERCISES) -> str:
    """The assignment most of the folder's notebooks belong to (by file name, else content)."""
    known = source_assignments(exercises)
    if len(known) == 1:
        return known[0]
    names = {a: notebook_name(exercises, a) for a in known}
    texts = {a: cell_texts((Path(exercises) / "source" / a / names[a]).read_bytes()) for a in known}
    subs = find_submissions(Path(folder), "")
    best = vote(subs, names, texts)
    if best is None:
        raise SystemExit(f"cannot tell which assignment {folder} holds: pass --assignment "
                         f"(one of {', '.join(known) or 'none: exercises/source is empty'})")
    return best


def _digest(data: Optional[bytes]) -> str:
    return hashlib.sha256(data).hexdigest() if data is not None else ""


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def kernel_env(settings: CourseGrading, cache: list[str]) -> dict[str, str]:
    """The kernel's whole environment: nothing of the instructor's but the course's switches."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, settings.jobs)))
    env = {"PATH": f"{os.path.join(sys.prefix, 'bin')}:/usr/local/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", threads),
           "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", threads),
           "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "COURSE_MODELS": os.environ.get("COURSE_MODELS", "offline")}
    if os.environ.get("COURSE_STANDIN_SIZE"):
        env["COURSE_STANDIN_SIZE"] = os.environ["COURSE_STANDIN_SIZE"]
    env["COURSE_CACHE"], env["HF_HUB_CACHE"] = cache
    return env


def model_caches() -> list[str]:
    """The stand-in cache and the Hub cache, mounted read-only into every sandbox."""
    course = os.environ.get("COURSE_CACHE") or os.path.join(Path.home(), ".cache", "course_utils")
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface"), "hub")
    return [course, hub]


def prebuild_models(assignment: str, cache: list[str]) -> None:
    """Build the lesson's stand-ins before grading (the sandboxes see the cache read-only)."""
    if os.environ.get("COURSE_MODELS", "offline") != "offline":
        return
    code = ("import sys\nfrom course_utils import lessons, standins, registry\n"
            "entry = [e for e in lessons.LESSONS if e.assignment == sys.argv[1]]\n"
            "for role in (entry[0].roles if entry else ()):\n"
            "    standins.build(role, registry.standin_size())\n")
    env = dict(os.environ, COURSE_CACHE=cache[0])
    subprocess.run([sys.executable, "-c", code, assignment], env=env, timeout=1800,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    readable(Path(cache[0]))


def readable(folder: Path) -> None:
    """Let the sandbox's unprivileged uid read the stand-ins (they are built 0700)."""
    if os.geteuid() != 0 or not folder.is_dir():
        return
    for base, _dirs, files in os.walk(folder):
        os.chmod(base, os.stat(base).st_mode | 0o555)
        for name in files:
            path = os.path.join(base, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)


class Batch:
    """One assignment's submissions: the course's cells, every entry's job and its outputs."""

    def __init__(self, exercises: Path, assignment: str, settings: CourseGrading, root: Path,
                 folder: Path, out: Path):
        import nbformat

        self.exercises, self.assignment, self.settings, self.root = \
            Path(exercises), assignment, settings, root
        self.folder, self.out = Path(folder), Path(out)
        self.notebook = notebook_name(exercises, assignment)
        root.mkdir(parents=True)
        generate(self.exercises, root / "nbgrader", assignment)
        self.release_nb = nbformat.read(root / "nbgrader" / "release" / assignment / self.notebook, 4)
        self.source_nb = nbformat.read(root / "nbgrader" / "source" / assignment / self.notebook, 4)
        self.max_scores = {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c).get("points", 0))
                           for c in self.source_nb.cells if nbgrader_meta(c).get("grade")}
        known = source_assignments(exercises)
        self.names = {a: notebook_name(exercises, a) for a in known}
        self.texts = {a: cell_texts((self.exercises / "source" / a / self.names[a]).read_bytes())
                      for a in known}
        self.subs = find_submissions(self.folder, self.notebook, skip=(self.out,))
        self.ids = student_ids(self.subs)
        self.results: list[Optional[Result]] = [None] * len(self.subs)
        self.lock = threading.Lock()
        self.previous = self._previous()

    def _previous(self) -> dict[tuple[str, str], Result]:
        """Results of an earlier run of the same command, by (entry, checksum of its notebook)."""
        found: dict[tuple[str, str], Result] = {}
        path = self.out / "results.jsonl"
        if not path.exists():
            return found
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
                found[(data["source"], data["sha256"])] = Result.from_json(json.dumps(data["result"]))
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def blank(self, sub: Submission, reasons: list[str]) -> Result:
        """A zero-score, failed Result for a submission."""
        return blank_result(sub.student, self.max_scores, reasons, sub.source)

    def job(self, k: int, work: Path, course: Path, env: dict[str, str],
            cache: list[str], serial: int = 0) -> Job | Result:
        """The Job that grades entry k, or its Result when there is nothing to grade."""
        sub, s = self.subs[k], self.settings
        if sub.data is None:
            return self.blank(sub, [sub.note])
        nb, why = read_notebook(sub.data)
        if nb is None:
            return self.blank(sub, [why])
        texts = cell_texts(sub.data)
        other = lesson_of(texts, self.texts)
        if other is not None and other != self.assignment and \
                len(texts & self.texts[other]) > len(texts & self.texts[self.assignment]):
            return self.blank(sub, [f"a {other} notebook ({self.names[other]}), not "
                                    f"{self.assignment} ({self.notebook}): not graded"])
        reasons = ([sub.note] if sub.note else []) + repair(nb, self.release_nb, self.source_nb)
        locked = restore_course_cells(nb, self.release_nb, self.source_nb)
        work.mkdir(parents=True)
        work.chmod(0o700)
        # a uid of its own per submission of the run: limits are counted per uid
        uid = UID_BASE + 1 + serial % 30000 if os.geteuid() == 0 else None
        limits = Limits(s.memory_limit_mb, s.max_processes, s.max_file_size_mb, s.cpu_time_limit,
                        s.scratch_mb)
        job = Job(sub.student, sub.source, self.assignment, self.notebook, json.loads(
            json.dumps(nb)), dict(self.max_scores), str(work), str(course),
            read_only=[c for c in cache if os.path.isdir(c)], env=env,
            uid=uid if s.sandbox else None, sandbox=s.sandbox, limits=limits,
            cell_timeout=s.cell_timeout, startup_timeout=s.startup_timeout,
            interrupt_grace=s.interrupt_grace, submission_timeout=s.submission_timeout,
            max_retries=s.max_retries, max_output_chars=s.max_output_chars, locked=locked)
        job.notes = reasons  # type: ignore[attr-defined]  (the parent's, not sent)
        return job

    def record(self, k: int, r: Result) -> None:
        """Keep entry k's Result and rewrite the outputs (grades.csv, its feedback)."""
        sub = self.subs[k]
        with self.lock:
            self.results[k] = r
            self.out.mkdir(parents=True, exist_ok=True)
            line = {"source": sub.source, "sha256": _digest(sub.data),
                    "result": json.loads(r.to_json())}
            with open(self.out / "results.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
            self._feedback(r, self.ids[k])
            self._grades()

    def _feedback(self, r: Result, sid: str) -> None:
        folder = self.out / "feedback" / sid
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / "summary.txt", summary_text(r, self.assignment, self.notebook))
        html_name = self.notebook.replace(".ipynb", ".html")
        text = page(r, self.assignment, self.notebook)
        if self.settings.full_feedback and r.notebook is not None:
            try:
                text = full_page(r.notebook)
            except Exception as err:  # nbconvert failed: the short page, and say so
                r.reasons.append(f"no full feedback page ({type(err).__name__})")
        _write_atomic(folder / html_name, text)
        if r.notebook is not None:
            graded = self.out / "autograded" / sid
            graded.mkdir(parents=True, exist_ok=True)
            _write_atomic(graded / self.notebook, json.dumps(r.notebook, indent=1))

    def _grades(self) -> None:
        gids = list(self.max_scores)
        rows = sorted((r for r in self.results if r is not None), key=lambda r: (r.student, r.source))
        lines = []
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["student", "source", *gids, "total", "max", "status", "reason"])
        for r in rows:
            writer.writerow([r.student, r.source, *(f"{r.scores.get(g, 0):g}" for g in gids),
                             f"{r.total:g}", f"{r.max_total:g}", r.status, "; ".join(r.reasons)])
        lines.append(buffer.getvalue())
        _write_atomic(self.out / "grades.csv", "".join(lines))


def run_worker(job: Job, log: Path, running: dict[int, subprocess.Popen],
               lock: threading.Lock) -> Result:
    """Grade one job in a worker process under the submission's wall-clock limit."""
    notes = getattr(job, "notes", [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    with open(log, "ab") as err:
        proc = subprocess.Popen([sys.executable, "-m", "course_grading.worker"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                env=env, cwd=job.work, start_new_session=True)
    with lock:
        running[proc.pid] = proc
    try:
        out, _ = proc.communicate(job.to_json().encode(), timeout=job.submission_timeout)
        killed = False
    except subprocess.TimeoutExpired:
        killed = True
        out = b""
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker's group; its sandboxes die with it
        except OSError:
            pass
        proc.wait()
        with lock:
            running.pop(proc.pid, None)
    fail = blank_result(job.student, job.max_scores, notes, job.source)
    if killed:
        fail.reasons.append(f"grading took longer than the {job.submission_timeout:g} s limit "
                            "for one submission and was stopped")
        return fail
    lines = out.decode("utf-8", "replace").strip().splitlines()
    try:
        r = Result.from_json(lines[-1])
    except (IndexError, ValueError, TypeError):
        code = proc.returncode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        fail.reasons.append(f"the grading worker died ({how}); nothing was graded")
        return fail
    r.reasons = notes + [x for x in r.reasons if x not in notes]
    r.scores = {g: min(max(0.0, float(r.scores.get(g, 0))), job.max_scores[g])
                for g in job.max_scores}  # a score above its maximum is impossible
    r.max_scores = dict(job.max_scores)
    r.student, r.source = job.student, job.source
    return r


def grade(submissions: Path, assignment: Optional[str] = None, out: Optional[Path] = None,
          exercises: Path = EXERCISES, settings: Optional[CourseGrading] = None,
          keep_work: bool = False, echo: bool = True) -> list[Result]:
    """Grade every entry of the folder; write grades.csv and feedback/ into `out`."""
    submissions, exercises = Path(submissions), Path(exercises)
    if not submissions.is_dir():
        raise SystemExit(f"{submissions} is not a folder of submissions")
    assignment = assignment or infer_assignment(submissions, exercises)
    out = Path(out) if out else submissions.with_name(submissions.name + "-graded")
    return grade_many([(submissions, assignment, out)], exercises, settings, keep_work, echo)[0]


def grade_many(requests: list[tuple[Path, str, Path]], exercises: Path = EXERCISES,
               settings: Optional[CourseGrading] = None, keep_work: bool = False,
               echo: bool = True) -> list[list[Result]]:
    """Grade several (submissions folder, assignment, output folder) in one pool of jobs."""
    exercises = Path(exercises)
    settings = settings or load_settings(exercises)
    say: Callable[..., None] = print if echo else (lambda *a, **k: None)
    if settings.sandbox:
        ok, why = bwrap_status()
        if not ok:
            raise SystemExit(f"course grading: {why}; install Debian's bubblewrap (apt-get "
                             "install bubblewrap), or pass --no-sandbox for trusted submissions")
    else:
        say("course grading: WARNING: --no-sandbox: submissions run as you, with your files; "
            "grade only submissions you trust")
    work = Path(tempfile.mkdtemp(prefix="course-grading-"))
    running: dict[int, subprocess.Popen] = {}
    lock = threading.Lock()
    try:
        course = course_copy(work / "ro" / "course")
        cache = model_caches()
        env = kernel_env(settings, cache)
        batches, tasks = [], []
        for i, (folder, assignment, out) in enumerate(requests):
            prebuild_models(assignment, cache)
            batch = Batch(exercises, assignment, settings, work / f"b{i}", Path(folder), Path(out))
            batches.append(batch)
            say(f"{assignment} ({batch.notebook}): {len(batch.subs)} entries in {folder}")
            for k, sub in enumerate(batch.subs):
                done = batch.previous.get((sub.source, _digest(sub.data)))
                if done is not None:
                    batch.results[k] = done
                else:
                    tasks.append((i, k))
            if any(r is not None for r in batch.results):
                say(f"  {sum(r is not None for r in batch.results)} already graded in {out}")
        say(f"grading {len(tasks)} submission(s), {settings.jobs} at a time, "
            f"{'each in a bubblewrap sandbox' if settings.sandbox else 'WITHOUT a sandbox'}; "
            f"limits: {settings.cell_timeout} s per cell, {settings.submission_timeout:g} s per "
            f"submission, {settings.memory_limit_mb} MB")
        count = [0]

        def run(task: tuple[int, int]) -> None:
            i, k = task
            batch = batches[i]
            sub = batch.subs[k]
            try:
                job = batch.job(k, work / f"b{i}" / f"j{k}", course, env, cache,
                                serial=tasks.index(task))
                r = job if isinstance(job, Result) else \
                    run_worker(job, work / f"b{i}" / f"j{k}.log", running, lock)
            except Exception as err:  # a bug here must not lose the other submissions
                r = batch.blank(sub, [f"internal grading error: {type(err).__name__}"])
            batch.record(k, r)
            with lock:
                count[0] += 1
                note = f" - {'; '.join(r.reasons)}" if r.reasons else ""
                say(f"[{count[0]}/{len(tasks)}] {batch.assignment} {r.student} ({r.source}): "
                    f"{r.total:g}/{r.max_total:g} ({r.status}, {r.seconds:.0f} s){note}")

        pool = ThreadPoolExecutor(max_workers=max(1, settings.jobs))
        try:
            for future in [pool.submit(run, task) for task in tasks]:
                future.result()
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            with lock:
                for pid in list(running):
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
            raise
        pool.shutdown()
        for batch in batches:
            batch.out.mkdir(parents=True, exist_ok=True)
            batch._grades()
            say(f"wrote {batch.out / 'grades.csv'} and {batch.out / 'feedback'}/")
        return [[r for r in batch.results if r is not None] for batch in batches]
    finally:
        if keep_work:
            say(f"kept the grader's working folder (logs): {work}")
        else:
            for path in sorted(work.rglob("*"), reverse=True):  # read-only copies first
                try:
                    path.chmod(0o700)
                except OSError:
                    pass
            shutil.rmtree(work, ignore_errors=True)
