"""Lesson 03's graded questions cannot be passed by brute force or shortcut (issue 14).

Question 3 (which head) comes with evidence, output_shape(head_class, config, inputs): every choice
with every kind of evidence (missing, the student stub, None, wrong, a typed constant or table) is
fed to the self-check (the notebook's own call) and to the graded cell; only the right evidence with
the right choice gets a "correct" and passes. Question 1 is a function re-run under probes; question
5 (predict, then verify) grades the prediction for its reason and the verification for its numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_exercise_shortcuts import _cells, _hidden, _python, run_until

from course_utils.exercises import l03_models_and_heads as ex
from course_utils.feedback import evaluate

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "exercises" / "release" / "lesson03" / "03_models_and_heads_exercises.ipynb"


def _release_cell(grade_id: str) -> str:
    nb = json.loads(RELEASE.read_text())
    return next("".join(c["source"]) for c in nb["cells"]
                if c["metadata"]["nbgrader"]["grade_id"] == grade_id)


def _exec(code: str, ns: dict, name: str) -> None:
    try:
        exec(compile(_python(code), name, "exec"), ns)
    except NotImplementedError:  # a student stub raises after its def, as in the notebook
        pass


def _graded(ns: dict, test_id: str) -> tuple[bool, bool]:
    """Whether the graded cell, and its hidden part alone, pass in a copy of `ns` (any error: 0 points)."""
    code = _python(dict(_cells(3))[test_id])
    outcomes = []
    for part in (code, _hidden(code)):
        try:
            exec(compile(part, test_id, "exec"), dict(ns))
            outcomes.append(True)
        except Exception:
            outcomes.append(False)
    return outcomes[0], outcomes[1]


# ---------------------------------------------------------------- question 3: every choice x evidence

RIGHT_SHAPE = '''
def output_shape(head_class, config, inputs):
    model = head_class.from_config(config).eval()
    with torch.no_grad():
        return tuple(model(**inputs)[0].shape)
'''


def _typed_table() -> str:
    """The visible case's shapes typed in as literals (what the learner's own print showed)."""
    from transformers import AutoTokenizer

    from course_utils import registry

    tokenizer = AutoTokenizer.from_pretrained(registry.checkpoint("sentiment", announce=False))
    ids = tokenizer([ex.HEAD_SENTENCE], return_tensors="pt")["input_ids"]
    table = {o: ex.expected_output_shape(o, ex.config_for(o, 3), ids) for o in ex.HEAD_OPTIONS}
    return (f"TABLE = {table!r}\n\ndef output_shape(head_class, config, inputs):\n"
            "    return TABLE[head_class.__name__]\n")


EVIDENCE = {
    "absent": "",
    "student stub": None,  # the release's cell, read when used
    "None": "output_shape = None\n",
    "constant": "def output_shape(head_class, config, inputs):\n    return (1, 10, 3)\n",
    "input shape": "def output_shape(head_class, config, inputs):\n"
                   "    return tuple(inputs['input_ids'].shape)\n",
    "checkpoint, not config": "def output_shape(head_class, config, inputs):\n"
                              "    return tuple(head_class.from_pretrained(ckpt)(**inputs)[0].shape)\n",
    "typed table": None,  # _typed_table(), made when used
    "right": RIGHT_SHAPE,
}


@pytest.fixture(scope="module")
def before_q3() -> dict:
    return run_until(3, "q3_evidence")


@pytest.mark.parametrize("evidence", sorted(EVIDENCE))
def test_question3_brute_force_every_choice(before_q3, evidence):
    code = {"student stub": lambda: _release_cell("q3_evidence"),
            "typed table": _typed_table}.get(evidence, lambda: EVIDENCE[evidence])()
    ns = dict(before_q3)
    _exec(code, ns, "q3_evidence")
    passed = []
    for choice in ex.HEAD_OPTIONS:
        ns["head_class"] = choice
        feedback = evaluate(ns["ex"].check_head_choice, ns, "output_shape", "head_class", "tokenizer")
        if evidence != "right":
            assert "choice" not in feedback.message, feedback
        graded, hidden = _graded(ns, "q3_test")
        if feedback.correct or graded or hidden:
            passed.append((choice, feedback.correct, graded, hidden))
    if evidence == "right":
        assert passed == [(ex.HEAD_ANSWER, True, True, True)], passed
    else:
        assert passed == [], passed


def test_question3_hidden_part_rejects_right_evidence_with_a_wrong_choice(before_q3):
    ns = dict(before_q3)
    _exec(RIGHT_SHAPE, ns, "q3_evidence")
    ns["head_class"] = "AutoModelForSequenceClassification"
    assert _graded(ns, "q3_test") == (False, False)


# ---------------------------------------------------------------- question 1: a function under probes

CLASSIFY = {
    "without the mask": '''
def classify_by_hand(model, tokenizer, texts):
    batch = tokenizer(list(texts), padding=True, return_tensors="pt").to(model.device)
    with torch.no_grad():
        probs = model(input_ids=batch["input_ids"]).logits.softmax(-1)
    return probs, [model.config.id2label[i] for i in probs.argmax(-1).tolist()]
''',
    "one text at a time": '''
def classify_by_hand(model, tokenizer, texts):
    with torch.no_grad():
        logits = torch.cat([model(**tokenizer([t], return_tensors="pt").to(model.device)).logits
                            for t in texts])
    probs = logits.softmax(-1)
    return probs, [model.config.id2label[i] for i in probs.argmax(-1).tolist()]
''',
    "the lesson's pipeline": '''
def classify_by_hand(model, tokenizer, texts):
    rows = classify(list(texts), top_k=None)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    probs = torch.tensor([[next(d["score"] for d in row if d["label"] == n) for n in names] for row in rows])
    return probs, [names[i] for i in probs.argmax(-1).tolist()]
''',
    "a new pipeline": '''
def classify_by_hand(model, tokenizer, texts):
    rows = pipeline("text-classification", model=model, tokenizer=tokenizer, top_k=None)(list(texts))
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    probs = torch.tensor([[next(d["score"] for d in row if d["label"] == n) for n in names] for row in rows])
    return probs, [names[i] for i in probs.argmax(-1).tolist()]
''',
    "a batched pipeline (one forward call)": '''
def classify_by_hand(model, tokenizer, texts):
    rows = pipeline("text-classification", model=model, tokenizer=tokenizer, top_k=None,
                    batch_size=len(texts))(list(texts))
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    probs = torch.tensor([[next(d["score"] for d in row if d["label"] == n) for n in names] for row in rows])
    return probs, [names[i] for i in probs.argmax(-1).tolist()]
''',
    "typed label names": '''
def classify_by_hand(model, tokenizer, texts):
    batch = tokenizer(list(texts), padding=True, return_tensors="pt").to(model.device)
    with torch.no_grad():
        probs = model(**batch).logits.softmax(-1)
    return probs, [["NEGATIVE", "POSITIVE"][i] for i in probs.argmax(-1).tolist()]
''',
}


@pytest.fixture(scope="module")
def before_q1() -> dict:
    return run_until(3, "q1_answer")


@pytest.mark.parametrize("shortcut", sorted(CLASSIFY))
def test_question1_shortcuts_earn_nothing(before_q1, shortcut):
    ns = dict(before_q1)
    _exec(CLASSIFY[shortcut], ns, "q1_answer")
    feedback = evaluate(ns["ex"].check_classify_by_hand, ns, "classify_by_hand", "classifier", "tokenizer")
    assert not feedback.correct, feedback
    graded, hidden = _graded(ns, "q1_test")
    assert not graded and not (hidden and shortcut != "typed label names"), (graded, hidden)


def test_question1_source_answer_passes(before_q1):
    ns = dict(before_q1)
    _exec(dict(_cells(3))["q1_answer"], ns, "q1_answer")
    feedback = evaluate(ns["ex"].check_classify_by_hand, ns, "classify_by_hand", "classifier", "tokenizer")
    assert feedback.correct, feedback
    assert _graded(ns, "q1_test") == (True, True)


# ---------------------------------------------------------------- question 5: predict, then verify

REASON = "the new head starts with small random weights, so the logits are all close to zero"
MEASURE = dict(_cells(3))["q5_answer"]


@pytest.fixture(scope="module")
def before_q5() -> dict:
    return run_until(3, "q5_prediction")


def _q5(ns: dict, prediction: str | None, reason: str | None, verify: str | None = MEASURE,
        edit_after: str | None = None) -> tuple[bool, bool]:
    """(prediction test passed, verification test passed) for a learner who does this."""
    ns = dict(ns)
    if prediction is None:
        _exec(_release_cell("q5_prediction"), ns, "q5_prediction")
    else:
        ns.update(prediction=prediction, reason=reason)
        ns["receipt"] = ns["ex"].record_prediction(prediction, reason)
    predicted, _ = _graded(ns, "q5_prediction_test")
    if verify is not None:
        _exec(verify, ns, "q5_answer")
    if edit_after is not None:
        ns["prediction"] = edit_after
    verified, _ = _graded(ns, "q5_test")
    return predicted, verified


@pytest.mark.parametrize("prediction", ["A", "B", "C"])
def test_question5_any_prediction_with_a_reason_earns_the_prediction_point(before_q5, prediction):
    assert _q5(before_q5, prediction, REASON) == (True, True)


def test_question5_what_earns_nothing(before_q5):
    assert _q5(before_q5, None, None) == (False, False)  # the student stub
    assert _q5(before_q5, "B", "uniform") == (False, False)  # no reason: no receipt, nothing verified
    typed = "untrained_probs = torch.full((4, 3), 1 / 3)\n"  # the prediction typed in as the measurement
    assert _q5(before_q5, "B", REASON, verify=typed) == (True, False)
    assert _q5(before_q5, "A", REASON, edit_after="B") == (True, False)  # edited after measuring
    assert _q5(before_q5, "B", REASON, verify=_release_cell("q5_answer")) == (True, False)
