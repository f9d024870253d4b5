"""Grading with nbgrader: every submission gets a score and a reason, whatever it contains.

The end-to-end cases are real notebooks made from each exercise source: the source itself (full
marks), the student version (zero), and damaged copies of lesson 01. They are all graded in ONE
call (one pool of kernels), offline, with shorter limits than the course's config.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils import grading
from course_utils.grading_submissions import find_submissions, read_notebook, repair
from course_utils.grading_worker import nbgrader_meta

ASSIGNMENTS = grading.source_assignments()
FAST = grading.Settings(cell_timeout=30, iopub_timeout=5, submission_timeout=600, jobs=2,
                        max_retries=3)
SIGINT_LOOP = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"


def _answers(nb: Any) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and nbgrader_meta(c).get("solution")]


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
    name = grading.notebook_name(grading.EXERCISES, assignment)
    grading.release([assignment], dest=root / "release")
    source = nbformat.read(grading.EXERCISES / "source" / assignment / name, 4)
    return source, nbformat.read(root / "release" / assignment / name, 4), name


def _write(folder: Path, student: str, name: str, nb: Any = None, raw: bytes = b"") -> None:
    (folder / student).mkdir(parents=True)
    path = folder / student / name
    if nb is not None:
        nbformat.write(nb, path)
    else:
        path.write_bytes(raw)


# ---------------------------------------------------------------------------------------------
# the lesson 01 batch: every fault in one call


def _stubbed(nb: Any, k: int, student: Any) -> None:
    """Put the student version's stub back into the k-th answer cell (an unanswered question)."""
    nb.cells[_answers(nb)[k]].source = student.cells[_answers(student)[k]].source


def _delete(nb: Any, grade_id: str) -> None:
    del nb.cells[next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == grade_id)]


def _lesson01_cases(root: Path) -> dict:
    """Real notebooks from the lesson 01 source; faults share notebooks to start fewer kernels."""
    src, rel, name = _versions("lesson01", root)
    answers = _answers(src)
    assert len(answers) >= 4, "these cases need four questions in lesson 01"
    a = [nbgrader_meta(src.cells[i])["grade_id"] for i in answers]
    q = [_test_after(src, i) for i in answers]  # the test of each answer
    subs = root / "submissions"
    subs.mkdir()
    _write(subs, "solution", name, src)
    nbformat.write(rel, subs / "student_version.ipynb")  # the flat STUDENT.ipynb layout
    # broken: answer 0 deleted; answer 1 kills the kernel; answer 2 prints 10 MB (and its test
    # was deleted: restored, so the correct answer still earns its points); answer 3 loops
    broken = _prefixed(src, {1: "import os\nos._exit(1)", 2: 'print("x" * 10_000_000)',
                             3: "while True:\n    pass"})
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
    return {"subs": subs, "a": a, "q": q, "out": root / "out", "name": name}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """ONE grading call: the lesson 01 cases, and the source + student version of every lesson."""
    if not ASSIGNMENTS:
        pytest.skip("no exercise sources yet")
    requests, cases = [], {}
    for assignment in ASSIGNMENTS:
        root = tmp_path_factory.mktemp(f"grading-{assignment}")
        if assignment == "lesson01":
            cases = _lesson01_cases(root)
            requests.append((cases["subs"], assignment, cases["out"]))
            continue
        src, rel, name = _versions(assignment, root)
        _write(root / "subs", "solution", name, src)
        _write(root / "subs", "student_version", name, rel)
        requests.append((root / "subs", assignment, root / "out"))
    with pytest.MonkeyPatch.context() as env:  # the kernels inherit it
        env.setenv("COURSE_MODELS", "offline")
        results = grading.grade_many(requests, settings=FAST, echo=False)
    by_lesson = {a: {r.student: r for r in rs} for a, rs in zip(ASSIGNMENTS, results)}
    return {"lessons": by_lesson, "lesson01": {**cases, "results": by_lesson.get("lesson01")}}


@pytest.fixture(scope="module")
def batch01(graded: dict) -> dict:
    if graded["lesson01"]["results"] is None:
        pytest.skip("exercises/source/lesson01 does not exist yet")
    return graded["lesson01"]


def _full_except(batch: dict, student: str, zero: set[str]) -> None:
    r = batch["results"][student]
    expected = {g: (0.0 if g in zero else m) for g, m in r.max_scores.items()}
    assert r.scores == expected, f"{student}: {r.scores} != {expected}; reasons: {r.reasons}"


def test_solution_earns_full_marks(batch01: dict) -> None:
    r = batch01["results"]["solution"]
    assert (r.status, r.reasons) == ("ok", []), r.reasons
    assert r.total == r.max_total > 0 and set(r.details.values()) == {"passed"}


def test_unmodified_student_version_earns_zero(batch01: dict) -> None:
    r = batch01["results"]["student_version"]
    assert r.status == "ok" and r.total == 0, (r.scores, r.reasons)
    assert "passed" not in r.details.values() and len(r.details) == len(r.max_scores)


def test_crash_loop_big_output_and_deletions_cost_only_their_questions(batch01: dict) -> None:
    a, q = batch01["a"], batch01["q"]
    _full_except(batch01, "broken", {q[0], q[1], q[3]})
    r = batch01["results"]["broken"]
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
    r = batch01["results"]["sigint"]
    text = "; ".join(r.reasons)
    assert r.status == "partial" and "ignored the interrupt" in text, text
    assert f"edited locked cell(s) restored from the source: {q[0]}" in text, text
    assert f"deleted locked cell(s) restored from the source: {q[2]}" in text, text


@pytest.mark.parametrize("student, reason", [("garbage", "not a notebook"),
                                              ("empty", "empty file")])
