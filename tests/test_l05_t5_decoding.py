"""Unit tests of lesson 05's checkers, explorer and stepper widget: right, wrong, None, wrong type, errors."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from transformers import T5ForConditionalGeneration

from conftest import load_standin
from course_utils import probes, widgets
from course_utils.decoding import (DecodingStepper, candidate_table, first_step_logits,
                                   greedy_decode)
from course_utils.exercises import l05_t5_decoding as ex
from course_utils.feedback import Feedback


@pytest.fixture(scope="module")
def t5():
    return load_standin("t5", T5ForConditionalGeneration)


@pytest.fixture(scope="module")
def inputs(t5):
    return t5[1]("translate English to German: Good morning, how are you?", return_tensors="pt")


@pytest.fixture(scope="module")
def labels(t5):
    return t5[1](text_target="Guten Morgen, wie geht es dir?", return_tensors="pt")["input_ids"]


def correct(outcome):
    assert isinstance(outcome, Feedback), outcome
    return outcome.correct


# ---- question 1: first-step logits, a function re-run on the checker's inputs ---------------------

def first_step(model, inputs):
    start = torch.full((inputs["input_ids"].shape[0], 1), model.config.decoder_start_token_id)
    return model(**inputs, decoder_input_ids=start).logits[:, -1, :]


def test_first_step_right(t5):
    model, tokenizer = t5
    assert correct(ex.check_first_step(first_step, model, tokenizer))


@pytest.mark.parametrize("transform,words", [
    (lambda x, d: x * d ** 0.5, "sqrt(d_model)"),
    (lambda x, d: x.softmax(-1), "probabilities"),
    (lambda x, d: x[:, None, :], "one dimension too many"),
    (lambda x, d: x[0], "shape"),
    (lambda x, d: x + 1.0, "values differ"),
    (lambda x, d: x.tolist(), "list"),
])
def test_first_step_wrong(t5, transform, words):
    model, tokenizer = t5
    outcome = ex.check_first_step(lambda m, enc: transform(first_step(m, enc), m.config.d_model),
                                  model, tokenizer)
    assert not correct(outcome) and words in outcome.message, outcome


def test_first_step_padded_batch_needs_the_attention_mask(t5):
    """The checker's padded batch shows the missing mask by a clear margin (2.7 in the logits offline)."""
    model, tokenizer = t5
    enc = ex.first_step_batch(tokenizer)
    gap = (first_step_logits(model, enc["input_ids"], enc["attention_mask"])
           - first_step_logits(model, enc["input_ids"])).abs().max()
    assert gap > 0.1, gap

    def without_mask(model, inputs):
        return first_step(model, {"input_ids": inputs["input_ids"]})

    outcome = ex.check_first_step(without_mask, model, tokenizer)
    assert not correct(outcome) and "attention_mask" in outcome.hint, outcome


def test_first_step_probes_catch_generate_helpers_and_labels(t5):
    model, tokenizer = t5

    def via_generate(model, inputs):
        return model.generate(**inputs, max_new_tokens=1, return_dict_in_generate=True,
                              output_logits=True).logits[0]

    def via_helper(model, inputs):
        return first_step_logits(model, inputs["input_ids"], inputs["attention_mask"])

    def via_labels(model, inputs):
        return model(**inputs, labels=torch.full((inputs["input_ids"].shape[0], 1), 3)).logits[:, -1]

    cases = ((via_generate, "generate()"), (via_helper, "first_step_logits"), (via_labels, "labels="))
    for fn, words in cases:
        outcome = ex.check_first_step(fn, model, tokenizer)
        assert not correct(outcome) and words in outcome.message, outcome


def test_first_step_none_and_not_a_function(t5):
    model, tokenizer = t5
    assert "None" in ex.check_first_step(None, model, tokenizer).message
    assert "expected a function" in ex.check_first_step(torch.zeros(3), model, tokenizer).message


# ---- question 2: the loss by hand, from the learner's own shift --------------------------------

