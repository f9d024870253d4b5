"""Grading on Dask: a real `dask scheduler` and two `dask worker` processes on loopback, one of
them SIGKILLed mid-batch; and the default LocalCluster path.

Every submission is graded exactly once with the right score; the test stops everything it
started by process id, each subprocess under a deadline. The sandbox is ON in both tests (what
is tested is the batch machinery, but the default path must be the real one).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import psutil
import pytest

import tiny_assignment as tiny
from course_grading import batch as grading
from course_grading.config import REPO, load_settings
from course_grading.sandbox import bwrap_status

needs_bwrap = pytest.mark.skipif(not bwrap_status()[0], reason=bwrap_status()[1])
DASK = str(Path(sys.executable).with_name("dask"))
FAST = dict(cell_timeout=30, interrupt_grace=5, submission_timeout=300, jobs=2)


def _start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "ab") as f:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGKILL each started process group by id, and reap it (bounded)."""
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass


def _wait(condition: Any, seconds: float, what: str, logs: list[Path] = ()) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    tails = "\n".join(f"--- {p.name}:\n{p.read_text(errors='replace')[-1500:]}"
                      for p in logs if p.exists())
    pytest.fail(f"{what} within {seconds:g} s\n{tails}")


def _sandboxes(pid: int) -> list[psutil.Process]:
    """The bubblewrap processes under a Dask worker: one per submission being graded (its
    grading process lives on from one submission to the next; each sandbox is new)."""
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.name() == "bwrap"]
    except psutil.Error:
        return []


def _grading_processes(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True)
                if "course_grading.worker" in " ".join(p.cmdline())]
    except psutil.Error:
        return []


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@needs_bwrap
def test_a_worker_killed_mid_batch_costs_nothing_and_nothing_counts_twice(tmp_path: Path) -> None:
    exercises = tiny.exercises(tmp_path)
    kinds = ["source", "student", "half"] * 4  # 12 submissions
    made = tiny.submissions(tmp_path / "subs", kinds)
    out, started = tmp_path / "out", []
    env = dict(os.environ, COURSE_MODELS="offline", OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               PYTHONPATH=str(REPO), DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="3")
    info, logs = tmp_path / "scheduler.json", [tmp_path / "scheduler.log"]
    try:
        started.append(_start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(info)], logs[0], env))
        address = _wait(lambda: info.exists() and json.loads(info.read_text() or "{}")
                        .get("address"), 60, "the scheduler did not start", logs)
        assert address.startswith("tcp://127.0.0.1:")
        workers = []
        for n in range(2):
            tmp = tmp_path / f"w{n}"  # each worker's own temp folder: its tasks' work folders
            tmp.mkdir()
            logs.append(tmp_path / f"worker{n}.log")
            workers.append(_start([DASK, "worker", address, "--nthreads", "1", "--no-nanny",
                                   "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{n}",
                                   "--local-directory", str(tmp), "--death-timeout", "60"],
                                  logs[-1], dict(env, TMPDIR=str(tmp))))
            started.append(workers[-1])
        logs.append(tmp_path / "grade.log")
        grader = _start([sys.executable, "-m", "course_grading", "grade", str(tmp_path / "subs"),
                         "--exercises", str(exercises), "--assignment", tiny.ASSIGNMENT,
                         "--out", str(out), "--scheduler", address, "--cell-timeout", "30",
                         "--scheduler-timeout", "60"], logs[-1], env)
        started.append(grader)
        # mid-batch: some grades written, and the victim has just started grading a submission
        # (under a second ago: a tiny submission takes several seconds, so its grading process
        # would still be running well after the kill if it did not end with its worker)
        victim = workers[0]

        def just_started() -> list[psutil.Process]:
            if len(_lines(out / "results.jsonl")) < 2:
                return []
            now = time.time()
            return [p for p in _sandboxes(victim.pid) if now - p.create_time() < 1.0]

        _wait(just_started, 240, "the victim started no task after two grades", logs)
        doomed = psutil.Process(victim.pid).children(recursive=True)  # grading worker, bwrap, kernel
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        # everything it started ends with it, at once (not when the submission is done)
        _wait(lambda: not any(_alive(p) for p in doomed), 1.5,
              "the killed worker's grading process, sandbox or kernel lived on")
        assert grader.wait(timeout=300) == 0, logs[-1].read_text(errors="replace")[-2000:]
        # the batch's grading processes end with it, also on the worker that lives on
        _wait(lambda: not _grading_processes(workers[1].pid), 10,
              "a grading process outlived its batch on a live Dask worker", logs)
    finally:
        _stop(started)
    lines = _lines(out / "results.jsonl")
    sources = [x["source"] for x in lines]
    assert sorted(sources) == sorted(made), f"graded {sorted(sources)}"  # each exactly once
    for x in lines:
        r = x["result"]
        want = tiny.SCORES[made[x["source"]]]
        assert (sum(r["scores"].values()), r["status"]) == (want, "ok"), (x["source"], r)
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["source"] for r in rows) == sorted(made)
    # nothing left running that this test started (workers' temp folders are inside tmp_path)
    left = [p.pid for p in psutil.process_iter() if _cwd_in(p, tmp_path)]
    assert not left, f"processes left: {left}"


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _cwd_in(p: psutil.Process, root: Path) -> bool:
    try:
        return p.cwd().startswith(str(root))
    except psutil.Error:
        return False


