"""The batch summary (course_grading.summary) and the progress bar (course_grading.progress)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.image
import pytest

from course_grading.progress import Progress
from course_grading.protocol import Result
from course_grading.summary import (check_by_hand, question_table, status_counts, summary_lines,
                                    table_text, write_summary)

MAX = {"q1_test": 2.0, "q2_test": 3.0}


def _r(student: str, q1: float, q2: float, status: str = "ok", reasons=(), flags=()) -> Result:
    return Result(student, {"q1_test": q1, "q2_test": q2}, dict(MAX), status=status,
                  reasons=list(reasons), flags=list(flags), source=student)


RESULTS = [_r("ann", 2, 3), _r("bob", 2, 1, "partial"), _r("cy", 0, 0, "failed", ["empty file"]),
           _r("dee", 2, 3, reasons=["check by hand: code that could fool the grader in q1"]),
           _r("eve", 1, 3, flags=["sys.modules replaced"])]


def test_counts_by_status() -> None:
    assert status_counts(RESULTS) == {"ok": 3, "partial": 1, "failed": 1}
    assert status_counts([_r("x", 0, 0, "odd")]) == {"ok": 0, "partial": 0, "failed": 0, "odd": 1}


def test_question_table_counts_full_part_zero_and_the_mean() -> None:
    q1, q2 = question_table(RESULTS, MAX)
    assert (q1["full"], q1["part"], q1["zero"], q1["mean"]) == (3, 1, 1, 7 / 5)
    assert (q2["full"], q2["part"], q2["zero"], q2["mean"]) == (3, 1, 1, 10 / 5)
    lines = table_text([q1, q2])
    assert lines[0].split() == ["question", "max", "mean", "full", "part", "zero"]
    assert lines[1].split() == ["q1_test", "2", "1.40", "3", "1", "1"]


def test_check_by_hand_lists_the_flagged_and_the_tamper_detector() -> None:
    assert check_by_hand(RESULTS) == [
        "dee (dee): check by hand: code that could fool the grader in q1",
        "eve (eve): check by hand: the tamper detector saw sys.modules replaced"]


def test_write_summary_writes_text_and_a_labelled_histogram(tmp_path: Path) -> None:
    lines = write_summary(RESULTS, MAX, tmp_path, "lesson01")
    text = (tmp_path / "summary.txt").read_text(encoding="utf-8")
    assert text.splitlines() == lines
    assert lines[0] == "lesson01: 5 graded: 3 ok, 1 partial, 1 failed"
    assert "check by hand: 2:" in lines
    image = matplotlib.image.imread(tmp_path / "scores.png")
    assert image.shape[0] > 100 and image.shape[1] > 300
    assert lines[-1] == f"score histogram: {tmp_path / 'scores.png'}"


def test_histogram_axes_are_labelled_in_points_and_submissions(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.figure

    seen = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, *a, **k: seen.append(fig))
    write_summary(RESULTS, MAX, tmp_path, "lesson01")
    (fig,) = seen
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in axes] == ["points earned (of 2)", "points earned (of 3)"]
    assert {ax.get_ylabel() for ax in axes} == {"submissions"}
    heights = [sorted(int(p.get_height()) for p in ax.patches) for ax in axes]
    assert heights == [[1, 1, 3], [0, 1, 1, 3]]  # one bar per point value: q1 0-2, q2 0-3
    colour = axes[0].patches[0].get_facecolor()[:3]
    assert [round(c, 3) for c in colour] == [0.0, 0.42, 0.643]  # tableau-colorblind10's first


def test_summary_of_an_empty_batch_says_so(tmp_path: Path) -> None:
    lines = summary_lines([], MAX, "lesson01")
    assert lines[0] == "lesson01: 0 graded: 0 ok, 0 partial, 0 failed"
    assert write_summary([], MAX, tmp_path, "lesson01")[-1] == "check by hand: 0"
    assert not (tmp_path / "scores.png").exists()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_shows_done_total_eta_and_failures() -> None:
    screen = Terminal()
    bar = Progress(4, stream=screen)
    bar.update()
    bar.update(failed=True)
    bar.write("[2/4] a line above the bar")
    bar.close()
    text = screen.getvalue()
    assert "2/4" in text and "1 failed" in text and "[2/4] a line above the bar" in text
    assert "<" in text  # elapsed<remaining (the ETA)


def test_progress_is_quiet_when_not_a_terminal() -> None:
    pipe = io.StringIO()
    lines = []
    bar = Progress(4, stream=pipe)
    bar.update(failed=True)
    bar.write("[1/4] plain line", lines.append)
    bar.close()
    assert pipe.getvalue() == "" and lines == ["[1/4] plain line"] and bar.failed == 1