def teacher_forced_loss(model, inputs, labels):
    start = torch.full_like(labels[:, :1], model.config.decoder_start_token_id)
    decoder_input_ids = torch.cat([start, labels[:, :-1]], dim=1)
    decoder_input_ids = decoder_input_ids.masked_fill(decoder_input_ids == -100, model.config.pad_token_id)
    logits = model(**inputs, decoder_input_ids=decoder_input_ids).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def test_loss_right_as_tensor_and_float(t5):
    model, tokenizer = t5
    assert correct(ex.check_teacher_forced_loss(teacher_forced_loss, model, tokenizer))
    as_float = ex.check_teacher_forced_loss(lambda *a: teacher_forced_loss(*a).item(), model, tokenizer)
    assert correct(as_float)


def test_loss_batch_has_minus_100_that_the_shift_keeps():
    """The padded batch has several -100s, so dropping the last label does not remove them all."""
    tokenizer = load_standin("t5", T5ForConditionalGeneration)[1]
    _, labels = ex.loss_batch(tokenizer)
    assert int((labels[:, :-1] == -100).sum()) >= 2


def test_watch_labels_sees_every_route_and_restores_the_profiler(t5, inputs, labels):
    import sys

    model, _ = t5
    with ex.watch_labels(model) as seen, torch.no_grad():
        model(**inputs, labels=labels)
        model.forward(**inputs, labels=labels)
        type(model).forward(model, **inputs, labels=labels)
        model(**inputs, decoder_input_ids=labels)  # no labels: not counted
    assert seen == {"labels": 3}
    assert sys.getprofile() is None


def _loss_variant(kind):
    def fn(model, inputs, labels):
        start = torch.full_like(labels[:, :1], model.config.decoder_start_token_id)
        dec = torch.cat([start, labels[:, :-1]], dim=1).masked_fill(
            torch.cat([start, labels[:, :-1]], dim=1) == -100, model.config.pad_token_id)
        targets = labels
        if kind == "unshifted":
            dec = labels.clamp(min=0)
        if kind == "pads counted":
            targets = labels.masked_fill(labels == -100, model.config.pad_token_id)
        if kind == "raw -100":
            dec = torch.cat([start, labels[:, :-1]], dim=1)
        kwargs = {"input_ids": inputs["input_ids"]} if kind == "no mask" else dict(inputs)
        logits = model(**kwargs, decoder_input_ids=dec).logits
        vocab = logits.shape[-1]
        if kind == "GPT-2":
            return F.cross_entropy(logits[:, :-1].reshape(-1, vocab), targets[:, 1:].reshape(-1))
        if kind == "summed":
            return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), reduction="sum")
        if kind == "softmax":
            return F.cross_entropy(logits.softmax(-1).reshape(-1, vocab), targets.reshape(-1))
        if kind == "per token":
            return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), reduction="none")
        return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
    return fn


@pytest.mark.parametrize("kind,words", [
    ("unshifted", "not shifted right"),
    ("GPT-2", "GPT-2"),
    ("summed", "summed"),
    ("softmax", "softmax"),
    ("pads counted", "padding counts"),
    ("no mask", "attention_mask"),
    ("raw -100", "-100 is not a token id"),
    ("per token", "single number"),
])
def test_loss_wrong_diagnosed(t5, kind, words):
    model, tokenizer = t5
    outcome = ex.check_teacher_forced_loss(_loss_variant(kind), model, tokenizer)
    assert not correct(outcome) and words in str(outcome), (kind, outcome)


def test_loss_probes_catch_the_model_s_own_loss_and_shift(t5):
    model, tokenizer = t5
    cases = {
        "labels=": lambda m, enc, lab: m(**enc, labels=lab).loss,
        "_shift_right": lambda m, enc, lab: F.cross_entropy(
            m(**enc, decoder_input_ids=m._shift_right(lab)).logits.flatten(0, 1), lab.flatten()),
    }
    for words, fn in cases.items():
        outcome = ex.check_teacher_forced_loss(fn, model, tokenizer)
        assert not correct(outcome) and words in outcome.message, (words, outcome)


