"""Unit tests of lesson 04's explorer and checkers, and of its exercise notebook's nbgrader structure."""

import copy
import math
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from course_utils import next_token, standins, widgets
from course_utils.exercises import l04_logits_and_embeddings as ex
from course_utils.feedback import Feedback

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises" / "source" / "lesson04" / "04_logits_and_embeddings_exercises.ipynb"


@pytest.fixture(scope="module")
def model():
    return AutoModelForCausalLM.from_pretrained(standins.build("generation")).eval()


@pytest.fixture
def tokenizer():
    return AutoTokenizer.from_pretrained(standins.build("generation"))


def assert_wrong(feedback, *words):
    assert isinstance(feedback, Feedback) and not feedback.correct, str(feedback)
    text = str(feedback).lower()
    for word in words:
        assert word.lower() in text, f"{word!r} not in {text!r}"


# ---------- explorer (the next-token helpers themselves: tests/test_next_token.py) ----------

def test_explorer_text_fallback_shows_the_table(model, tokenizer, monkeypatch, capsys):
    import functools

    import ipywidgets as w

    monkeypatch.setenv("COURSE_WIDGETS", "text")
    fn = functools.partial(next_token.next_token_table, model, tokenizer)
    widgets.explorer(fn, {"prompt": w.Text(value="The cat"), "temperature": w.FloatSlider(value=0.5),
                          "k": w.IntSlider(value=4)})
    first = next_token.next_token_table(model, tokenizer, "The cat", 0.5, 4)["token"].iloc[0]
    assert first in capsys.readouterr().out


# ---------- Q1 ----------

def top5_reference(model, tokenizer, prompt=ex.TOPK_PROMPT):
    probs = next_token.last_logits(model, tokenizer, prompt).softmax(-1)
    values, ids = probs.topk(ex.TOPK_K)
    return pd.DataFrame({"token": [tokenizer.decode([i]) for i in ids.tolist()],
                         "probability": values.tolist()}), ids


def test_check_top5_accepts_the_answer_and_its_repr_form(model, tokenizer):
    good, _ = top5_reference(model, tokenizer)
    assert ex.check_top5(good, model, tokenizer).correct
    with_repr = good.assign(token=[repr(t) for t in good["token"]],
                            probability=good["probability"].round(4))
    assert ex.check_top5(with_repr, model, tokenizer).correct


def test_check_top5_explains_mistakes(model, tokenizer):
    good, ids = top5_reference(model, tokenizer)
    logits = next_token.last_logits(model, tokenizer, ex.TOPK_PROMPT)
    assert_wrong(ex.check_top5(None, model, tokenizer), "None")
    assert_wrong(ex.check_top5(good.to_dict(), model, tokenizer), "dict", "DataFrame")
    renamed = good.rename(columns={"probability": "p"})
    assert_wrong(ex.check_top5(renamed, model, tokenizer), "probability")
    assert_wrong(ex.check_top5(good.head(4), model, tokenizer), "4 rows")
    assert_wrong(ex.check_top5(good.iloc[::-1], model, tokenizer), "order")
    assert_wrong(ex.check_top5(good.assign(probability=logits.log_softmax(-1)[ids].tolist()),
                               model, tokenizer), "log-probabilities")
    as_logits = good.assign(probability=logits[ids].tolist())
    assert_wrong(ex.check_top5(as_logits, model, tokenizer), "logits")
    assert_wrong(ex.check_top5(good.assign(probability=["x"] * 5), model, tokenizer), "numbers")
    assert_wrong(ex.check_top5(good.assign(probability=good["probability"] * 0.5), model, tokenizer),
                 "differ")
    other, _ = top5_reference(model, tokenizer, "Zebras and")
    assert_wrong(ex.check_top5(other, model, tokenizer), "differ", "last position")


# ---------- Q2 ----------