def test_files_that_are_not_notebooks_score_zero(batch01: dict, student: str, reason: str) -> None:
    r = batch01["results"][student]
    assert (r.status, r.total, r.reasons) == ("failed", 0, [r.reasons[0]]) and \
        r.reasons[0].startswith(reason), r.reasons


def test_grades_csv_and_feedback_cover_every_student(batch01: dict) -> None:
    out, results = batch01["out"], batch01["results"]
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    gids = list(results["solution"].max_scores)
    assert list(rows[0]) == ["student", *gids, "total", "max", "status", "reason"]
    assert sorted(row["student"] for row in rows) == sorted(results)
    for row in rows:
        r = results[row["student"]]
        assert float(row["total"]) == r.total == sum(float(row[g]) for g in gids)
        assert (row["status"], row["reason"]) == (r.status, "; ".join(r.reasons))
        folder = out / "feedback" / row["student"]
        assert (folder / batch01["name"].replace(".ipynb", ".html")).stat().st_size > 0
        assert f"score {r.total:g} / {r.max_total:g}" in (folder / "summary.txt").read_text()


def test_wall_clock_limit_stops_a_submission(tmp_path: Path) -> None:
    if not ASSIGNMENTS:
        pytest.skip("no exercise sources yet")
    src, _, name = _versions(ASSIGNMENTS[0], tmp_path)
    _write(tmp_path / "subs", "slow", name, src)
    settings = dataclasses.replace(FAST, submission_timeout=4)
    (r,) = grading.grade(tmp_path / "subs", ASSIGNMENTS[0], tmp_path / "out", settings=settings,
                         echo=False)
    assert (r.status, r.total) == ("failed", 0) and r.seconds < 30, (r.seconds, r.reasons)
    assert r.reasons == ["grading took longer than the 4 s limit for one submission and was "
                         "stopped"]


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


GRADING_WORK = os.path.join(tempfile.gettempdir(), "course-grading-")  # grading.py's mkdtemp prefix


def test_no_process_outlives_the_batch(batch01: dict) -> None:
    # A leaked kernel is re-parented to PID 1, so it is no longer the caller's descendant: look at
    # every process on the machine that still works inside a grading folder.
    leaked = _processes_working_in(GRADING_WORK)
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


# ---------------------------------------------------------------------------------------------
# every lesson: the source earns full marks, the student version zero


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_earns_full_marks_and_student_version_zero(assignment: str, graded: dict) -> None:
    results = graded["lessons"][assignment]
    source, release = results["solution"], results["student_version"]
    assert source.max_total > 0, f"{assignment} has no graded test cells"
    assert (source.status, source.total) == ("ok", source.max_total), \
        f"{assignment} source: {source.scores} ({source.details}); {source.reasons}"
    assert (release.status, release.total) == ("ok", 0), \
        f"{assignment} student version: {release.scores}; {release.reasons}"


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
    path = tmp_path / "x.ipynb"
    path.write_bytes(raw)
    nb, reason = read_notebook(path)
    assert nb is None and reason.startswith(why), reason


def test_read_notebook_accepts_a_notebook(tmp_path: Path) -> None:
    source, _ = _tiny_assignment()
    nbformat.write(source, tmp_path / "ok.ipynb")
    nb, reason = read_notebook(tmp_path / "ok.ipynb")
    assert reason == "" and len(nb.cells) == len(source.cells)


def test_find_submissions_accepts_both_layouts(tmp_path: Path) -> None:
    name = "01_pipelines_exercises.ipynb"
    for rel in [f"ann/{name}", f"bob/lesson01/{name}", "cy/my copy.ipynb", "dee.ipynb",
                "eve/notes.txt", "fay/a.ipynb", "fay/b.ipynb", f".hidden/{name}"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    found = {s.student: s for s in find_submissions(tmp_path, name)}
    assert sorted(found) == ["ann", "bob", "cy", "dee", "eve", "fay"]
    assert found["bob"].path == tmp_path / "bob" / "lesson01" / name
    assert "expected name" in found["cy"].note and found["cy"].path is not None
    assert found["eve"].path is None and found["fay"].path is None


def test_settings_come_from_the_config_file() -> None:
    config = grading.load_config()
    settings = grading.load_settings()
    assert settings.cell_timeout == config.Execute.timeout
    assert settings.submission_timeout == config.CourseGrading.submission_timeout
    assert grading.load_settings(cell_timeout=7, jobs=None).cell_timeout == 7


def test_student_ids_are_unique_and_safe() -> None:
    subs = [grading.Submission(n, None) for n in ["Ann Lee", "Ann/Lee", "ann", "..", "ann"]]
    ids = grading._student_ids(subs)
    assert len(set(ids)) == len(ids) and all("/" not in i and " " not in i for i in ids)


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


def test_infer_assignment_by_file_name_then_by_content(tmp_path: Path) -> None:
    source, _ = _tiny_assignment()
    for n in ("98", "99"):
        nb = copy.deepcopy(source)
        nb.cells[0].source = f"# Tiny exercises {n}"
        (tmp_path / "ex" / "source" / f"lesson{n}").mkdir(parents=True)
        nbformat.write(nb, tmp_path / "ex" / "source" / f"lesson{n}" / f"{n}_tiny_exercises.ipynb")
    by_name, by_content = tmp_path / "a", tmp_path / "b"
    (by_name / "bob").mkdir(parents=True)
    nbformat.write(source, by_name / "bob" / "98_tiny_exercises.ipynb")
    assert grading.infer_assignment(by_name, tmp_path / "ex") == "lesson98"
    by_content.mkdir()
    nb = copy.deepcopy(source)
    nb.cells[0].source = "# Tiny exercises 99"
    nbformat.write(nb, by_content / "ann.ipynb")
    assert grading.infer_assignment(by_content, tmp_path / "ex") == "lesson99"