def test_loss_bad_types(t5):
    model, tokenizer = t5
    assert "None" in ex.check_teacher_forced_loss(None, model, tokenizer).message
    assert "None" in ex.check_teacher_forced_loss(lambda *a: None, model, tokenizer).message
    assert "str" in ex.check_teacher_forced_loss(lambda *a: "6.2", model, tokenizer).message


# ---- question 3: greedy loop with the cache --------------------------------------------------

def good_greedy(model, input_ids, attention_mask, max_new_tokens):
    """The learner's loop, written without the course's helpers (the checker forbids them)."""
    return loop(model, input_ids, attention_mask, max_new_tokens)


def loop(model, input_ids, attention_mask, max_new_tokens, *, rescale=True, cache=True, stop=True,
         rerun_encoder=False, with_start=False):
    """A hand loop with switchable mistakes."""
    encoder_outputs = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
    decoded = torch.full((1, 1), model.config.decoder_start_token_id)
    past, tokens, rows = None, [], []
    for _ in range(max_new_tokens):
        feed = decoded[:, -1:] if cache else decoded
        if rerun_encoder:
            out = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=feed,
                        past_key_values=past, use_cache=cache)
            logits = out.logits[0, -1]
            past = out.past_key_values if cache else None
        else:
            dec = model.decoder(input_ids=feed, encoder_hidden_states=encoder_outputs.last_hidden_state,
                                encoder_attention_mask=attention_mask, past_key_values=past, use_cache=cache)
            past = dec.past_key_values if cache else None
            hidden = dec.last_hidden_state[0, -1]
            logits = model.lm_head(hidden * model.config.d_model ** -0.5 if rescale else hidden)
        token = int(logits.argmax())
        tokens.append(token)
        rows.append(logits)
        decoded = torch.cat([decoded, decoded.new_tensor([[token]])], dim=1)
        if stop and token == model.config.eos_token_id:
            break
    start = [model.config.decoder_start_token_id] if with_start else []
    return start + tokens, torch.stack(rows)


def then(answer, change):
    """Apply `change(tokens, logits)` to one run's answer (so the loop runs once per call)."""
    return change(*answer)


def test_greedy_right(t5):
    model, tokenizer = t5
    assert correct(ex.check_greedy(good_greedy, model, tokenizer))
    assert correct(ex.check_greedy(lambda *a: loop(*a), model, tokenizer))
    assert correct(ex.check_greedy(lambda *a: then(loop(*a), lambda t, lg: (t, list(lg))), model, tokenizer))


@pytest.mark.parametrize("mistake,words", [
    (dict(rescale=False), "sqrt(d_model)"),
    (dict(cache=False), "cache is not used"),
    (dict(stop=False), "EOS"),
    (dict(rerun_encoder=True), "encoder ran"),
    (dict(with_start=True), "start token"),
])
def test_greedy_wrong(t5, mistake, words):
    model, tokenizer = t5
    outcome = ex.check_greedy(lambda *a: loop(*a, **mistake), model, tokenizer)
    assert not correct(outcome)
    assert words in outcome.message + outcome.hint, outcome


def test_greedy_bad_shapes_and_types(t5):
    model, tokenizer = t5
    assert "function" in ex.check_greedy(None, model, tokenizer).message
    assert "tuple" in ex.check_greedy(lambda *a: loop(*a)[0], model, tokenizer).message
    assert "tokens is a" in ex.check_greedy(lambda *a: ("abc", loop(*a)[1]), model, tokenizer).message
    wrong_rows = lambda *a: then(loop(*a), lambda t, lg: (t, lg[:1]))  # noqa: E731 (a one-line stand-in answer)
    assert "shape" in ex.check_greedy(wrong_rows, model, tokenizer).message
    shifted = lambda *a: then(loop(*a), lambda t, lg: (t, lg + 0.5))  # noqa: E731 (a one-line stand-in answer)
    assert "logits differ" in ex.check_greedy(shifted, model, tokenizer).message


def test_greedy_learner_error_is_feedback_and_hooks_are_removed(t5):
    model, tokenizer = t5

    def broken(*args):
        raise RuntimeError("oops")

    outcome = ex.check_greedy(broken, model, tokenizer)
    assert not correct(outcome) and "RuntimeError" in outcome.message
    assert not model.lm_head._forward_hooks and not model.decoder._forward_pre_hooks