def test_check_logprob_accepts_floats_and_scalar_tensors(model, tokenizer):
    per_token = next_token.continuation_logprob(model, tokenizer, ex.CONTINUATION_PROMPT, ex.CONTINUATION)
    total = float(per_token.sum())
    assert total < 0 and len(per_token) == len(tokenizer(ex.CONTINUATION)["input_ids"])
    assert ex.check_logprob(total, model, tokenizer).correct
    assert ex.check_logprob(torch.tensor(total), model, tokenizer).correct
    assert not ex.check_logprob(total - 0.1, model, tokenizer).correct


def test_check_logprob_explains_mistakes(model, tokenizer):
    per_token = next_token.continuation_logprob(model, tokenizer, ex.CONTINUATION_PROMPT, ex.CONTINUATION)
    total = float(per_token.sum())
    shifted = float(next_token.continuation_logprob(model, tokenizer, ex.CONTINUATION_PROMPT, ex.CONTINUATION,
                                            shift=0).sum())
    assert_wrong(ex.check_logprob(None, model, tokenizer), "None")
    assert_wrong(ex.check_logprob("-3.2", model, tokenizer), "str", "one number")
    assert_wrong(ex.check_logprob(per_token, model, tokenizer), "Tensor")
    assert_wrong(ex.check_logprob(-total, model, tokenizer), "positive")
    # the probability itself is positive: it must get its own message, not "is positive" (issue 14)
    assert_wrong(ex.check_logprob(math.exp(total), model, tokenizer), "the probability, not its logarithm")
    assert_wrong(ex.check_logprob(total / len(per_token), model, tokenizer), "average")
    assert_wrong(ex.check_logprob(total / math.log(2), model, tokenizer), "bits")
    assert_wrong(ex.check_logprob(shifted, model, tokenizer), "off by one")
    assert_wrong(ex.check_logprob(total * 3, model, tokenizer), "differs")


# ---------- Q3 ----------

def test_check_lens_accepts_the_correct_lens(model, tokenizer):
    lens = next_token.last_position_lens(model, tokenizer, ex.LENS_PROMPT)
    assert lens.shape == (model.config.n_layer + 1, model.config.vocab_size)
    assert torch.allclose(lens[-1], next_token.last_logits(model, tokenizer, ex.LENS_PROMPT), atol=1e-5)
    assert ex.check_lens(lens, model, tokenizer).correct


def test_check_lens_explains_mistakes(model, tokenizer):
    lens = next_token.last_position_lens(model, tokenizer, ex.LENS_PROMPT)
    raw = next_token.last_position_lens(model, tokenizer, ex.LENS_PROMPT, ln_f=False)
    assert not torch.allclose(raw[:-1], lens[:-1], atol=1e-3)  # the stand-in tells the two apart
    assert_wrong(ex.check_lens(None, model, tokenizer), "None")
    assert_wrong(ex.check_lens(lens.tolist(), model, tokenizer), "list", "Tensor")
    assert_wrong(ex.check_lens(lens[None], model, tokenizer), "batch dimension")
    assert_wrong(ex.check_lens(lens[1:], model, tokenizer), "hidden_states[0]")
    assert_wrong(ex.check_lens(lens[:, :10], model, tokenizer), "shape")
    assert_wrong(ex.check_lens(lens.softmax(-1), model, tokenizer), "probabilities")
    assert_wrong(ex.check_lens(raw, model, tokenizer), "ln_f")
    with torch.no_grad():
        double = torch.cat([lens[:-1], model.lm_head(model.transformer.ln_f(
            model.transformer.ln_f(_last_state(model, tokenizer))))[None]])
    assert_wrong(ex.check_lens(double, model, tokenizer), "last row")
    noisy = lens.clone()
    noisy[2] += 1.0
    assert_wrong(ex.check_lens(noisy, model, tokenizer), "rows [2]")


