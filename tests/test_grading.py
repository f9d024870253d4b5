"""Grading: every entry gets a row and a reason, and no submission can reach another's grade.

The end-to-end cases are real notebooks made from each exercise source: the source itself (full
marks), the student version (zero), damaged copies of lesson 01 (the fault table) and hostile
ones (the threat model in README's "For instructors"). They are all graded in ONE call (one pool
of sandboxed kernels), offline, with shorter limits than the course's config, and the test
checks the honest rows, each hostile row, and that nothing outside the output folder changed.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_grading import batch as grading
from course_grading.config import EXERCISES, REPO, load_settings
from course_grading.notebooks import nbgrader_meta, read_notebook, repair
from course_grading.release import notebook_name, release, source_assignments
from course_grading.sandbox import bwrap_status
from course_grading.submissions import Submission, find_submissions, student_ids

ASSIGNMENTS = source_assignments()
FAST = dict(cell_timeout=30, interrupt_grace=5, submission_timeout=600, jobs=2, max_retries=3,
            max_file_size_mb=64)
SIGINT_LOOP = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
MARKER = "course-grading-test-detached-7f3a"
needs_bwrap = pytest.mark.skipif(not bwrap_status()[0], reason=bwrap_status()[1])


def fast(**changes: Any) -> Any:
    return load_settings(**{**FAST, **changes})


def _answers(nb: Any) -> list[int]:
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and nbgrader_meta(c).get("solution")]


def _tests(nb: Any) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade")]


def _test_after(nb: Any, index: int) -> str:
    """grade_id of the graded test that checks the answer cell at `index`."""
    return next(nbgrader_meta(nb.cells[i])["grade_id"] for i in _tests(nb) if i > index)


def _prefixed(nb: Any, faults: dict[int, str]) -> Any:
    """A copy of `nb` whose k-th answer cell starts with faults[k]."""
    nb = copy.deepcopy(nb)
    for k, code in faults.items():
        cell = nb.cells[_answers(nb)[k]]
        cell.source = code + "\n" + cell.source
    return nb


def _versions(assignment: str, root: Path) -> tuple[Any, Any, str]:
    """The source (with solutions) and a freshly released student version of an assignment."""
    name = notebook_name(EXERCISES, assignment)
    release([assignment], dest=root / "release")
    source = nbformat.read(EXERCISES / "source" / assignment / name, 4)
    return source, nbformat.read(root / "release" / assignment / name, 4), name


def _write(folder: Path, student: str, name: str, nb: Any = None, raw: bytes = b"") -> None:
    (folder / student).mkdir(parents=True)
    path = folder / student / name
    if nb is not None:
        nbformat.write(nb, path)
    else:
        path.write_bytes(raw)


def _stubbed(nb: Any, k: int, student: Any) -> None:
    """Put the student version's stub back into the k-th answer cell (an unanswered question)."""
    nb.cells[_answers(nb)[k]].source = student.cells[_answers(student)[k]].source


def _delete(nb: Any, grade_id: str) -> None:
    del nb.cells[next(i for i, c in enumerate(nb.cells)
                      if nbgrader_meta(c).get("grade_id") == grade_id)]