def test_forced_tokens_scripts_lm_head_calls(t5):
    model, tokenizer = t5
    enc = tokenizer("summarize: hello there", return_tensors="pt")
    with probes.forced_tokens(model, {0: 9, 1: 21}):
        result = greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=3)
    assert result.tokens[:2] == [9, 21]
    assert not model.lm_head._forward_hooks


# ---- question 4: comparing two inputs --------------------------------------------------------

def compare(model, a, b):
    """The learner's comparison, written without the course's helpers (the checker forbids them)."""
    start = torch.full((1, 1), model.config.decoder_start_token_id)
    with torch.no_grad():
        log_p, log_q = (model(**e, decoder_input_ids=start).logits[0, -1].float().log_softmax(-1)
                        for e in (a, b))
    return {"cosine": float(F.cosine_similarity(log_p.exp(), log_q.exp(), dim=0)),
            "kl": float((log_p.exp() * (log_p - log_q)).sum())}


def test_comparison_right(t5):
    model, tokenizer = t5
    assert correct(ex.check_comparison(compare, model, tokenizer))
    as_tensors = lambda m, a, b: {k: torch.tensor(v) for k, v in compare(m, a, b).items()}  # noqa: E731 (a one-line stand-in answer)
    assert correct(ex.check_comparison(as_tensors, model, tokenizer))


def test_comparison_reference_properties(t5):
    model, tokenizer = t5
    a, b = (tokenizer(t, return_tensors="pt") for t in ex.PROMPTS)
    same = ex.first_step_comparison(model, a, a)
    assert abs(same["cosine"] - 1) < 1e-5 and abs(same["kl"]) < 1e-6
    there, back = ex.first_step_comparison(model, a, b), ex.first_step_comparison(model, b, a)
    assert there["kl"] > 0 and back["kl"] > 0 and there["kl"] != back["kl"]


def test_comparison_wrong_diagnosed(t5):
    model, tokenizer = t5

    def swapped(m, a, b):
        return {"cosine": compare(m, a, b)["cosine"], "kl": compare(m, b, a)["kl"]}

    def logit_cosine(m, a, b):
        start = torch.full((1, 1), m.config.decoder_start_token_id)
        with torch.no_grad():
            la, lb = (m(**e, decoder_input_ids=start).logits[0, -1] for e in (a, b))
        return {"cosine": float(F.cosine_similarity(la, lb, dim=0)), "kl": compare(m, a, b)["kl"]}

    def negative(m, a, b):
        return {"cosine": compare(m, a, b)["cosine"], "kl": -compare(m, a, b)["kl"]}

    def off(m, a, b):
        return {"cosine": compare(m, a, b)["cosine"], "kl": 2 * compare(m, a, b)["kl"]}

    for fn, words in [(swapped, "KL(p_b || p_a)"), (logit_cosine, "logits"), (negative, "negative"),
                      (off, "expected")]:
        outcome = ex.check_comparison(fn, model, tokenizer)
        assert not correct(outcome) and words in outcome.message, outcome
    wrong_cos = lambda m, a, b: {"cosine": 0.1, "kl": compare(m, a, b)["kl"]}  # noqa: E731 (a one-line stand-in answer)
    assert "expected" in ex.check_comparison(wrong_cos, model, tokenizer).message


def test_comparison_bad_types(t5):
    model, tokenizer = t5
    assert "function" in ex.check_comparison(3, model, tokenizer).message
    assert "dict" in ex.check_comparison(lambda m, a, b: [1, 2], model, tokenizer).message
    assert "lacks" in ex.check_comparison(lambda m, a, b: {"cosine": 1.0}, model, tokenizer).message
    assert "None" in ex.check_comparison(lambda m, a, b: {"cosine": None, "kl": 0}, model, tokenizer).message
    vector = lambda m, a, b: {"cosine": torch.ones(3), "kl": 0.0}  # noqa: E731 (a one-line stand-in answer)
    assert "single number" in ex.check_comparison(vector, model, tokenizer).message