def _last_state(model, tokenizer):
    ids = tokenizer(ex.LENS_PROMPT, return_tensors="pt")
    with torch.no_grad():
        return model(**ids, output_hidden_states=True).hidden_states[-1][0, -1]


# ---------- Q4 ----------

def padded(tokenizer, side="left", texts=ex.PAD_TEXTS):
    tokenizer.pad_token, tokenizer.padding_side = tokenizer.eos_token, side
    batch = tokenizer(list(texts), padding=True, return_tensors="pt")
    return batch, (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)


def test_check_padded_batch_accepts_left_padding_with_position_ids(model, tokenizer):
    batch, position_ids = padded(tokenizer)
    assert not bool(batch["attention_mask"][0].all())  # the short row really is padded
    assert ex.check_padded_batch(batch, position_ids, model, tokenizer).correct
    assert ex.check_padded_batch(dict(batch), position_ids, model, tokenizer).correct


def test_check_padded_batch_explains_mistakes(model, tokenizer):
    batch, position_ids = padded(tokenizer)
    ids = batch["input_ids"]
    assert_wrong(ex.check_padded_batch(None, position_ids, model, tokenizer), "None")
    assert_wrong(ex.check_padded_batch([1, 2], position_ids, model, tokenizer), "input_ids")
    one_row = {"input_ids": ids[0], "attention_mask": batch["attention_mask"][0]}
    assert_wrong(ex.check_padded_batch(one_row, position_ids, model, tokenizer), "2-D")
    swapped, swapped_pos = padded(tokenizer, texts=ex.PAD_TEXTS[::-1])
    assert_wrong(ex.check_padded_batch(swapped, swapped_pos, model, tokenizer), "row 0")
    right, right_pos = padded(tokenizer, side="right")
    assert_wrong(ex.check_padded_batch(right, right_pos, model, tokenizer), "right padding")
    assert_wrong(ex.check_padded_batch(batch, None, model, tokenizer), "position_ids is None")
    assert_wrong(ex.check_padded_batch(batch, position_ids.tolist(), model, tokenizer), "list")
    assert_wrong(ex.check_padded_batch(batch, position_ids[:, 1:], model, tokenizer), "shape")
    assert_wrong(ex.check_padded_batch(batch, batch["attention_mask"].cumsum(-1) - 1, model, tokenizer),
                 "negative")
    default = torch.arange(ids.shape[1]).expand_as(ids)
    assert_wrong(ex.check_padded_batch(batch, default, model, tokenizer), "default positions")
    assert_wrong(ex.check_padded_batch(batch, position_ids + 1, model, tokenizer), "differ")


def test_checkers_never_raise(model, tokenizer):
    batch, position_ids = padded(tokenizer)
    broken = {"input_ids": batch["input_ids"], "attention_mask": "not a tensor"}
    assert_wrong(ex.check_padded_batch(broken, position_ids, model, tokenizer), "raised")


# ---------- Q5: a choice with evidence ----------

def evidence(model, tokenizer):
    return ex.right_padding_evidence(model, tokenizer)


def test_check_right_padding_accepts_evidence_and_the_choice_it_supports(model, tokenizer):
    ev = evidence(model, tokenizer)
    for answer in ("A", " a ", "A)", ex.RIGHT_PADDING_OPTIONS[0]):
        assert ex.check_right_padding(answer, ev, model, tokenizer).correct
    batched = {k: v[None] for k, v in ev.items()}  # (1, vocab) is accepted too
    assert ex.check_right_padding("A", batched, model, tokenizer).correct
    assert_wrong(ex.check_right_padding("D", ev, model, tokenizer), "differ by up to")
    assert_wrong(ex.check_right_padding("C", ev, model, tokenizer), "not zero")
    assert_wrong(ex.check_right_padding("B", ev, model, tokenizer), "without an error")
    assert_wrong(ex.check_right_padding("Z", ev, model, tokenizer), "not one of the options")
    assert_wrong(ex.check_right_padding(None, ev, model, tokenizer), "None")
    assert_wrong(ex.check_right_padding(1, ev, model, tokenizer), "int")