def checksums(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file under `folder` (symlinks by target), except the `skip` parts."""
    sums = {}
    for base, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            path = Path(base) / name
            key = str(path.relative_to(folder))
            sums[key] = ("link:" + os.readlink(path)) if path.is_symlink() else \
                hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


CHECKOUT_SKIP = (".git", ".venv", "__pycache__", ".pytest_cache", "test-artifacts",
                 ".ipynb_checkpoints", "course_utils.egg-info", ".ruff_cache")

# ---------------------------------------------------------------------------------------------
# hostile code (each block runs at the top of one answer cell; paths are filled in by the test)

VANDAL_FILES = """
import glob, os, pathlib, sys
import course_utils
targets = [pathlib.Path(course_utils.__file__).parent / "feedback.py",
           pathlib.Path({repo!r}) / "course_utils" / "feedback.py"]
for t in targets:  # edit the course helpers on disk, for every later student
    try:
        with open(t, "a") as f:
            f.write("\\nguarded = lambda f: f\\n")
        print("WROTE:", t)
    except OSError:
        pass
roots = ["/home", "/opt", "/work", "/root", "/srv", "/var", {out!r}, {subs!r},
         os.path.dirname({out!r}), os.path.dirname({subs!r})]
for root in roots:  # gradebooks, grades, progress files, classmates: whatever can be found
    seen = 0
    for base, dirs, files in os.walk(root):
        for name in files:
            t = os.path.join(base, name)
            seen += 1
            if seen > 2000 or t.startswith("/home/student"):
                continue
            try:
                with open(t, "r+b") as f:
                    f.write(b"extra_credit=100")
                print("WROTE:", t)
            except OSError:
                pass
here = pathlib.Path(course_utils.__file__).resolve().parent.parent
for t in [here / "exercises" / "source", pathlib.Path({repo!r}) / "exercises" / "source",
          pathlib.Path({subs!r}) / "solution"]:  # the solutions, a classmate's notebook
    if t.exists() and any(t.rglob("*.ipynb")):
        print("FOUND:", t)
for proc in glob.glob("/proc/[0-9]*/cmdline"):
    try:
        text = open(proc, "rb").read()
        if {subs!r}.encode() in text or b"exercises/source" in text or b"pytest\\x00" in text \\
                or b"course_grading" in text:
            print("FOUND:", proc)
    except OSError:
        pass
"""

FORGER = """
import json, os, sys
line = json.dumps({{"event": "kernel", "pid": {victim}, "pgid": {victim}}})
print(line); print(line, file=sys.stderr)  # a forged progress line, on every channel
for fd in range(3, 64):  # the kernel's own sockets included: it stops answering
    try:
        os.write(fd, (line + "\\n").encode())
    except OSError:
        pass
"""

VANDAL_PROCESSES = """
import json, os, signal, subprocess, sys, time
for how in (lambda: os.kill({victim}, signal.SIGKILL), lambda: os.killpg({victim}, signal.SIGKILL),
            lambda: os.kill(os.getppid(), signal.SIGTERM)):
    try:
        how()
        print("SIGNALLED")
    except OSError:
        pass
writer = ("import time, pathlib\\ntime.sleep(3)\\n"
          "for t in [{subs!r}, {out!r}, {repo!r} + '/course_utils']:\\n"
          "    for f in list(pathlib.Path(t).rglob('*'))[:50]:\\n"
          "        try:\\n            f.write_bytes(b'')\\n"
          "        except OSError:\\n            pass\\n")
if os.fork() == 0:  # a detached process that writes after grading
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", writer, "{marker}"])
    os._exit(0)
started = 0
for _ in range(150):  # 150 detached processes
    try:
        subprocess.Popen(["/bin/sh", "-c", "sleep 600; : {marker}"],
                         start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        started += 1
    except OSError:
        break
print("started", started)
"""

BIG_FILE = """
with open("big.bin", "wb") as f:  # a bounded large file: 100 MB, over the 64 MB limit
    for _ in range(100):
        f.write(b"x" * 2**20)
"""

MEMORY_HOG = "hog = bytearray(16 * 2**30)  # 16 GB: over the address-space limit"

TAMPER = [
    # sys.modules: this lesson's checker module replaced by a fake whose checks always pass
    """import sys, types
fake = types.ModuleType(ex.__name__)
fake.__dict__.update({k: v for k, v in vars(ex).items()})
sys.modules[ex.__name__] = fake""",
    # setattr on the checker module
    """name = next(n for n in dir(ex) if n.startswith("check_"))
setattr(ex, name, getattr(ex, name))
setattr(ex, name, lambda *args, **kwargs: None)""",
    # a post_run_cell hook that clears errors
    """def _clear(result):
    result.error_in_exec = None
get_ipython().events.register("post_run_cell", _clear)""",
    # an input transformer that turns every later cell into `pass`
    """get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"])""",
]


def _lesson01_cases(root: Path) -> dict:
    """Real notebooks from the lesson 01 source: faults, hostile code, odd entries, one folder."""
    src, rel, name = _versions("lesson01", root)
    answers = _answers(src)
    assert len(answers) >= 4, "these cases need four questions in lesson 01"
    a = [nbgrader_meta(src.cells[i])["grade_id"] for i in answers]
    q = [_test_after(src, i) for i in answers]  # the test of each answer
    subs, out = root / "submissions", root / "out"
    subs.mkdir()
    _write(subs, "solution", name, src)
    nbformat.write(rel, subs / "student_version.ipynb")  # the flat STUDENT.ipynb layout
    # broken: answer 0 deleted; answer 1 kills everything it can see (its parent, the grader,
    # every process) and exits; answer 2 prints 10 MB (its test was deleted: restored, so the
    # correct answer still earns its points); answer 3 loops
    broken = _prefixed(src, {1: "import os, signal\nfor pid in (os.getppid(), 1, -1):\n"
                                "    try:\n        os.kill(pid, signal.SIGKILL)\n"
                                "    except OSError:\n        pass\nos._exit(1)",
                             2: 'print("x" * 10_000_000)', 3: "while True:\n    pass"})
    _delete(broken, q[2])
    _delete(broken, a[0])
    _write(subs, "broken", name, broken)
    # sigint: answer 1 ignores the interrupt; questions 0 and 2 are unanswered, and their tests
    # were edited to pass / deleted: nbgrader must not give points for them
    sigint = _prefixed(src, {1: SIGINT_LOOP})
    _stubbed(sigint, 0, rel)
    _stubbed(sigint, 2, rel)
    next(c for c in sigint.cells if nbgrader_meta(c).get("grade_id") == q[0]).source = "pass"
    _delete(sigint, q[2])
    _write(subs, "sigint", name, sigint)
    _write(subs, "garbage", name, raw=random.Random(0).randbytes(4096))
    _write(subs, "empty", name, raw=b"")
    # hostile: an unanswered notebook that attacks the grader, the course and its classmates
    victim = subprocess.Popen(["sleep", "7200"], start_new_session=True)  # outlives a slow batch
    paths = dict(repo=str(REPO), out=str(out), subs=str(subs), victim=victim.pid, marker=MARKER)
    vandal = _prefixed(rel, {0: VANDAL_FILES.format(**paths),
                             1: VANDAL_PROCESSES.format(**paths), 2: BIG_FILE, 3: MEMORY_HOG})
    _write(subs, "vandal", name, vandal)
    _write(subs, "forger", name, _prefixed(src, {1: FORGER.format(**paths)}))
    _write(subs, "tamper", name, _prefixed(src, dict(enumerate(TAMPER))))
    # odd and duplicate names, symlinks, a wrong lesson (lesson 02's student version)
    for odd in (".hidden_student.ipynb", "_underscore.ipynb", "-dash.ipynb", "...ipynb",
                "émilie.ipynb", "bob.ipynb"):
        (subs / odd).write_bytes(b"")
    _write(subs, "bob", name, raw=b"")
    _write(subs, ".dotfolder", name, raw=b"")
    (subs / "broken_link.ipynb").symlink_to(root / "nowhere.ipynb")
    (subs / "solution_link.ipynb").symlink_to(EXERCISES / "source" / "lesson01" / name)
    (subs / "source_folder").symlink_to(EXERCISES / "source" / "lesson01")
    (subs / "inside_link.ipynb").symlink_to(subs / "student_version.ipynb")
    if "lesson02" in ASSIGNMENTS:
        other = notebook_name(EXERCISES, "lesson02")
        release(["lesson02"], dest=root / "release")
        (subs / "wrong_lesson.ipynb").write_bytes((root / "release" / "lesson02" / other).read_bytes())
    return {"subs": subs, "a": a, "q": q, "out": out, "name": name, "victim": victim}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """ONE grading call: the lesson 01 cases, and the source + student version of every lesson."""
    if not ASSIGNMENTS:
        pytest.skip("no exercise sources yet")
    if not bwrap_status()[0]:
        pytest.skip(bwrap_status()[1])
    requests, cases = [], {}
    for assignment in ASSIGNMENTS:
        root = tmp_path_factory.mktemp(f"grading-{assignment}")
        if assignment == "lesson01":
            cases = _lesson01_cases(root)
            requests.append((cases["subs"], None, cases["out"]))  # the assignment is inferred
            continue
        src, rel, name = _versions(assignment, root)
        _write(root / "subs", "solution", name, src)
        _write(root / "subs", "student_version", name, rel)
        requests.append((root / "subs", assignment, root / "out"))
    before = checksums(REPO, CHECKOUT_SKIP)
    subs_before = checksums(cases["subs"]) if cases else {}
    requests = [(f, a or grading.infer_assignment(f), o) for f, a, o in requests]
    work_root = tmp_path_factory.mktemp("grader-tmp")  # the batch's work folder, ours alone
    with pytest.MonkeyPatch.context() as env:
        env.setenv("COURSE_MODELS", "offline")
        env.setattr(tempfile, "tempdir", str(work_root))
        results = grading.grade_many(requests, settings=fast(), echo=False)
    finished = time.time()
    time.sleep(4)  # the detached writer would strike 3 s after its cell
    by_lesson = {a: {r.source: r for r in rs} for a, rs in zip(ASSIGNMENTS, results)}
    state = {"checkout": (before, checksums(REPO, CHECKOUT_SKIP)), "finished": finished,
             "subs_sums": (subs_before, checksums(cases["subs"]) if cases else {}),
             "inferred": requests[0][1], "work_root": work_root}
    yield {"lessons": by_lesson, "lesson01": {**cases, **state,
                                                "results": by_lesson.get("lesson01")}}
    if cases:
        cases["victim"].kill()
        cases["victim"].wait()


@pytest.fixture(scope="module")
def batch01(graded: dict) -> dict:
    if graded["lesson01"]["results"] is None:
        pytest.skip("exercises/source/lesson01 does not exist yet")
    return graded["lesson01"]


def _row(batch: dict, source: str) -> Any:
    return batch["results"][source]


def _full_except(batch: dict, source: str, zero: set[str]) -> None:
    r = _row(batch, source)
    expected = {g: (0.0 if g in zero else m) for g, m in r.max_scores.items()}
    assert r.scores == expected, f"{source}: {r.scores} != {expected}; reasons: {r.reasons}"


def test_solution_earns_full_marks(batch01: dict) -> None:
    r = _row(batch01, "solution")
    assert (r.status, r.reasons, r.flags) == ("ok", [], []), r.reasons
    assert r.total == r.max_total > 0 and set(r.details.values()) == {"passed"}


def test_unmodified_student_version_earns_zero(batch01: dict) -> None:
    r = _row(batch01, "student_version.ipynb")
    assert (r.status, r.total, r.reasons) == ("ok", 0, []), (r.scores, r.reasons)
    assert "passed" not in r.details.values() and len(r.details) == len(r.max_scores)


def test_crash_loop_big_output_and_deletions_cost_only_their_questions(batch01: dict) -> None:
    a, q = batch01["a"], batch01["q"]
    _full_except(batch01, "broken", {q[0], q[1], q[3]})
    r = _row(batch01, "broken")
    text = "; ".join(r.reasons)
    assert r.status == "partial", text
    for expected in [f"answer cell(s) deleted, their questions score zero: {a[0]}",
                     "the kernel died", f"deleted locked cell(s) restored from the source: {q[2]}",
                     "printed 10,000,001 characters", "was interrupted"]:
        assert expected in text, f"{expected!r} not in {text!r}"
    page = batch01["out"] / "feedback" / "broken" / batch01["name"].replace(".ipynb", ".html")
    assert page.stat().st_size < 1_000_000, "the 10 MB print must not reach the feedback page"


def test_sigint_loop_is_skipped_and_tampered_tests_earn_nothing(batch01: dict) -> None:
    q = batch01["q"]
    _full_except(batch01, "sigint", {q[0], q[1], q[2]})
    r = _row(batch01, "sigint")
    text = "; ".join(r.reasons)
    assert r.status == "partial" and "ignored the interrupt" in text, text
    assert f"edited locked cell(s) restored from the source: {q[0]}" in text, text
    assert f"deleted locked cell(s) restored from the source: {q[2]}" in text, text


@pytest.mark.parametrize("source, reason", [("garbage", "not a notebook"), ("empty", "empty file")])
def test_files_that_are_not_notebooks_score_zero(batch01: dict, source: str, reason: str) -> None:
    r = _row(batch01, source)
    assert (r.status, r.total, r.reasons) == ("failed", 0, [r.reasons[0]]) and \
        r.reasons[0].startswith(reason), r.reasons


def test_grades_csv_and_feedback_cover_every_entry(batch01: dict) -> None:
    out, results = batch01["out"], batch01["results"]
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    gids = list(results["solution"].max_scores)
    assert list(rows[0]) == ["student", "source", *gids, "total", "max", "status", "reason"]
    entries = sorted(p.name for p in batch01["subs"].iterdir())
    assert sorted(row["source"] for row in rows) == entries == sorted(results)
    ids = student_ids(find_submissions(batch01["subs"], batch01["name"]))
    for row in rows:
        r = results[row["source"]]
        assert float(row["total"]) == r.total == sum(float(row[g]) for g in gids)
        assert float(row["total"]) <= float(row["max"])
        assert (row["status"], row["reason"]) == (r.status, "; ".join(r.reasons))
    for sid in ids:
        folder = out / "feedback" / sid
        assert (folder / batch01["name"].replace(".ipynb", ".html")).stat().st_size > 0
        assert "score " in (folder / "summary.txt").read_text()


def test_feedback_pages_hold_no_hidden_tests(batch01: dict) -> None:
    for page in (batch01["out"] / "feedback").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text, page


def test_odd_names_duplicates_and_symlinks_each_get_a_row(batch01: dict) -> None:
    results = batch01["results"]
    for source in (".hidden_student.ipynb", "_underscore.ipynb", "-dash.ipynb", "...ipynb",
                   "émilie.ipynb", "bob.ipynb", "bob", ".dotfolder"):
        assert results[source].reasons == ["empty file"], (source, results[source].reasons)
    assert results["bob"].student == results["bob.ipynb"].student == "bob"
    assert results["broken_link.ipynb"].reasons == ["broken symlink broken_link.ipynb"]
    for source in ("solution_link.ipynb", "source_folder"):
        r = results[source]
        assert (r.status, r.total) == ("failed", 0) and \
            "symlink to outside the submissions folder: refused" in r.reasons[0], r.reasons
    assert results["inside_link.ipynb"].status == "ok"  # a link inside the folder is graded


def test_a_wrong_lesson_minority_does_not_flip_the_batch(batch01: dict) -> None:
    if "wrong_lesson.ipynb" not in batch01["results"]:
        pytest.skip("no lesson02 to mix in")
    assert batch01["inferred"] == "lesson01"
    r = batch01["results"]["wrong_lesson.ipynb"]
    assert (r.status, r.total) == ("failed", 0), r.reasons
    assert "a lesson02 notebook" in r.reasons[0] and "not lesson01" in r.reasons[0], r.reasons


def test_hostile_submission_reaches_nothing_and_hits_its_limits(batch01: dict) -> None:
    r = _row(batch01, "vandal")
    assert r.total == 0, (r.scores, r.reasons)
    text = "; ".join(r.reasons)
    assert "memory limit 4,096 MB reached in" in text and "file size limit 64 MB reached" in text, \
        text
    nb = nbformat.read(batch01["out"] / "autograded" / "vandal" / batch01["name"], 4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.outputs)
    for word in ("WROTE:", "FOUND:", "SIGNALLED"):
        assert word not in printed, printed[:3000]
    assert "started" in printed  # the process block ran
    assert batch01["victim"].poll() is None, "a forged progress line killed a process"


def test_a_kernel_whose_sockets_were_written_into_costs_only_its_cell(batch01: dict) -> None:
    q = batch01["q"]
    _full_except(batch01, "forger", {q[1]})
    r = _row(batch01, "forger")
    assert r.status == "partial" and "the grader skipped it" in "; ".join(r.reasons), r.reasons
    assert r.seconds < 3 * FAST["cell_timeout"] + 60, \
        f"the forged lines stalled the worker: {r.seconds:.0f} s"
    assert batch01["victim"].poll() is None, "a forged progress line killed a process"


def test_nothing_outside_the_output_folder_changed(batch01: dict) -> None:
    before, after = batch01["checkout"]
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"the checkout changed during grading: {changed[:10]}"
    before, after = batch01["subs_sums"]
    assert before == after, "the submissions folder changed during grading"


def _processes_working_in(prefix: str) -> list:
    """Live processes anywhere on the machine whose working folder starts with `prefix`."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.cwd().startswith(prefix):
                found.append(proc)
        except (psutil.Error, OSError):  # gone, or not ours to read
            continue
    return found


def test_no_process_outlives_the_batch(batch01: dict) -> None:
    psutil = pytest.importorskip("psutil")
    recorded = [pid for r in batch01["results"].values() for pid in r.kernel_pids]
    assert recorded, "the batch recorded no kernel process ids"
    alive = []
    for pid in recorded:
        try:
            if psutil.Process(pid).create_time() < batch01["finished"]:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    assert not alive, f"sandbox processes still running after grading: {alive}"
    detached = [p.pid for p in psutil.process_iter(["cmdline"])
                if MARKER in " ".join(p.info["cmdline"] or [])]
    assert not detached, f"{len(detached)} detached processes survived the batch"

    # A leaked kernel is re-parented to PID 1, so it is no longer the caller's descendant: look at
    # every process on the machine that still works inside a grading folder.
    leaked = _processes_working_in(str(batch01["work_root"]))
    assert not leaked, f"processes still running in a grading folder: {leaked}"


def test_the_leak_check_sees_a_detached_process(tmp_path: Path) -> None:
    import psutil

    work = Path(tempfile.mkdtemp(prefix="course-grading-", dir=tmp_path))
    # double fork, as a leaked kernel: its parent exits, so it is no longer our descendant
    subprocess.run(["sh", "-c", "setsid sleep 60 >/dev/null 2>&1 &"], cwd=work, check=True,
                   timeout=10)
    found = []
    try:
        for _ in range(50):
            found = _processes_working_in(str(tmp_path / "course-grading-"))
            if [p.name() for p in found] == ["sleep"]:  # setsid has exec'd sleep
                break
            time.sleep(0.1)
        assert [p.name() for p in found] == ["sleep"]
        assert found[0].pid not in {c.pid for c in psutil.Process().children(recursive=True)}
    finally:
        for proc in found:
            proc.kill()


def test_self_tampering_is_flagged_for_a_look_by_hand(batch01: dict) -> None:
    r = _row(batch01, "tamper")
    text = "; ".join(r.flags)
    assert any("check by hand" in x for x in r.reasons), r.reasons
    for route in ("sys.modules[", "was replaced", "post_run_cell hooks", "input_transformers_post"):
        assert route in text, f"{route!r} not flagged in {text!r}"


# ---------------------------------------------------------------------------------------------
# every lesson: the source earns full marks, the student version zero


def _hand_graded(assignment: str) -> dict[str, float]:
    """grade_id -> points of the assignment's manually graded answers (solution and grade cells)."""
    src = nbformat.read(EXERCISES / "source" / assignment / notebook_name(EXERCISES, assignment), 4)
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c).get("points", 0)) for c in src.cells
            if nbgrader_meta(c).get("grade") and nbgrader_meta(c).get("solution")}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_earns_full_marks_and_student_version_zero(assignment: str, graded: dict) -> None:
    results = graded["lessons"][assignment]
    source = results["solution"]
    release_row = results.get("student_version") or results["student_version.ipynb"]
    assert source.max_total > 0, f"{assignment} has no graded test cells"
    hand = _hand_graded(assignment)  # written answers: a person scores them, never the grader
    assert (source.status, source.total, source.flags) == ("ok", source.max_total - sum(hand.values()),
                                                           []), \
        f"{assignment} source: {source.scores} ({source.details}); {source.reasons}"
    assert {g for g, d in source.details.items() if d == "a written answer: to grade by hand"} == \
        set(hand), source.details
    assert [r for r in source.reasons if "to grade by hand" in r] == \
        [f"{g}: a written answer ({p:g} points), to grade by hand; it counts 0 until you do"
         for g, p in hand.items()], source.reasons
    assert (release_row.status, release_row.total) == ("ok", 0), \
        f"{assignment} student version: {release_row.scores}; {release_row.reasons}"
    assert not any("to grade by hand" in r for r in release_row.reasons), release_row.reasons