# ---- question 5: the stepper's table ---------------------------------------------------------

def table(logits, tok, k):
    """The learner's table, written without the course's candidate_table (the checker forbids it)."""
    values, ids = logits.softmax(-1).topk(k)
    return pd.DataFrame({"token": [tok.decode([i]) for i in ids.tolist()], "id": ids.tolist(),
                         "probability": values.tolist()})


def test_top_candidates_right(t5):
    _, tokenizer = t5
    assert correct(ex.check_top_candidates(table, tokenizer))
    assert "candidate_table" in ex.check_top_candidates(candidate_table, tokenizer).message

    def own(logits, tok, k):
        values, ids = logits.softmax(-1).topk(k)
        return pd.DataFrame({"token": [tok.decode([i]) for i in ids.tolist()], "id": ids.tolist(),
                             "probability": values.tolist(), "extra": 0})

    assert correct(ex.check_top_candidates(own, tokenizer))


def test_top_candidates_wrong(t5):
    _, tokenizer = t5

    def local_softmax(logits, tok, k):
        values, ids = logits.topk(k)
        return pd.DataFrame({"token": "", "id": ids.tolist(), "probability": values.softmax(-1).tolist()})

    def logits_as_probs(logits, tok, k):
        values, ids = logits.topk(k)
        return pd.DataFrame({"token": "", "id": ids.tolist(), "probability": values.tolist()})

    def least_first(logits, tok, k):
        return table(logits, tok, k).iloc[::-1]

    cases = [(local_softmax, "top k only"), (logits_as_probs, "not softmax"),
             (least_first, "most probable first"),
             (lambda lg, t, k: table(lg, t, k).drop(columns="probability"), "columns"),
             (lambda lg, t, k: table(lg, t, k + 1), "rows"),
             (lambda lg, t, k: table(lg, t, k).to_dict(), "dict"),
             (None, "function")]
    for fn, words in cases:
        outcome = ex.check_top_candidates(fn, tokenizer)
        assert not correct(outcome) and words in outcome.message + outcome.hint, (words, outcome)


# ---- question 6: the rescale, a choice with evidence ----------------------------------------------

def test_rescale_choice_needs_evidence_first(t5, inputs):
    model, _ = t5
    ev = ex.rescale_evidence(model, inputs)
    assert correct(ex.check_rescale_choice(ex.CHOICES[1], ev, model, inputs))
    assert correct(ex.check_rescale_choice(ex.CHOICES[1], {k: v[None] for k, v in ev.items()}, model, inputs))
    for wrong_choice in (ex.CHOICES[0], ex.CHOICES[2]):
        outcome = ex.check_rescale_choice(wrong_choice, ev, model, inputs)
        assert not correct(outcome) and "does not follow from your evidence" in outcome.message
    assert "not one of" in ex.check_rescale_choice("b", ev, model, inputs).message
    factor = model.config.d_model ** 0.5
    cases = [
        (None, "compute the evidence first"),
        ({"with_rescale": ev["with_rescale"]}, "keys"),
        ({"with_rescale": ev["with_rescale"].softmax(-1), "without_rescale": ev["without_rescale"]},
         "probabilities"),
        ({"with_rescale": ev["without_rescale"], "without_rescale": ev["with_rescale"]}, "'with_rescale'"),
        ({"with_rescale": ev["with_rescale"], "without_rescale": ev["with_rescale"]}, "still in it"),
        ({"with_rescale": ev["with_rescale"], "without_rescale": ev["with_rescale"] / factor},
         "rescaled once more"),
        ({"with_rescale": ev["with_rescale"], "without_rescale": ev["without_rescale"][:5]}, "shape"),
    ]
    for bad, words in cases:
        outcome = ex.check_rescale_choice(ex.CHOICES[1], bad, model, inputs)
        assert not correct(outcome) and words in outcome.message, (words, outcome)


def test_choice_from_evidence_covers_each_option():
    z = torch.tensor([1.0, 2.0, 0.5])
    assert ex.choice_from_evidence(z, z * 8) == ex.CHOICES[1]
    assert ex.choice_from_evidence(z, z + 3) == ex.CHOICES[2]
    assert ex.choice_from_evidence(z, -z) == ex.CHOICES[0]