def test_check_right_padding_names_each_evidence_mistake(model, tokenizer):
    ev, vocab = evidence(model, tokenizer), model.config.vocab_size
    left = ex.padded_last_column(model, tokenizer, ex.PAD_TEXTS, side="left")[0]
    unmasked = ex.padded_last_column(model, tokenizer, ex.PAD_TEXTS, attention_mask=False)[0]
    long_row = ex.padded_last_column(model, tokenizer, ex.PAD_TEXTS)[1]
    cases = [
        (None, "compute the evidence first"),
        ([1.0, 2.0], "keys"),
        ({"last_column": ev["last_column"]}, "keys"),
        ({"last_column": ev["last_column"].tolist(), "alone": ev["alone"]}, "expected a tensor"),
        ({"last_column": ev["last_column"][:10], "alone": ev["alone"]}, "logits"),
        ({"last_column": ev["last_column"].softmax(-1), "alone": ev["alone"]}, "probabilities"),
        ({"last_column": ev["last_column"], "alone": ev["last_column"]}, "on its own"),
        ({"last_column": left, "alone": ev["alone"]}, "padded on the left"),
        ({"last_column": ev["alone"], "alone": ev["alone"]}, "not padded on the right"),
        ({"last_column": unmasked, "alone": ev["alone"]}, "attention mask"),
        ({"last_column": long_row, "alone": ev["alone"]}, "long text"),
        ({"last_column": torch.zeros(vocab), "alone": ev["alone"]}, "not logits[0, -1]"),
    ]
    for bad, words in cases:
        assert_wrong(ex.check_right_padding("A", bad, model, tokenizer), words)


def test_padded_last_column_leaves_the_tokenizer_as_it_was(model, tokenizer):
    tokenizer.padding_side, tokenizer.pad_token = "left", None
    ex.padded_last_column(model, tokenizer, ex.PAD_TEXTS)
    assert (tokenizer.padding_side, tokenizer.pad_token) == ("left", None)


# ---------- Q6: fix this broken code ----------

