"""A batch: every entry of a submissions folder graded, each as one Dask task, in its own sandbox.

The parent (the instructor's process) reads the submissions, repairs each notebook and sends one
self-contained task per submission to dask.distributed: a local cluster of --jobs workers by
default, or the workers of an existing scheduler (--scheduler tcp://HOST:PORT). A task needs
nothing of the parent's disk: on its worker's machine it makes its own work folder and read-only
copy of the course helpers, grades the job in a worker process whose kernel runs in bubblewrap,
and returns the Result. Only the parent writes grades, once per submission, as tasks finish
(OUT/results.jsonl, then grades.csv, the feedback pages and the LMS file), so an interrupted
batch keeps what it graded and the same command grades only what is missing. A worker process
that dies or overruns costs only its own submission; a Dask worker lost mid-task has its task
re-run elsewhere (bounded by worker_failures), and the submission is still recorded exactly once.
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
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .config import EXERCISES, REPO, CourseGrading, load_settings
from .feedback import full_page, page, summary_text
from .lms import Gradebook
from .notebooks import nbgrader_meta, read_notebook, repair, restore_course_cells
from .protocol import Job, Limits, Result, blank_result
from .prepared import Prebuild, font_list, release_folder
from .release import notebook_name, source_assignments
from .sandbox import UID_BASE, add_font_list, bwrap_status, course_copy
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


def kernel_env(jobs: int, cache: list[str]) -> dict[str, str]:
    """The kernel's whole environment: nothing of the instructor's but the course's switches."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
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
        released = release_folder(self.exercises, assignment, root / "nbgrader")
        self.release_nb = nbformat.read(released / self.notebook, 4)
        self.source_nb = nbformat.read(self.exercises / "source" / assignment / self.notebook, 4)
        self.max_scores = {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c).get("points", 0))
                           for c in self.source_nb.cells if nbgrader_meta(c).get("grade")}
        known = source_assignments(exercises)
        self.names = {a: notebook_name(exercises, a) for a in known}
        self.texts = {a: cell_texts((self.exercises / "source" / a / self.names[a]).read_bytes())
                      for a in known}
        self.subs = find_submissions(self.folder, self.notebook, skip=(self.out,))
        self.ids = student_ids(self.subs)
        self.results: list[Optional[Result]] = [None] * len(self.subs)
        self.notes: dict[int, list[str]] = {}
        self.lock = threading.Lock()
        self.gradebook = Gradebook.from_settings(settings, assignment, self.max_scores, self.out)
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

    def job(self, k: int, serial: int = 0) -> Job | Result:
        """The Job that grades entry k, or its Result when there is nothing to grade.

        The Job names no folder of the parent's: the task fills in its work folder, course copy,
        model caches and kernel environment on the machine that grades it (see grade_task)."""
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
        # a uid of its own per submission of the run: limits are counted per uid
        uid = UID_BASE + 1 + serial % 30000
        limits = Limits(s.memory_limit_mb, s.max_processes, s.max_file_size_mb, s.cpu_time_limit,
                        s.scratch_mb)
        job = Job(sub.student, sub.source, self.assignment, self.notebook, json.loads(
            json.dumps(nb)), dict(self.max_scores), work="", course_copy="",
            uid=uid if s.sandbox else None, sandbox=s.sandbox, limits=limits,
            cell_timeout=s.cell_timeout, startup_timeout=s.startup_timeout,
            interrupt_grace=s.interrupt_grace, submission_timeout=s.submission_timeout,
            max_retries=s.max_retries, max_output_chars=s.max_output_chars, locked=locked)
        self.notes[k] = reasons  # the parent's, applied when the Result comes back
        return job

    def finish(self, k: int, r: Result) -> Result:
        """The parent's own account of entry k: its notes first, scores within their maxima."""
        sub, notes = self.subs[k], self.notes.get(k, [])
        r.reasons = notes + [x for x in r.reasons if x not in notes]
        r.scores = {g: min(max(0.0, float(r.scores.get(g, 0) or 0)), m)
                    for g, m in self.max_scores.items()}  # a score above its maximum is impossible
        r.max_scores = dict(self.max_scores)
        r.student, r.source = sub.student, sub.source
        return r

    def record(self, k: int, r: Result) -> bool:
        """Keep entry k's Result and rewrite the outputs (grades.csv, its feedback, the LMS
        file); False, and nothing written, when entry k is already recorded (exactly once)."""
        sub = self.subs[k]
        with self.lock:
            if self.results[k] is not None:
                return False
            self.results[k] = r
            self.out.mkdir(parents=True, exist_ok=True)
            line = {"source": sub.source, "sha256": _digest(sub.data),
                    "result": json.loads(r.to_json())}
            with open(self.out / "results.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
            self._feedback(r, self.ids[k])
            self._grades()
        return True

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
        if self.gradebook is not None:
            self.gradebook.write(rows)



# ---------------------------------------------------------------------------------------------
# one task: runs on a Dask worker (or in the parent's own threads), needs nothing of the parent's


class HostError(RuntimeError):
    """This worker's machine cannot grade at all (no bwrap, no course_utils): try another."""


_RUNNING: dict[int, tuple[str, subprocess.Popen]] = {}  # worker pid -> (batch token, process)
_RUNNING_LOCK = threading.Lock()
_PREBUILT: set[tuple[str, str]] = set()  # (assignment, cache) built by this process
_PREBUILD_LOCK = threading.Lock()
_SETPRIV = shutil.which("setpriv")


def _worker_command() -> list[str]:
    """The worker process; on Linux it is killed when the thread that started it dies, so a Dask
    worker killed mid-task leaves no grading process (nor, with bwrap's --die-with-parent, any
    kernel) behind."""
    python = [sys.executable, "-m", "course_grading.worker"]
    return [_SETPRIV, "--pdeathsig", "KILL", *python] if _SETPRIV else python


class GradingProcess:
    """A worker process that grades one job after another: a Job line in, a Result line out.

    One per thread (threading.local): the imports of nbclient and friends are paid once per
    thread, not once per submission. A process that dies, overruns or serves another batch is
    killed and replaced; the student's code never runs in it (its kernel is in the sandbox)."""

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None
        self.token = ""
        self.served = 0
        self.buffer = b""

    def _start(self, token: str, log: Path) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        with open(log, "ab") as err:  # until its first job's log takes over
            self.proc = subprocess.Popen(_worker_command(), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, env=env,
                                         cwd=tempfile.gettempdir(), start_new_session=True)
        self.token, self.served, self.buffer = token, 0, b""
        return self.proc

    def kill(self) -> None:
        """End the process and its group (its sandboxes die with it)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        with _RUNNING_LOCK:
            _RUNNING.pop(proc.pid, None)

    def grade(self, job: Job, token: str) -> tuple[Optional[str], str]:
        """(the Result line, "") or (None, why there is none) within job.submission_timeout."""
        import selectors

        proc = self.proc
        if proc is None or proc.poll() is not None or self.token != token or \
                self.served >= RECYCLE_AFTER:
            self.kill()
            proc = self._start(token, Path(job.work).parent / "worker.log")
        with _RUNNING_LOCK:
            _RUNNING[proc.pid] = (token, proc)
        self.served += 1
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(job.to_json().encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            pass  # it died: reported below
        deadline = time.monotonic() + job.submission_timeout
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    return None, "timeout"
                if not sel.select(timeout=min(left, 1.0)):
                    continue
                chunk = os.read(fd, 1 << 20)
                if not chunk:  # the process ended
                    proc.wait()
                    code = proc.returncode
                    self.kill()
                    return None, (f"signal {-code}" if code is not None and code < 0
                                  else f"exit code {code}")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        with _RUNNING_LOCK:
            _RUNNING.pop(proc.pid, None)
        return line.decode("utf-8", "replace"), ""


RECYCLE_AFTER = 50  # submissions one worker process grades before a fresh one takes over
_LOCAL = threading.local()  # this thread's GradingProcess
_PROCESSES: list[GradingProcess] = []  # every thread's, for stop_processes
_SPARE: list[GradingProcess] = []  # started with the batch, taken by the first threads


def prestart(token: str, count: int, log: Path) -> None:
    """Start `count` grading processes for this machine's first tasks while the batch and its
    cluster get ready (a worker's imports take about 0.4 s, on a core otherwise idle then)."""
    for _ in range(count):
        process = GradingProcess()
        process._start(token, log)
        with _RUNNING_LOCK:
            _PROCESSES.append(process)
            _SPARE.append(process)


def _this_threads_process(token: str) -> GradingProcess:
    """This thread's grading process: its own, else a spare of this batch, else a new one."""
    process = getattr(_LOCAL, "process", None)
    if process is not None:
        return process
    with _RUNNING_LOCK:
        process = next((p for p in _SPARE if p.token == token), None)
        if process is not None:
            _SPARE.remove(process)
        else:
            process = GradingProcess()
            _PROCESSES.append(process)
    _LOCAL.process = process
    return process


def stop_processes(token: str) -> int:
    """End the idle grading processes of batch `token` (its end), spares included; how many."""
    with _RUNNING_LOCK:
        mine = [p for p in _PROCESSES if p.token == token and p.proc is not None]
        _SPARE[:] = [p for p in _SPARE if p.token != token]
    for process in mine:
        process.kill()
    return len(mine)


def run_worker(job: Job, token: str = "") -> Result:
    """Grade one job in this thread's worker process under the submission's wall-clock limit."""
    line, why = _this_threads_process(token).grade(job, token)
    fail = blank_result(job.student, job.max_scores, [], job.source)
    if why == "timeout":
        fail.reasons.append(f"grading took longer than the {job.submission_timeout:g} s limit "
                            "for one submission and was stopped")
        return fail
    try:
        r = Result.from_json(line or "")
    except (ValueError, TypeError):
        fail.reasons.append(f"the grading worker died ({why or 'no result'}); nothing was "
                            "graded")
        return fail
    r.scores = {g: min(max(0.0, float(r.scores.get(g, 0))), job.max_scores[g])
                for g in job.max_scores}  # a score above its maximum is impossible
    r.max_scores = dict(job.max_scores)
    r.student, r.source = job.student, job.source
    return r


def stop_batch(token: str) -> int:
    """Kill this process's grading workers of batch `token` (Ctrl-C in the parent); how many."""
    with _RUNNING_LOCK:
        procs = [p for t, p in _RUNNING.values() if t == token]
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    return len(procs)


def _prebuild_once(assignment: str, cache: list[str]) -> None:
    """Build the lesson's stand-ins on this machine once per process (a no-op when built)."""
    with _PREBUILD_LOCK:
        if (assignment, cache[0]) not in _PREBUILT:
            Prebuild(assignment, cache[0]).finish()
            _PREBUILT.add((assignment, cache[0]))


def _remove(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):  # read-only copies first
        try:
            path.chmod(0o700)
        except OSError:
            pass
    shutil.rmtree(folder, ignore_errors=True)


def grade_task(job_json: str, token: str, jobs: int, keep_work: bool = False) -> tuple[str, str, str]:
    """One submission, graded on this machine: (Result JSON, host name, kept work folder or "").

    Self-contained: its own work folder and read-only course copy under this machine's temp
    folder, this machine's model caches and bubblewrap. Raises HostError when this machine
    cannot grade (Dask then retries the task); every other failure is the submission's Result."""
    import socket

    host = socket.gethostname()
    job = Job.from_json(job_json)
    if job.sandbox:
        ok, why = bwrap_status()
        if not ok:
            raise HostError(f"{host}: {why}")
    if os.geteuid() != 0:
        job.uid = None  # only root can drop to a uid of its own; else the user namespace's
    cache = model_caches()
    _prebuild_once(job.assignment, cache)
    root = Path(tempfile.mkdtemp(prefix=f"cg-{token[:8]}-"))
    try:
        try:
            job.course_copy = str(course_copy(root / "ro" / "course"))
        except RuntimeError as err:
            raise HostError(f"{host}: {err}") from None
        work = root / "work"
        work.mkdir()
        work.chmod(0o700)
        job.work, job.read_only = str(work), [c for c in cache if os.path.isdir(c)]
        job.env = kernel_env(jobs, cache)
        if job.sandbox:
            add_font_list(Path(job.course_copy), font_list(job))
        try:
            r = run_worker(job, token=token)
        except Exception as err:  # a bug here must not lose the other submissions
            r = blank_result(job.student, job.max_scores,
                             [f"internal grading error: {type(err).__name__}"], job.source)
        return r.to_json(), host, str(root) if keep_work else ""
    finally:
        if not keep_work:
            _remove(root)


# ---------------------------------------------------------------------------------------------
# the engines: where the tasks run


# The local cluster's own instruments, made rare: they feed a dashboard this batch does not serve
# and a memory manager for task results of a few kB, and they run on the event loop that shares
# the two cores with the kernels. Dask's profiler alone samples each worker's thread every 10 ms;
# with these four, the event loop's CPU time for 10 lesson-01 submissions went from 3.4 s to
# 0.4 s (measured with pthread_getcpuclockid per thread; 46-50 s batches, 2 jobs).
QUIET_LOCAL_CLUSTER = {"distributed.worker.profile.enabled": False,
                       "distributed.admin.system-monitor.interval": "5s",
                       "distributed.worker.memory.monitor-interval": "1s",
                       "distributed.admin.tick.interval": "500ms"}


class DaskEngine:
    """Tasks on dask.distributed: a LocalCluster (jobs workers, one thread each) or a scheduler."""

    def __init__(self, settings: CourseGrading, say: Callable[..., None]):
        import logging

        import dask
        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.ERROR)  # the batch reports, not Dask
        self.cluster = None
        address = settings.scheduler.strip()
        if address:
            if not address.startswith(("tcp://", "tls://")) or ":" not in address[6:]:
                raise SystemExit(f"course grading: --scheduler wants tcp://HOST:PORT, not "
                                 f"{address!r}")
            try:
                self.client = Client(address, timeout=settings.scheduler_timeout,
                                     set_as_default=False)
            except (OSError, TimeoutError) as err:
                raise SystemExit(f"course grading: no Dask scheduler answers at {address} "
                                 f"within {settings.scheduler_timeout} s ({type(err).__name__}); "
                                 "start one with `dask scheduler`") from None
            try:
                self.client.wait_for_workers(1, timeout=settings.scheduler_timeout)
            except (OSError, TimeoutError):
                self.client.close(timeout=10)
                raise SystemExit(f"course grading: no Dask worker joined {address} within "
                                 f"{settings.scheduler_timeout} s; start workers with `dask "
                                 f"worker {address} --nthreads 1` (README, For instructors)") from None
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
            say(f"Dask scheduler {address}: {len(workers)} worker(s), "
                f"{sum(w.get('nthreads', 1) for w in workers.values())} thread(s)")
        else:
            # Threads in this process: every submission already runs in a worker process and a
            # sandbox of its own, so a Dask worker process per slot would add start-up and memory
            # and no isolation. Lost workers: worker_failures re-runs, then "failed".
            with dask.config.set({"distributed.scheduler.allowed-failures":
                                  settings.worker_failures, **QUIET_LOCAL_CLUSTER}):
                # Dask's HTTP routes (health, metrics) on loopback at a free port: with no
                # address they take :8787 on every interface, or warn when it is taken
                self.cluster = LocalCluster(n_workers=max(1, settings.jobs), threads_per_worker=1,
                                            processes=False, dashboard_address="127.0.0.1:0",
                                            worker_dashboard_address="127.0.0.1:0")
            self.client = Client(self.cluster, set_as_default=False)

    def submit(self, job: Job, token: str, jobs: int, keep_work: bool, key: str) -> Any:
        return self.client.submit(grade_task, job.to_json(), token, jobs, keep_work, key=key,
                                  pure=False, retries=2)

    def completed(self, futures: list[Any]) -> Any:
        from distributed import as_completed

        return as_completed(futures, loop=self.client.loop)

    def failure(self, err: BaseException) -> str:
        """The reason recorded for a task that never returned."""
        from distributed import KilledWorker

        if isinstance(err, KilledWorker):
            return ("its Dask worker was lost every time it ran (killed, out of memory or its "
                    "machine stopped); not graded")
        if isinstance(err, HostError):
            return f"no Dask worker could grade it ({err})"
        return f"its Dask task failed ({type(err).__name__}); not graded"

    def _everywhere(self, action: Callable[[str], int], token: str) -> None:
        action(token)  # the local cluster's, in this process
        if self.cluster is None:
            def remote() -> None:
                try:
                    self.client.run(action, token)
                except Exception:
                    pass

            thread = threading.Thread(target=remote, daemon=True)
            thread.start()
            thread.join(10)

    def stop(self, token: str) -> None:
        """Ctrl-C: cancel what is queued, kill the grading processes already running."""
        self._everywhere(stop_batch, token)

    def close(self, token: str) -> None:
        """End the batch's idle grading processes, then the client and the local cluster."""
        import logging

        self._everywhere(stop_processes, token)
        # a worker's heartbeat can race the scheduler's close; nothing is left to report to
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        for closing in (self.client, self.cluster):
            if closing is not None:
                try:
                    closing.close(timeout=20)
                except Exception:  # shutting down: nothing left to report to
                    pass


class ThreadEngine:
    """The previous engine (a ThreadPoolExecutor of --jobs threads), kept for the benchmark."""

    def __init__(self, settings: CourseGrading, say: Callable[..., None]):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=max(1, settings.jobs))

    def submit(self, job: Job, token: str, jobs: int, keep_work: bool, key: str) -> Any:
        return self.pool.submit(grade_task, job.to_json(), token, jobs, keep_work)

    def completed(self, futures: list[Any]) -> Any:
        from concurrent.futures import as_completed

        return as_completed(futures)

    def failure(self, err: BaseException) -> str:
        return f"internal grading error: {type(err).__name__}"

    def stop(self, token: str) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        stop_batch(token)

    def close(self, token: str) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        stop_processes(token)


