"""Gradebook files an LMS imports (course_grading.lms): roster, Canvas and Moodle CSVs.

Checked against tests/fixtures/lms/ (the layouts Canvas's and Moodle's import pages document):
header, identifier, numeric score, a student without a submission (empty grade), a submission
not on the roster (its own file and the summary line).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import tiny_assignment as tiny
from course_grading import batch as grading
from course_grading.config import REPO, load_settings
from course_grading.lms import Gradebook, match, read_roster
from course_grading.protocol import Result

FIXTURES = Path(__file__).parent / "fixtures" / "lms"
MAX = {f"q{i}_test": m for i, m in enumerate([2.0, 3.0, 2.0, 2.0], start=1)}
TITLE = "Lesson 01 exercises"


def _result(source: str, total_per_question: list[float], status: str = "ok") -> Result:
    return Result(source.removesuffix(".ipynb"), dict(zip(MAX, total_per_question)), dict(MAX),
                  status=status, source=source)


RESULTS = [_result("ann", [2, 3, 2, 2]), _result("cy.ipynb", [2, 1.5, 1, 0]),
           _result("dee", [0, 0, 0, 0], "failed")]


def _settings(tmp_path: Path, lms: str) -> object:
    return load_settings(tmp_path, roster=str(FIXTURES / "roster.csv"), lms=lms,
                         lms_assignment=TITLE)


@pytest.mark.parametrize("lms", ["canvas", "moodle"])
def test_lms_file_matches_the_documented_layout(tmp_path: Path, lms: str) -> None:
    book = Gradebook.from_settings(_settings(tmp_path, lms), "lesson01", MAX, tmp_path)
    book.write(RESULTS)
    assert book.path == tmp_path / f"{lms}-lesson01.csv"
    assert book.path.read_text(encoding="utf-8") == (FIXTURES / f"{lms}.csv").read_text()
    with open(book.path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    scores = [r[-1] for r in rows[1:] if r[0] != "Points Possible"]
    assert [float(s) for s in scores if s] == [9.0, 4.5] and scores[1] == ""  # bob: empty
    with open(tmp_path / "not-on-roster.csv", newline="", encoding="utf-8") as f:
        extra = list(csv.DictReader(f))
    assert [(r["source"], r["status"]) for r in extra] == [("dee", "failed")]
    line = book.summary_line(RESULTS)
    assert line.startswith("roster: 2 of 3 students graded, 1 without a submission")
    assert "1 submission(s) not on the roster (dee" in line


def test_canvas_header_names_the_columns_canvas_reads() -> None:
    header = (FIXTURES / "canvas.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def test_two_submissions_of_one_student_use_the_higher_and_say_so(tmp_path: Path) -> None:
    students = read_roster(FIXTURES / "roster.csv", "canvas")
    two = [_result("ann", [0, 0, 0, 0]), _result("ann.ipynb", [2, 3, 0, 0])]
    m = match(students, two)
    assert dict((s.submission, r and r.total) for s, r in m.rows) == \
        {"ann": 5.0, "bob": None, "cy": None}
    assert sorted(r.source for r in m.duplicates["ann"]) == ["ann", "ann.ipynb"]
    book = Gradebook(students, "canvas", TITLE, "lesson01", MAX, tmp_path)
    assert "1 student(s) with several submissions, the highest used: ann" in \
        book.summary_line(two)


def test_matching_falls_back_to_case_insensitive_names() -> None:
    students = read_roster(FIXTURES / "roster.csv")
    m = match(students, [_result("ANN", [1, 0, 0, 0])])
    assert m.rows[0][1] is not None and not m.not_on_roster


@pytest.mark.parametrize("text, lms, why", [
    ("name,email\nAnn,a@x\n", "", "no submission column"),
    ("submission,name\nann,Ann\nann,Ann again\n", "", "listed twice"),
    ("submission,name,email\nann,Ann,\n", "canvas", "Canvas needs id, sis_user_id or sis_login_id"),
    ("submission,name,id\nann,Ann,1\n", "moodle", "Moodle needs email or idnumber"),
    ("", "", "is empty"),
])
def test_a_bad_roster_is_one_clear_line(tmp_path: Path, text: str, lms: str, why: str) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit, match=why):
        read_roster(path, lms)


def test_roster_with_a_byte_order_mark_and_spaced_headers(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes("\ufeffSubmission, Name ,Email\nann,Ann,a@x\n".encode())
    (ann,) = read_roster(path, "moodle")
    assert (ann.submission, ann.name, ann.email) == ("ann", "Ann", "a@x")
    path.write_bytes(b"submission,name\n\xff\xfe\n")
    with pytest.raises(SystemExit, match="not UTF-8"):
        read_roster(path)


def test_lms_without_roster_refuses_at_once(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "course_grading", "grade", str(tmp_path),
                           "--assignment", "lesson01", "--lms", "canvas", "--no-sandbox"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--lms needs --roster" in done.stderr, done.stderr[-500:]


def test_a_batch_writes_the_lms_file_beside_grades_csv(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end through grade(); --no-sandbox: the sandbox is irrelevant to the gradebook."""
    exercises = tiny.exercises(tmp_path)
    made = tiny.submissions(tmp_path / "subs", ["source", "half"])  # s00: 3/3, s01: 1/3
    (tmp_path / "subs" / "stray.ipynb").write_bytes(b"")
    roster = tmp_path / "roster.csv"
    roster.write_text("submission,name,email\ns00,Ann,ann@x\ns01,Bob,bob@x\ngone,Cy,cy@x\n",
                      encoding="utf-8")
    monkeypatch.setenv("COURSE_MODELS", "offline")
    out = tmp_path / "out"
    grading.grade(tmp_path / "subs", tiny.ASSIGNMENT, out, exercises,
                  load_settings(exercises, roster=str(roster), lms="moodle", sandbox=False,
                                cell_timeout=30, jobs=2), echo=False)
    assert sorted(made) == ["s00", "s01"]
    assert (out / "moodle-lesson98.csv").read_text(encoding="utf-8").splitlines() == [
        "Email address,Full name,lesson98", "ann@x,Ann,3", "bob@x,Bob,1", "cy@x,Cy,"]
    assert "stray.ipynb" in (out / "not-on-roster.csv").read_text(encoding="utf-8")
    summary = (out / "summary.txt").read_text(encoding="utf-8")
    assert "roster: 2 of 3 students graded, 1 without a submission" in summary
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        assert {r["source"]: r["total"] for r in csv.DictReader(f)} == \
            {"s00": "3", "s01": "1", "stray.ipynb": "0"}  # per-question columns stay here