@needs_bwrap
def test_the_default_local_cluster_grades_once_and_a_rerun_grades_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exercises = tiny.exercises(tmp_path)
    made = tiny.submissions(tmp_path / "subs", ["source", "student", "half"])
    (tmp_path / "subs" / "empty.ipynb").write_bytes(b"")
    out = tmp_path / "out"
    monkeypatch.setenv("COURSE_MODELS", "offline")
    results = grading.grade(tmp_path / "subs", tiny.ASSIGNMENT, out, exercises,
                            load_settings(exercises, **FAST), echo=False)
    by = {r.source: r for r in results}
    assert sorted(by) == sorted([*made, "empty.ipynb"])
    for entry, kind in made.items():
        assert (by[entry].total, by[entry].status) == (tiny.SCORES[kind], "ok"), by[entry].reasons
    assert by["empty.ipynb"].status == "failed" and by["empty.ipynb"].reasons == ["empty file"]
    assert len(_lines(out / "results.jsonl")) == 4
    assert (out / "summary.txt").exists() and (out / "scores.png").stat().st_size > 1000
    # a rerun grades nothing: no task, not even a cluster
    monkeypatch.setattr(grading, "DaskEngine", lambda *a, **k: pytest.fail("a cluster again"))
    again = grading.grade(tmp_path / "subs", tiny.ASSIGNMENT, out, exercises,
                          load_settings(exercises, **FAST), echo=False)
    assert sorted(r.source for r in again) == sorted(by)
    assert len(_lines(out / "results.jsonl")) == 4


@needs_bwrap
def test_one_grading_process_grades_its_threads_submissions_and_a_dead_one_is_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exercises = tiny.exercises(tmp_path)
    made = tiny.submissions(tmp_path / "subs", ["source", "student", "half", "source", "half"])
    monkeypatch.setenv("COURSE_MODELS", "offline")
    started: list[subprocess.Popen] = []
    by_main: list[int] = []
    real_start, real_grade = grading.GradingProcess._start, grading.GradingProcess.grade

    def start(self: Any, token: str, log: Path) -> subprocess.Popen:
        started.append(real_start(self, token, log))
        if threading.current_thread() is threading.main_thread():
            by_main.append(started[-1].pid)
        return started[-1]

    calls = [0]
    first: list[Optional[int]] = []

    def grade(self: Any, job: Any, token: str) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            first.append(self.proc.pid if self.proc is not None else None)
        if calls[0] == 2:  # the process died between two submissions
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        return real_grade(self, job, token)

    monkeypatch.setattr(grading.GradingProcess, "_start", start)
    monkeypatch.setattr(grading.GradingProcess, "grade", grade)
    monkeypatch.setattr(grading, "RECYCLE_AFTER", 3)
    results = grading.grade(tmp_path / "subs", tiny.ASSIGNMENT, tmp_path / "out", exercises,
                            load_settings(exercises, **dict(FAST, jobs=1)), echo=False)
    by = {r.source: r for r in results}
    for entry, kind in made.items():  # every submission scored, the one after the death too
        assert (by[entry].total, by[entry].status) == (tiny.SCORES[kind], "ok"), by[entry].reasons
    # 5 submissions, one thread: the first process, its replacement after the death (which
    # grades 2, 3 and 4), and a fresh one for the fifth (RECYCLE_AFTER = 3)
    assert len(started) == 3, [p.pid for p in started]
    # the first was started with the batch, before its cluster, and took the first submission
    assert len(by_main) == 1 and first == by_main, (by_main, first)
    assert all(p.poll() is not None for p in started), "a grading process outlived its batch"
    # each submission still had a sandbox of its own
    assert len({pid for r in results for pid in r.kernel_pids[:1]}) == len(made)