# ---------------------------------------------------------------------------------------------
# a batch nothing can stop: a dead worker, the wall-clock limit, an interrupted run resumed


@needs_bwrap
def test_wall_clock_limit_a_dead_worker_and_a_rerun_grade_only_what_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not ASSIGNMENTS:
        pytest.skip("no exercise sources yet")
    src, _, name = _versions(ASSIGNMENTS[0], tmp_path)
    _write(tmp_path / "subs", "slow", name, src)
    _write(tmp_path / "subs", "empty", name, raw=b"")
    out = tmp_path / "out"
    results = grading.grade(tmp_path / "subs", ASSIGNMENTS[0], out,
                            settings=fast(submission_timeout=4), echo=False)
    r = next(x for x in results if x.source == "slow")
    assert (r.status, r.total) == ("failed", 0), r.reasons
    assert r.reasons == ["grading took longer than the 4 s limit for one submission and was "
                         "stopped"]
    # a rerun keeps both rows without grading again (the worker would fail if it ran)
    monkeypatch.setattr(grading, "run_worker", lambda *a, **k: pytest.fail("graded again"))
    again = grading.grade(tmp_path / "subs", ASSIGNMENTS[0], out, settings=fast(), echo=False)
    assert sorted(x.source for x in again) == ["empty", "slow"]
    # a changed submission is graded again; a worker that dies gives 0 "failed" with a reason
    (tmp_path / "subs" / "slow" / name).write_bytes(b"{}")
    monkeypatch.undo()
    monkeypatch.setattr(grading.sys, "executable", "/bin/false")
    (r,) = [x for x in grading.grade(tmp_path / "subs", ASSIGNMENTS[0], out, settings=fast(),
                                     echo=False) if x.source == "slow"]
    assert r.status == "failed" and r.reasons, r.reasons