def fixed(model, tokenizer, texts):
    tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(list(texts), padding=True, padding_side="right", return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    return logits[torch.arange(len(texts)), batch["attention_mask"].sum(-1) - 1]


def fixed_left(model, tokenizer, texts):
    tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(list(texts), padding=True, padding_side="left", return_tensors="pt")
    positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(**batch, position_ids=positions).logits[:, -1]


def test_fix_accepts_either_fix(model, tokenizer):
    assert ex.check_fixed_next_token_logits(fixed, model, tokenizer).correct
    assert ex.check_fixed_next_token_logits(fixed_left, model, tokenizer).correct


def test_fix_inputs_show_the_bug_by_a_clear_margin(model, tokenizer):
    """Every batch the checker uses has short rows where the bug moves the logits by far more than ATOL."""
    for texts in ex.FIX_TEXTS:
        buggy = ex.padded_last_column(model, tokenizer, texts)
        gaps = [float((buggy[r] - next_token.last_logits(model, tokenizer, t)).abs().max())
                for r, t in enumerate(texts)]
        longest = max(range(len(texts)), key=lambda r: len(tokenizer(texts[r])["input_ids"]))
        assert all(g > 0.1 for r, g in enumerate(gaps) if r != longest), gaps  # measured 0.68-0.76


def test_fix_names_the_bug_and_other_mistakes(model, tokenizer):
    def unfixed(model, tokenizer, texts):
        return ex.padded_last_column(model, tokenizer, tuple(texts))

    def left_without_positions(model, tokenizer, texts):
        return ex.padded_last_column(model, tokenizer, tuple(texts), side="left")

    def one_by_one(model, tokenizer, texts):
        return torch.stack([next_token.last_logits(model, tokenizer, t) for t in texts])

    def check(fn):
        return ex.check_fixed_next_token_logits(fn, model, tokenizer)

    assert_wrong(check(unfixed), "still the bug", "logits[:, -1]")
    assert_wrong(check(left_without_positions), "position_ids")
    assert_wrong(check(one_by_one), "batched")
    assert_wrong(check(lambda m, t, x: fixed(m, t, x)[:1]), "shape")
    assert_wrong(check(lambda m, t, x: fixed(m, t, x[::-1])), "differ")
    assert_wrong(check(None), "None")
    assert_wrong(check(lambda m, t, x: 1 / 0), "ZeroDivisionError")


# ---------- brute force: no choice is earned without the evidence ----------

@pytest.fixture(scope="module")
def q5_namespace():
    from test_exercise_shortcuts import run_until

    return run_until(4, "q5_test")  # the source's cells up to Q5's graded cell, its evidence included


def _graded_cell(lesson, question):
    from test_exercise_shortcuts import _cells, _python

    return compile(_python(dict(_cells(lesson))[f"{question}_test"]), f"{question}_test", "exec")


EVIDENCE = {  # how a learner might fill right_padding_evidence without measuring it
    "missing": "del right_padding_evidence",
    "None": "right_padding_evidence = None",
    "zeros": "right_padding_evidence = {'last_column': torch.zeros(V), 'alone': torch.zeros(V)}",
    "typed constants": "right_padding_evidence = {'last_column': torch.full((V,), 2.5), "
                       "'alone': torch.ones(V)}",
    "random": "g = torch.Generator().manual_seed(0)\n"
              "right_padding_evidence = {'last_column': torch.randn(V, generator=g), "
              "'alone': torch.randn(V, generator=g)}",
    "a list": "right_padding_evidence = {k: v.tolist() for k, v in right_padding_evidence.items()}",
    "swapped": "right_padding_evidence = {'last_column': right_padding_evidence['alone'], "
               "'alone': right_padding_evidence['last_column']}",
    "left padded": "right_padding_evidence = {'last_column': ex.padded_last_column(model, tokenizer, "
                   "ex.PAD_TEXTS, side='left')[0], 'alone': right_padding_evidence['alone']}",
    "right": "",
}
CHOICES = ("A", "B", "C", "D", *ex.RIGHT_PADDING_OPTIONS)


def test_q5_brute_force_every_choice_needs_the_evidence(q5_namespace):
    from test_exercise_shortcuts import choices_earned

    earned = choices_earned(q5_namespace, EVIDENCE, CHOICES, ex.check_right_padding,
                            ("right_padding_answer", "right_padding_evidence", "model", "tokenizer"),
                            _graded_cell(4, "q5"))
    assert earned == [("right", c, True, True) for c in CHOICES if c in ("A", ex.RIGHT_PADDING_OPTIONS[0])]


# ---------- the notebooks ----------

def test_exercise_notebook_is_valid_nbgrader():
    from nbgrader.nbgraderformat import MetadataValidator
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = nbformat.read(EXERCISES, as_version=4)
    MetadataValidator().validate_nb(nb)
    metas = [cell.metadata["nbgrader"] for cell in nb.cells]
    assert all(m["schema_version"] == 3 for m in metas)
    ids = [m["grade_id"] for m in metas]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    graded = [c for c in nb.cells if c.metadata["nbgrader"]["grade"]]
    answers = [c for c in nb.cells if c.metadata["nbgrader"]["solution"]]
    assert len(graded) >= 4 and len(answers) >= 4
    assert all("### BEGIN HIDDEN TESTS" in c.source and "assert" in c.source for c in graded)
    assert all("### BEGIN SOLUTION" in c.source for c in answers)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code")
    student, resources = ClearSolutions().preprocess(copy.deepcopy(nb), {})
    student, _ = ClearHiddenTests().preprocess(student, resources)
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert text.count("raise NotImplementedError()") == len(answers)