def test_a_task_is_recorded_once_even_when_its_result_arrives_twice(tmp_path: Path) -> None:
    """Batch.record refuses a second Result for the same entry (a re-run task's late twin)."""
    exercises = tiny.exercises(tmp_path)
    tiny.submissions(tmp_path / "subs", ["source"])
    b = grading.Batch(exercises, tiny.ASSIGNMENT, load_settings(exercises), tmp_path / "work",
                      tmp_path / "subs", tmp_path / "out")
    first = b.finish(0, b.blank(b.subs[0], ["first"]))
    assert b.record(0, first) is True
    assert b.record(0, b.blank(b.subs[0], ["second"])) is False
    assert len(_lines(tmp_path / "out" / "results.jsonl")) == 1
    assert b.results[0].reasons == ["first"]


def test_the_local_cluster_listens_on_loopback_only() -> None:
    """Dask's HTTP routes (health, metrics) would take :8787 on every interface by default."""
    before = {c.laddr for c in psutil.Process().net_connections("tcp")
              if c.status == psutil.CONN_LISTEN}
    engine = grading.DaskEngine(load_settings(jobs=2), print)
    try:
        listening = [c.laddr for c in psutil.Process().net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr not in before]
    finally:
        engine.close("no-such-batch")
    assert listening, "the local cluster opened no port (the check would be hollow)"
    assert all(addr.ip == "127.0.0.1" for addr in listening), listening
    assert all(addr.port != 8787 for addr in listening), listening


def test_scheduler_address_and_unreachable_scheduler_are_one_clear_line() -> None:
    settings = load_settings(scheduler="localhost:8786", scheduler_timeout=2)
    with pytest.raises(SystemExit, match="tcp://HOST:PORT"):
        grading.DaskEngine(settings, print)
    settings = load_settings(scheduler="tcp://127.0.0.1:9", scheduler_timeout=2)
    start = time.monotonic()
    with pytest.raises(SystemExit, match="no Dask scheduler answers at tcp://127.0.0.1:9"):
        grading.DaskEngine(settings, print)
    assert time.monotonic() - start < 30


def test_finish_clamps_scores_and_keeps_the_parents_notes(tmp_path: Path) -> None:
    exercises = tiny.exercises(tmp_path)
    tiny.submissions(tmp_path / "subs", ["source"])
    b = grading.Batch(exercises, tiny.ASSIGNMENT, load_settings(exercises), tmp_path / "work",
                      tmp_path / "subs", tmp_path / "out")
    job = b.job(0)
    assert job.work == "" and job.course_copy == "" and job.env == {}  # nothing of the parent's
    r = grading.Result("forged", {"q1_test": 50.0, "q2_test": -3.0, "extra": 9.0},
                       {"q1_test": 99.0}, status="ok", reasons=["worker"])
    b.notes[0] = ["parent note"]
    r = b.finish(0, r)
    assert r.scores == {"q1_test": 1.0, "q2_test": 0.0} and r.max_scores == b.max_scores
    assert (r.student, r.source, r.reasons) == ("s00", "s00", ["parent note", "worker"])