@needs_bwrap
def test_killing_the_grader_keeps_what_was_graded(tmp_path: Path) -> None:
    if not ASSIGNMENTS:
        pytest.skip("no exercise sources yet")
    _, rel, name = _versions(ASSIGNMENTS[0], tmp_path)
    for student in ("a", "b"):
        _write(tmp_path / "subs", student, name, raw=b"")
    _write(tmp_path / "subs", "c", name, rel)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "course_grading", "grade", str(tmp_path / "subs"), "--assignment",
           ASSIGNMENTS[0], "--out", str(out), "--jobs", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (out / "grades.csv").exists():
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["reason"] == "empty file" for r in rows), rows


# ---------------------------------------------------------------------------------------------
# fast unit tests (no kernel)


def _tiny_assignment() -> tuple[Any, Any]:
    """A 6-cell nbgrader assignment: (source, student version)."""
    def cell(kind: Any, text: str, gid: str, **flags: Any) -> Any:
        meta = {"grade": False, "solution": False, "locked": True, "schema_version": 3,
                "grade_id": gid, **flags}
        return kind(text, metadata={"nbgrader": meta})

    cells = [cell(new_markdown_cell, "# Tiny", "intro"),
             cell(new_code_cell, "import math", "setup"),
             cell(new_code_cell, "### BEGIN SOLUTION\nx = 2\n### END SOLUTION", "q1_answer",
                  solution=True, locked=False),
             cell(new_code_cell, "print(x)", "q1_check"),
             cell(new_code_cell, "assert x == 2\n### BEGIN HIDDEN TESTS\nassert x > 0\n"
                  "### END HIDDEN TESTS", "q1_test", grade=True, points=1),
             cell(new_code_cell, "print('done')", "outro")]
    source = new_notebook(cells=cells)
    student = copy.deepcopy(source)
    student.cells[2].source = "# YOUR CODE HERE\nraise NotImplementedError()"
    student.cells[4].source = "assert x == 2"
    return source, student