RESCALE_EVIDENCE = {  # how a learner might fill rescale_evidence without measuring it
    "missing": "del rescale_evidence",
    "None": "rescale_evidence = None",
    "zeros": "rescale_evidence = {'with_rescale': torch.zeros(V), 'without_rescale': torch.zeros(V)}",
    "typed constants": "rescale_evidence = {'with_rescale': torch.ones(V), "
                       "'without_rescale': torch.full((V,), 8.0)}",
    "random": "g = torch.Generator().manual_seed(0)\n"
              "rescale_evidence = {'with_rescale': torch.randn(V, generator=g), "
              "'without_rescale': torch.randn(V, generator=g) * 8}",
    "a list": "rescale_evidence = {k: v.tolist() for k, v in rescale_evidence.items()}",
    "the model's logits twice": "rescale_evidence = {'with_rescale': rescale_evidence['with_rescale'], "
                                "'without_rescale': rescale_evidence['with_rescale']}",
    "right": "",
}


def test_q6_brute_force_every_choice_needs_the_evidence():
    from test_exercise_shortcuts import _cells, _python, choices_earned, run_until

    graded = compile(_python(dict(_cells(5))["q6_test"]), "q6_test", "exec")
    earned = choices_earned(run_until(5, "q6_test"), RESCALE_EVIDENCE, ex.CHOICES,
                            ex.check_rescale_choice,
                            ("rescale_answer", "rescale_evidence", "model", "inputs"), graded)
    assert earned == [("right", ex.CHOICES[1], True, True)]


# ---- explorer and stepper widget -------------------------------------------------------------

def test_first_step_table(t5):
    model, tokenizer = t5
    table = ex.first_step_table(model, tokenizer, "summarize: hello", k=4)
    assert list(table.columns) == ["token", "id", "probability"] and len(table) == 4
    enc = tokenizer("summarize: hello", return_tensors="pt")
    want = first_step_logits(model, enc["input_ids"], enc["attention_mask"])[0].topk(4).indices.tolist()
    assert table["id"].tolist() == want


def test_stepper_text_describes_each_step(t5):
    model, tokenizer = t5
    stepper = DecodingStepper(model, tokenizer, "summarize: hello", k=2, max_new_tokens=1)
    before = widgets.stepper_text(stepper)
    assert "0 tokens" in before and "next step's candidates" in before
    table = stepper.step()
    after = widgets.stepper_text(stepper, table)
    assert "step 1: chose" in after and f"id {stepper.tokens[0]}" in after and "finished" in after


@pytest.mark.parametrize("mode", ["text", "widgets"])
def test_stepper_widget_buttons_drive_the_stepper(t5, monkeypatch, capsys, mode):
    model, tokenizer = t5
    monkeypatch.setenv("COURSE_WIDGETS", "text" if mode == "text" else "")
    stepper = DecodingStepper(model, tokenizer, "summarize: hello", k=2, max_new_tokens=2)
    widget = widgets.stepper_widget(stepper)
    shown = capsys.readouterr().out
    if mode == "text":
        assert "stepper.step()" in shown and "next step's candidates" in shown
    next_button, reset_button = widget.children[0].children
    next_button.click()
    assert len(stepper.tokens) == 1
    next_button.click()
    next_button.click()  # finished: does not raise
    assert stepper.done and len(stepper.tokens) == 2
    reset_button.click()
    assert stepper.tokens == [] and not stepper.done


def test_stepper_widget_survives_an_unfinished_table_function(t5, monkeypatch, capsys):
    model, tokenizer = t5
    monkeypatch.setenv("COURSE_WIDGETS", "text")

    def unfinished(logits, tok, k):
        raise NotImplementedError()

    stepper = DecodingStepper(model, tokenizer, "summarize: hello", k=2, table_fn=unfinished)
    widget = widgets.stepper_widget(stepper)
    assert "NotImplementedError" in capsys.readouterr().out
    widget.children[0].children[0].click()  # Next token: reported, not raised
    assert stepper.tokens == []
