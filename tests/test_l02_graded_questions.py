"""Lesson 02's graded multiple choice is no free oracle (issue 14), and its hand-graded answer is not
auto-scored.

Question 4 comes with evidence, round_trip(tokenizer, text). Brute force: every choice, with every
kind of evidence (missing, the student stub, None, wrong, a typed constant or table), is fed to the
self-check (the same call as the notebook's check cell) and to the graded cell: none gets a "correct",
every graded cell fails (0 points). Only the right evidence with the right choice passes both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_exercise_shortcuts import _cells, _hidden, _python, run_until

from course_utils.exercises import l02_tokenization as ex
from course_utils.feedback import evaluate

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "exercises" / "release" / "lesson02" / "02_tokenization_exercises.ipynb"
SOURCE = ROOT / "exercises" / "source" / "lesson02" / "02_tokenization_exercises.ipynb"


def _release_cell(grade_id: str) -> str:
    nb = json.loads(RELEASE.read_text())
    return next("".join(c["source"]) for c in nb["cells"]
                if c["metadata"]["nbgrader"]["grade_id"] == grade_id)


def _typed_table() -> str:
    """The evidence typed in: the visible texts' round trips for each family, as literals."""
    rows = {}
    for role in ex.FAMILY_ROLE.values():
        tokenizer = ex.tokenizer_for(role)
        for text in ex.SPELL_TEXTS:
            rows[(type(tokenizer).__name__, text)] = ex.round_trip_reference(tokenizer, text)
    return (f"TABLE = {rows!r}\n\ndef round_trip(tokenizer, text):\n"
            "    return TABLE[(type(tokenizer).__name__, text)]\n")


RIGHT = "def round_trip(tokenizer, text):\n    return tokenizer.decode(tokenizer(text)['input_ids'], " \
        "skip_special_tokens=True)\n"
EVIDENCE = {
    "absent": "",
    "student stub": _release_cell("q4_evidence"),
    "None": "round_trip = None\n",
    "identity": "def round_trip(tokenizer, text):\n    return text\n",
    "constant": "def round_trip(tokenizer, text):\n    return 'snow ☃ and 🤗'\n",
    "special tokens kept": "def round_trip(tokenizer, text):\n"
                           "    return tokenizer.decode(tokenizer(text)['input_ids'])\n",
    "typed table": None,  # made when used: _typed_table()
    "right": RIGHT,
}


@pytest.fixture(scope="module")
def before_q4() -> dict:
    """The notebook's namespace just before question 4's evidence cell (the source's answers above)."""
    return run_until(2, "q4_evidence")


def _run(namespace: dict, evidence: str, choice: str) -> tuple:
    """(the self-check's feedback, whether the graded cell passed, whether its hidden part passed)."""
    ns = dict(namespace)
    try:
        exec(compile(_python(evidence), "q4_evidence", "exec"), ns)
    except NotImplementedError:  # the stub's cell raises after defining round_trip, as in the notebook
        pass
    exec(f"lossless_family = {choice!r}", ns)
    feedback = evaluate(ns["ex"].check_lossless_family, ns, "round_trip", "lossless_family")
    graded = _python(dict(_cells(2))["q4_test"])
    outcomes = []
    for code in (graded, _python(_hidden(graded))):
        try:
            exec(compile(code, "q4_test", "exec"), dict(ns))
            outcomes.append(True)
        except Exception:  # any error in a graded cell: nbgrader gives it 0 points
            outcomes.append(False)
    return feedback, *outcomes


@pytest.mark.parametrize("evidence", sorted(EVIDENCE))
def test_question4_brute_force_every_choice(before_q4, evidence):
    passed = []
    for choice in ex.FAMILY_OPTIONS:
        code = _typed_table() if evidence == "typed table" else EVIDENCE[evidence]
        feedback, graded, hidden = _run(before_q4, code, choice)
        if evidence != "right":
            assert "choice" not in feedback.message, feedback  # the choice is not judged yet
        if feedback.correct or graded or hidden:
            passed.append((choice, feedback.correct, graded, hidden))
    if evidence == "right":  # the right evidence: exactly the right choice earns the points
        assert passed == [("byte-level BPE (GPT-2)", True, True, True)], passed
    else:
        assert passed == [], passed


def test_question4_hidden_part_alone_rejects_right_evidence_with_a_wrong_choice(before_q4):
    _, graded, hidden = _run(before_q4, RIGHT, "WordPiece (BERT)")
    assert not graded and not hidden


def test_question5_is_hand_graded_and_its_rubric_stays_in_the_source():
    source = {c["metadata"]["nbgrader"]["grade_id"]: c for c in json.loads(SOURCE.read_text())["cells"]}
    cell = source["q5_answer"]
    meta = cell["metadata"]["nbgrader"]
    # nbgrader 0.9.6 (utils.determine_grade): a solution cell that is also a grade cell gets no
    # automatic score once its text differs from the released stub; it waits for a human
    assert cell["cell_type"] == "markdown" and meta["solution"] and meta["grade"] and meta["points"] == 3
    assert not meta["locked"] and "Rubric" in "".join(cell["source"])
    released = _release_cell("q5_answer")
    assert released.strip() == "YOUR ANSWER HERE" and "Rubric" not in RELEASE.read_text()


def test_unanswered_written_answer_scores_zero_automatically_and_an_answer_needs_a_human():
    import nbformat
    from nbgrader.utils import compute_checksum, determine_grade

    released = nbformat.read(RELEASE, 4)
    cell = next(c for c in released.cells if c.metadata.nbgrader["grade_id"] == "q5_answer")
    assert cell.metadata.nbgrader["checksum"] == compute_checksum(cell)  # the release stores it
    assert determine_grade(cell) == (0, 3.0)  # left as "YOUR ANSWER HERE": 0 points, no human needed
    answered = nbformat.from_dict(json.loads(json.dumps(cell)))
    answered.source = "The model needs resize_token_embeddings before it can read the new id."
    assert determine_grade(answered) == (None, 3.0)  # None: nbgrader marks it needs_manual_grade