def test_repair_restores_deleted_test_after_its_neighbour() -> None:
    source, student = _tiny_assignment()
    nb = copy.deepcopy(student)
    del nb.cells[4]
    reasons = repair(nb, student, source)
    assert [c.metadata["nbgrader"]["grade_id"] for c in nb.cells] == \
        [c.metadata["nbgrader"]["grade_id"] for c in student.cells]
    assert reasons == ["deleted locked cell(s) restored from the source: q1_test"]


def test_repair_reports_edits_and_deleted_answers_but_not_the_source_itself() -> None:
    source, student = _tiny_assignment()
    assert repair(copy.deepcopy(source), student, source) == []
    nb = copy.deepcopy(student)
    nb.cells[4].source = "pass"
    del nb.cells[2]
    assert repair(nb, student, source) == [
        "edited locked cell(s) restored from the source: q1_test",
        "answer cell(s) deleted, their questions score zero: q1_answer"]


def test_repair_recovers_metadata_an_editor_stripped() -> None:
    source, student = _tiny_assignment()
    nb = copy.deepcopy(source)
    nb.cells[2].source = "x = 1 + 1"
    for c in nb.cells:
        del c.metadata["nbgrader"]
    nb.cells[4].source = student.cells[4].source  # the student's copy has no hidden tests
    reasons = repair(nb, student, source)
    assert [c.metadata["nbgrader"] for c in nb.cells] == [c.metadata["nbgrader"]
                                                          for c in student.cells]
    assert len(nb.cells) == 6 and "missing from 6 cell(s)" in reasons[0], reasons