@needs_bwrap
def test_ctrl_c_keeps_what_was_graded_and_says_so_in_one_line(tmp_path: Path) -> None:
    exercises = tiny.exercises(tmp_path)
    tiny.submissions(tmp_path / "subs", ["source", "student", "half", "source", "student"])
    out = tmp_path / "out"
    env = dict(os.environ, COURSE_MODELS="offline", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    log = tmp_path / "grade.log"
    proc = _start([sys.executable, "-m", "course_grading", "grade", str(tmp_path / "subs"),
                   "--exercises", str(exercises), "--assignment", tiny.ASSIGNMENT, "--out",
                   str(out), "--jobs", "1"], log, env)
    try:
        _wait(lambda: _lines(out / "results.jsonl"), 240, "nothing graded", [log])
        kids = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGINT)  # what Ctrl-C sends
        assert proc.wait(timeout=60) == 130
    finally:
        _stop([proc])
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-2000:]
    assert f"interrupted; what was graded is kept in {out}" in text
    kept = _lines(out / "results.jsonl")
    assert 1 <= len(kept) < 5 and (out / "grades.csv").exists()
    _wait(lambda: not any(_alive(p) for p in kids), 10, "a grading process outlived Ctrl-C")


def test_engine_row_projects_1000_submissions_from_seconds_per_submission_per_worker() -> None:
    from course_grading.bench import engines_row_text

    per = 100.0 * 2 / 30  # 100 s for 30 submissions on 2 workers
    f = {"submissions": 30, "jobs": 2, "reps": 2, "dask_s": 100.0, "threads_s": 98.0,
         "dask_vs_threads": 100 / 98 - 1, "s_per_submission_per_worker": per,
         "projected_1000_s": {w: 1000 * per / w for w in (1, 8, 32)},
         "dask_counts": {"rows": 30, "full": 15, "zero": 15}}
    seconds, result, note = engines_row_text(f)
    assert seconds == "100.0 s vs 98.0 s" and result == "+2.0% pass"
    assert "6.7 s per submission per worker" in note
    assert "1 worker 1.9 h, 8 workers 14 min, 32 workers 3 min" in note
    f["dask_vs_threads"] = 0.06
    assert engines_row_text(f)[1].endswith("over")


def test_grading_row_says_both_ratios_against_their_goals() -> None:
    from course_grading.bench import row_text

    f = {"submissions": 10, "jobs": 2, "reps": 2, "sandbox_s": 44.0, "no_sandbox_s": 42.0,
         "nbgrader_serial_s": 88.0, "sandbox_counts": {"rows": 10, "full": 5, "zero": 5},
         "sandbox_overhead": 44 / 42 - 1, "speedup_vs_nbgrader": 2.0}
    seconds, result, note = row_text(f)
    assert (seconds, result) == ("44.0 s", "2.00× pass; +5% pass")
    assert "best of 2 interleaved rounds" in note and "88.0 s" in note
    f["round_speedups"] = [1.8, 2.05]
    assert row_text(f)[2].endswith("speed-up within each round: 1.80×, 2.05×")
    f.update(sandbox_s=50.0, speedup_vs_nbgrader=88 / 50, sandbox_overhead=50 / 42 - 1)
    assert row_text(f)[1] == "1.76× below goal; +19% over"


def test_each_timed_run_leaves_a_line_to_read_a_slow_round_by(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from course_grading.bench import _say_run

    rows = [{"result": {"seconds": s, "status": st}} for s, st in
            ((8.2, "ok"), (30.5, "failed"), (9.0, "ok"))]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _say_run("sandbox", 1, 48.04, tmp_path)
    _say_run("nbgrader_serial", 0, 80.0, tmp_path / "none")
    assert capsys.readouterr().err.splitlines() == [
        "  bench round 2 sandbox: 48.0 s; per submission 8.2-30.5 s (median 9.0); 3 rows, "
        "failed, ok", "  bench round 1 nbgrader_serial: 80.0 s"]


def test_the_local_clusters_own_instruments_are_rare() -> None:
    """Dask's profiler (every 10 ms per worker) and monitors share the event loop and the cores
    with the kernels; the local cluster turns the profiler off and polls the rest rarely."""
    engine = grading.DaskEngine(load_settings(jobs=2), print)
    try:
        workers = list(engine.cluster.workers.values())
        servers = [engine.cluster.scheduler, *workers]
        assert len(workers) == 2
        for worker in workers:
            assert "profile" not in worker.periodic_callbacks
            assert worker.memory_manager.memory_monitor_interval >= 1
        for server in servers:
            assert server.periodic_callbacks["monitor"].callback_time >= 5000
            assert server.periodic_callbacks["tick"].callback_time >= 500
    finally:
        engine.close("no-such-batch")
