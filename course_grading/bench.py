"""The benchmark's grading figures: sandbox overhead and throughput against plain nbgrader.

    python -m course_grading.bench [N]     (tools/benchmark.py's grading row calls measure())

The same N lesson-01 submissions (half solved, half unanswered) are graded three ways in one
run: plain `nbgrader autograde` (serial, its own gradebook), `./course grade --no-sandbox` and
`./course grade` with the sandbox, both with two jobs.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .config import EXERCISES, REPO
from .release import notebook_name, release


def kill_tree(pid: int) -> None:
    """Kill a process started with start_new_session, its group and its descendants."""
    try:
        import psutil

        for child in psutil.Process(pid).children(recursive=True):
            child.kill()
    except Exception:  # psutil missing, or the process is gone already
        pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:  # already gone
        pass


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: "
                           f"{out.decode(errors='replace').strip().splitlines()[-1:]}")
    return time.monotonic() - start, out.decode(errors="replace")


def _counts(grades: Path) -> dict[str, int]:
    with open(grades, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {"rows": len(rows), "full": sum(r["total"] == r["max"] for r in rows),
            "zero": sum(float(r["total"]) == 0 for r in rows)}


def measure(n: int = 10, jobs: int = 2, timeout: float = 3600) -> dict[str, Any]:
    """Seconds for plain nbgrader (serial), --no-sandbox and the sandbox on the same batch."""
    env = dict(os.environ, COURSE_MODELS="offline", MPLBACKEND="Agg",
               PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.pop("COURSE_STANDIN_SIZE", None)  # the small stand-ins, as ./course grade uses them
    name = notebook_name(EXERCISES, "lesson01")
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        work = Path(tmp)
        student = release(["lesson01"], dest=work / "release")[0]
        source = EXERCISES / "source" / "lesson01" / name
        subs, course = work / "submissions", work / "nbgrader"
        for k in range(n):
            nb = source if k % 2 == 0 else student
            (subs / f"student{k:02d}").mkdir(parents=True)
            shutil.copy(nb, subs / f"student{k:02d}" / name)
            (course / "submitted" / f"student{k:02d}" / "lesson01").mkdir(parents=True)
            shutil.copy(nb, course / "submitted" / f"student{k:02d}" / "lesson01" / name)
        shutil.copytree(EXERCISES / "source" / "lesson01", course / "source" / "lesson01")
        shutil.copy(EXERCISES / "nbgrader_config.py", course / "nbgrader_config.py")
        nbgrader = [sys.executable, "-m", "nbgrader"]
        _run(nbgrader + ["generate_assignment", "lesson01", "--force"], course, env, timeout)
        plain, _ = _run(nbgrader + ["autograde", "lesson01", "--force"], course, env, timeout)
        grade = [sys.executable, "-m", "course_grading", "grade", str(subs), "--assignment",
                 "lesson01", "--jobs", str(jobs)]
        figures: dict[str, Any] = {"submissions": n, "jobs": jobs, "nbgrader_serial_s": plain}
        for label, extra in (("no_sandbox", ["--no-sandbox"]), ("sandbox", [])):
            out = work / f"out-{label}"
            seconds, _ = _run(grade + ["--out", str(out), *extra], REPO, env, timeout)
            figures[f"{label}_s"] = seconds
            figures[f"{label}_counts"] = _counts(out / "grades.csv")
    figures["sandbox_overhead"] = figures["sandbox_s"] / figures["no_sandbox_s"] - 1
    figures["speedup_vs_nbgrader"] = figures["nbgrader_serial_s"] / figures["sandbox_s"]
    return figures


def row_text(f: dict[str, Any]) -> tuple[str, str, str]:
    """(time, result, note) for the benchmark table's grading row."""
    c = f["sandbox_counts"]
    return (f"{f['sandbox_s']:.1f} s", f"{c['rows']} graded",
            f"{f['submissions']} lesson-01 submissions, {f['jobs']} jobs, sandbox on: "
            f"{c['full']} full marks, {c['zero']} zero; --no-sandbox {f['no_sandbox_s']:.1f} s "
            f"(sandbox overhead {100 * f['sandbox_overhead']:+.0f}%); plain nbgrader autograde "
            f"serial {f['nbgrader_serial_s']:.1f} s ({f['speedup_vs_nbgrader']:.2f}× faster)")


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10), indent=1))