def test_repair_drops_duplicate_and_unknown_grade_ids() -> None:
    source, student = _tiny_assignment()
    nb = copy.deepcopy(student)
    nb.cells.insert(3, copy.deepcopy(nb.cells[4]))  # a copied test cell
    nb.cells[3].source = "assert True"
    nb.cells.append(new_code_cell("y = 1", metadata={"nbgrader": {"grade_id": "mine"}}))
    repair(nb, student, source)
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    assert ids.count("q1_test") == 1 and "mine" not in ids
    assert len({c.id for c in nb.cells}) == len(nb.cells), "cell ids must stay unique"


@pytest.mark.parametrize("raw, why", [(b"", "empty file"), (b"   \n", "empty file"),
                                      (b"\x89PNG\r\n\x1a\n\x00\xff", "not a notebook"),
                                      (b"[1, 2]", "not a notebook"),
                                      (b'{"cells": "none"}', "not a notebook")])
def test_read_notebook_names_what_is_wrong(tmp_path: Path, raw: bytes, why: str) -> None:
    nb, reason = read_notebook(raw)
    assert nb is None and reason.startswith(why), reason


def test_read_notebook_accepts_a_notebook(tmp_path: Path) -> None:
    source, _ = _tiny_assignment()
    nbformat.write(source, tmp_path / "ok.ipynb")
    nb, reason = read_notebook((tmp_path / "ok.ipynb").read_bytes())
    assert reason == "" and len(nb.cells) == len(source.cells)