def grade(submissions: Path, assignment: Optional[str] = None, out: Optional[Path] = None,
          exercises: Path = EXERCISES, settings: Optional[CourseGrading] = None,
          keep_work: bool = False, echo: bool = True, engine: str = "dask") -> list[Result]:
    """Grade every entry of the folder; write grades.csv and feedback/ into `out`."""
    submissions, exercises = Path(submissions), Path(exercises)
    if not submissions.is_dir():
        raise SystemExit(f"{submissions} is not a folder of submissions")
    assignment = assignment or infer_assignment(submissions, exercises)
    out = Path(out) if out else submissions.with_name(submissions.name + "-graded")
    return grade_many([(submissions, assignment, out)], exercises, settings, keep_work, echo,
                      engine)[0]


def grade_many(requests: list[tuple[Path, str, Path]], exercises: Path = EXERCISES,
               settings: Optional[CourseGrading] = None, keep_work: bool = False,
               echo: bool = True, engine: str = "dask") -> list[list[Result]]:
    """Grade several (submissions folder, assignment, output folder) as one set of tasks."""
    from .progress import Progress
    from .summary import write_summary

    exercises = Path(exercises)
    settings = settings or load_settings(exercises)
    say: Callable[..., None] = print if echo else (lambda *a, **k: None)
    if settings.sandbox and not settings.scheduler:
        ok, why = bwrap_status()
        if not ok:
            raise SystemExit(f"course grading: {why}; install Debian's bubblewrap (apt-get "
                             "install bubblewrap), or pass --no-sandbox for trusted submissions")
    elif not settings.sandbox:
        say("course grading: WARNING: --no-sandbox: submissions run as you, with your files; "
            "grade only submissions you trust")
    if settings.lms and not settings.roster:
        raise SystemExit("course grading: --lms needs --roster (who each submission is)")
    work = Path(tempfile.mkdtemp(prefix="course-grading-"))
    token = secrets_token()
    pool: Any = None
    building: dict[str, Prebuild] = {}  # the stand-ins build while the batches get ready
    try:
        cache = model_caches()
        batches, tasks = [], []
        if not settings.scheduler:
            for assignment in dict.fromkeys(a for _f, a, _o in requests):
                building[assignment] = Prebuild(assignment, cache[0])
        for i, (folder, assignment, out) in enumerate(requests):
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
        if tasks and not settings.scheduler:  # they run here: their grading processes start
            prestart(token, min(len(tasks), max(1, settings.jobs)), work / "spare.log")
        for assignment, build in building.items():
            build.finish()
            _PREBUILT.add((assignment, cache[0]))
        where = settings.scheduler or f"{settings.jobs} local Dask worker(s)"
        say(f"grading {len(tasks)} submission(s) on {where if engine == 'dask' else 'threads'}, "
            f"{'each in a bubblewrap sandbox' if settings.sandbox else 'WITHOUT a sandbox'}; "
            f"limits: {settings.cell_timeout} s per cell, {settings.submission_timeout:g} s per "
            f"submission, {settings.memory_limit_mb} MB")
        progress = Progress(len(tasks), enabled=echo)
        count = [0]

        def done(i: int, k: int, r: Result) -> None:
            batch = batches[i]
            r = batch.finish(k, r)
            if not batch.record(k, r):
                return  # recorded already: a task that ran twice counts once
            count[0] += 1
            note = f" - {'; '.join(r.reasons)}" if r.reasons else ""
            progress.update(failed=r.status == "failed")
            progress.write(f"[{count[0]}/{len(tasks)}] {batch.assignment} {r.student} "
                           f"({r.source}): {r.total:g}/{r.max_total:g} ({r.status}, "
                           f"{r.seconds:.0f} s){note}", say)

        pending: dict[Any, tuple[int, int]] = {}
        jobs = max(1, settings.jobs)
        warm: Optional[threading.Thread] = None  # the summary's imports, while a core is idle
        try:
            for serial, (i, k) in enumerate(tasks):
                try:
                    job = batches[i].job(k, serial=serial)
                except Exception as err:  # a bug here must not lose the other submissions
                    job = batches[i].blank(batches[i].subs[k],
                                           [f"internal grading error: {type(err).__name__}"])
                if isinstance(job, Result):
                    done(i, k, job)
                    continue
                if pool is None:
                    pool = (DaskEngine if engine == "dask" else ThreadEngine)(settings, say)
                pending[pool.submit(job, token, jobs, keep_work, key=f"grade-{token}-{i}-{k}")] = (i, k)
            if pending:
                running = len(pending)
                for future in pool.completed(list(pending)):
                    running -= 1
                    if warm is None and 0 < running < jobs:  # from now on a core is idle
                        warm = threading.Thread(target=_import_plotting, daemon=True)
                        warm.start()
                    i, k = pending[future]
                    try:
                        result_json, host, kept = future.result()
                        r = Result.from_json(result_json)
                        if kept:
                            say(f"  kept {r.source}'s work folder on {host}: {kept}")
                    except Exception as err:  # the task never returned a Result
                        r = batches[i].blank(batches[i].subs[k], [pool.failure(err)])
                    done(i, k, r)
        except KeyboardInterrupt:
            progress.close()
            if pool is not None:
                pool.stop(token)
            raise
        finally:
            progress.close()
        if warm is not None:
            warm.join(60)
        for batch in batches:
            batch.out.mkdir(parents=True, exist_ok=True)
            batch._grades()
            say(f"wrote {batch.out / 'grades.csv'} and {batch.out / 'feedback'}/")
            results = [r for r in batch.results if r is not None]
            for line in write_summary(results, batch.max_scores, batch.out, batch.assignment,
                                      batch.gradebook):
                say(line)
        return [[r for r in batch.results if r is not None] for batch in batches]
    finally:
        for build in building.values():  # a batch that never got going: no builder left behind
            build.stop()
        if pool is not None:
            pool.close(token)  # its grading processes, spares included
        else:
            stop_processes(token)  # spares no task took (a batch stopped before its pool)
        if keep_work:
            say(f"kept the grader's working folder: {work}")
        else:
            _remove(work)


def _import_plotting() -> None:
    from .summary import import_plotting

    try:
        import_plotting()
    except Exception:  # the summary will say so itself, in the main thread
        pass


def secrets_token() -> str:
    """A fresh id for one run (its Dask task keys, its processes)."""
    import secrets

    return secrets.token_hex(8)