def test_settings_have_one_default_and_come_from_the_config_file(tmp_path: Path) -> None:
    from course_grading.config import settings_help

    defaults = load_settings(tmp_path)  # no config file: the traits' defaults
    assert defaults.cell_timeout == 120 and defaults.sandbox is True
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.CourseGrading.jobs = 5\n")
    assert load_settings(tmp_path).jobs == 5
    assert load_settings(tmp_path, jobs=3, cell_timeout=None).jobs == 3
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## For instructors"):]
    for name, (_, text) in settings_help().items():
        assert text, f"{name} has no help text"
        assert f"--{name.replace('_', '-')}" in section, f"README does not name --{name}"


def test_release_is_a_subcommand_and_a_folder_named_release_is_graded() -> None:
    from course_grading.cli import parser

    args = parser().parse_args(["grade", "release"])
    assert (args.command, args.submissions) == ("grade", Path("release"))
    assert parser().parse_args(["release"]).command == "release"
    assert parser().parse_args(["grade", "x", "--no-sandbox"]).sandbox is False


def test_student_ids_are_unique_and_safe() -> None:
    subs = [Submission(n, n) for n in ["Ann Lee", "Ann/Lee", "ann", "..", "ann", "-x", "émilie"]]
    ids = student_ids(subs)
    assert len(set(ids)) == len(ids)
    assert all("/" not in i and " " not in i and not i.startswith((".", "-")) for i in ids)


def test_find_submissions_accepts_both_layouts_and_every_entry(tmp_path: Path) -> None:
    name = "01_pipelines_exercises.ipynb"
    for rel in [f"ann/{name}", f"bob/lesson01/{name}", "cy/my copy.ipynb", "dee.ipynb",
                "eve/notes.txt", "fay/a.ipynb", "fay/b.ipynb", f".hidden/{name}", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    found = {s.source: s for s in find_submissions(tmp_path, name)}
    assert sorted(found) == [".hidden", "ann", "bob", "cy", "dee.ipynb", "eve", "fay",
                             "notes.txt"]
    assert found["bob"].graded_file == f"bob/lesson01/{name}"
    assert "expected name" in found["cy"].note and found["cy"].data is not None
    assert found["eve"].data is None and found["fay"].data is None
    assert found["notes.txt"].data is None and "not a notebook" in found["notes.txt"].note


def test_infer_assignment_by_majority(tmp_path: Path) -> None:
    source, _ = _tiny_assignment()
    for n in ("98", "99"):
        nb = copy.deepcopy(source)
        nb.cells[0].source = f"# Tiny exercises {n}"
        nb.cells[1].source = f"import math  # {n}"
        (tmp_path / "ex" / "source" / f"lesson{n}").mkdir(parents=True)
        nbformat.write(nb, tmp_path / "ex" / "source" / f"lesson{n}" / f"{n}_tiny_exercises.ipynb")
    by_name, by_content = tmp_path / "a", tmp_path / "b"
    (by_name / "bob").mkdir(parents=True)
    nbformat.write(source, by_name / "bob" / "98_tiny_exercises.ipynb")
    assert grading.infer_assignment(by_name, tmp_path / "ex") == "lesson98"
    by_content.mkdir()
    for student, n in (("ann", "99"), ("bea", "99"), ("cid", "98")):  # one of another lesson
        nb = copy.deepcopy(source)
        nb.cells[0].source = f"# Tiny exercises {n}"
        nb.cells[1].source = f"import math  # {n}"
        nbformat.write(nb, by_content / f"{student}.ipynb")
    assert grading.infer_assignment(by_content, tmp_path / "ex") == "lesson99"


def test_repair_flags_code_that_could_fool_the_grader() -> None:
    source, student = _tiny_assignment()
    nb = copy.deepcopy(student)
    nb.cells[2].source = "get_ipython().set_custom_exc((AssertionError,), lambda *a, **k: None)"
    assert repair(nb, student, source) == [
        "check by hand: code that could fool the grader in q1_answer"]
    nb = copy.deepcopy(student)
    nb.cells[2].source = "ex.check_value = lambda value: True\nx = 2 == 2"
    assert "q1_answer" in repair(nb, student, source)[-1]
    assert repair(copy.deepcopy(source), student, source) == []  # x == 2 is no re-binding
