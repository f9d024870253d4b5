"""Lesson 05 (T5 decoding): the checkers (each returns a Feedback) and the first-step explorer.

The stepper's view is `course_utils.widgets.stepper_widget`; the probes the checkers use
(forced_tokens, watch_encoder_decoder) live in `course_utils.probes`.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
from typing import Any, Callable, Iterator

import pandas as pd
import torch
import torch.nn.functional as F

from .. import decoding
from ..display import prob_bar_chart
from ..decoding import candidate_table, eos_ids, first_step_logits
from ..feedback import (Feedback, describe_error, expect_callable, expect_evidence, expect_logits,
                        expect_number, expect_shape, expect_tokens_and_logits, expect_type, fail, guarded,
                        match_choice, right)
from ..probes import count_calls, count_function_calls, forced_tokens, watch_encoder_decoder

PROMPTS = ("translate English to German: The weather is nice today.",
           "summarize: The meeting was moved to Friday because two speakers were ill.")


def forbidden_functions() -> dict[str, Callable]:
    """What the answers must not call: generate(), course_utils.decoding's helpers, the references in ex."""
    from transformers import GenerationMixin

    helpers = {name: fn for name, fn in vars(decoding).items()
               if inspect.isfunction(fn) and fn.__module__ == decoding.__name__}
    return {"generate": GenerationMixin.generate, **helpers, "_reference_greedy": _reference_greedy,
            "first_step_comparison": first_step_comparison, "first_step_table": first_step_table}


@contextlib.contextmanager
def no_shortcuts(model: Any = None, extra: dict[str, Callable] | None = None) -> Iterator[dict[str, int]]:
    """Count calls of model.generate, forbidden_functions() and `extra` in the block; `used` names them."""
    with contextlib.ExitStack() as stack:
        counted = stack.enter_context(count_calls(model)) if model is not None else None
        calls = stack.enter_context(count_function_calls(**forbidden_functions(), **(extra or {})))
        used: dict[str, int] = {}
        try:
            yield used
        finally:
            used.update({name: n for name, n in calls.items() if n})
            if counted is not None and counted.generate:
                used["generate"] = max(used.get("generate", 0), counted.generate)


def expect_no_shortcuts(used: dict[str, int], who: str) -> None:
    """Fail when no_shortcuts saw a forbidden call."""
    if "generate" in used:
        fail(f"{who} calls generate(): the exercise asks you to write the steps yourself",
             "call the model (its forward) step by step; do not call model.generate()")
    if used:
        names = ", ".join(f"{name}()" for name in sorted(used))
        fail(f"{who} calls the course's {names}: the checker compares your code with these",
             "write the computation yourself with the model, torch and the tokenizer")


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=tol, rtol=tol))


# ---- questions 1 and 2: functions re-run on the checker's own inputs, under probes ----------------

FIRST_STEP_TEXTS = ("translate English to German: I like green tea.",
                    "summarize: The meeting was moved to Friday because two speakers were ill and the "
                    "room was booked.")  # padded as one batch: the short row needs its attention mask
LOSS_PAIRS = ((FIRST_STEP_TEXTS[0], "Ich mag grünen Tee."),
              (FIRST_STEP_TEXTS[1], "Am Freitag."))  # the short labels are padded with -100


@contextlib.contextmanager
def watch_labels(model: Any) -> Iterator[dict[str, int]]:
    """Count the model's forward calls that received labels= (so the model computed its own loss).

    A profiler on the forward function's code sees every route (model(...), model.forward(...), the
    class's forward); it chains to any profiler already set, so it nests inside no_shortcuts().
    """
    code = inspect.unwrap(type(model).forward).__code__
    seen = {"labels": 0}
    previous = sys.getprofile()

    def profiler(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is code and frame.f_locals.get("labels") is not None:
            seen["labels"] += 1
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(profiler)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


def _run_watched(fn: Callable[..., Any], model: Any, *args: Any,
                 forbidden: dict[str, Callable] | None = None) -> tuple[Any, dict[str, int], int]:
    """fn(model, *args) under no_shortcuts and watch_labels: (answer, shortcuts used, calls with labels)."""
    with no_shortcuts(model, extra=forbidden) as used, watch_labels(model) as seen, torch.no_grad():
        answer = fn(model, *args)
    return answer, used, seen["labels"]


def first_step_batch(tokenizer: Any, device: Any = "cpu") -> Any:
    """Question 1's checking inputs: FIRST_STEP_TEXTS as one padded batch."""
    return tokenizer(list(FIRST_STEP_TEXTS), padding=True, return_tensors="pt").to(device)


@guarded
def check_first_step(fn: Any, model: Any, tokenizer: Any) -> Feedback:
    """Q1: does fn(model, inputs) return the (batch, vocab) first-step logits, without labels or generate?"""
    expect_callable(fn, "first_step", "first_step(model, inputs)")
    for name, enc in (("one input", tokenizer(FIRST_STEP_TEXTS[0], return_tensors="pt")),
                      ("a padded batch of two", first_step_batch(tokenizer))):
        enc = enc.to(model.device)
        answer, used, with_labels = _run_watched(fn, model, enc)
        expect_no_shortcuts(used, "first_step")
        if with_labels:
            fail("first_step passes labels= to the model: this question is about the logits without labels",
                 "pass decoder_input_ids= holding only config.decoder_start_token_id, one per row")
        expect_type(answer, torch.Tensor, "first_step(...)")
        expected = first_step_logits(model, enc["input_ids"], enc["attention_mask"])
        batch, vocab = expected.shape
        if tuple(answer.shape) == (batch, 1, vocab):
            fail(f"for {name} you returned shape {tuple(answer.shape)}: one dimension too many",
                 "take the last decoder position: out.logits[:, -1, :]")
        expect_shape(answer, (batch, vocab), f"first_step(...) for {name}",
                     hint="one row per input, one column per vocabulary entry: out.logits[:, -1, :]")
        if _close(answer, expected):
            continue
        if _close(answer, expected * model.config.d_model ** 0.5, 1e-3):
            fail(f"your logits are sqrt(d_model) = {model.config.d_model ** 0.5:.1f} times too large",
                 "you applied lm_head to the decoder output without T5's d_model ** -0.5 "
                 "rescale; call the full model, or rescale first")
        if _close(answer, torch.softmax(expected, dim=-1)):
            fail("these are probabilities, not logits", "drop the softmax")
        unmasked = first_step_logits(model, enc["input_ids"])
        if batch > 1 and _close(answer, unmasked):
            fail("right for an unpadded input, wrong for the padded row of a batch: the encoder "
                 "attended to the pads",
                 "pass the attention_mask too: model(**inputs, decoder_input_ids=...)")
        fail(f"for {name} the shape is right but the values differ from the model's first-step logits",
             "pass decoder_input_ids holding only config.decoder_start_token_id (one per row) and the "
             "attention_mask too")
    return right("first-step logits for one input and for a padded batch, equal to the model's, "
                 "without labels or generate()")


def loss_batch(tokenizer: Any, pairs: tuple[tuple[str, str], ...] = LOSS_PAIRS,
               device: Any = "cpu") -> tuple[Any, torch.Tensor]:
    """Inputs and labels for `pairs`, the labels' padding set to -100 (ignored by the loss)."""
    enc = tokenizer([x for x, _ in pairs], padding=True, return_tensors="pt").to(device)
    labels = tokenizer(text_target=[y for _, y in pairs], padding=True, return_tensors="pt")["input_ids"]
    labels[labels == tokenizer.pad_token_id] = -100
    return enc, labels.to(device)


def _shifted(model: Any, labels: torch.Tensor) -> torch.Tensor:
    """Decoder inputs for `labels`: the start token, then labels[:, :-1], -100 replaced by the pad id."""
    start = torch.full_like(labels[:, :1], model.config.decoder_start_token_id)
    shifted = torch.cat([start, labels[:, :-1]], dim=1)
    return shifted.masked_fill(shifted == -100, model.config.pad_token_id)


def _loss_mistakes(model: Any, enc: Any, labels: torch.Tensor) -> dict[str, float]:
    """The typical wrong methods' values for one batch, keyed by what they did wrong."""
    vocab = model.config.vocab_size
    flat = labels.reshape(-1)
    with torch.no_grad():
        logits = model(**enc, decoder_input_ids=_shifted(model, labels)).logits.float()
        unshifted = model(**enc, decoder_input_ids=labels.clamp(min=0)).logits.float()
        unmasked = model(input_ids=enc["input_ids"], decoder_input_ids=_shifted(model, labels)).logits.float()
    padded = flat.masked_fill(flat == -100, model.config.pad_token_id)
    return {
        "the decoder read the labels themselves, not shifted right: each position saw the token it "
        "should predict": F.cross_entropy(unshifted.reshape(-1, vocab), flat).item(),
        "you shifted logits and labels again as for GPT-2; with the decoder inputs shifted right, "
        "logits[:, i] already predicts labels[:, i]":
            F.cross_entropy(logits[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1)).item(),
        "you summed the per-token losses; the model averages them (reduction='mean')":
            F.cross_entropy(logits.reshape(-1, vocab), flat, reduction="sum").item(),
        "you applied softmax before cross_entropy, which applies log-softmax itself":
            F.cross_entropy(torch.softmax(logits, -1).reshape(-1, vocab), flat).item(),
        "the padding counts in your loss: positions whose label is -100 must be skipped":
            F.cross_entropy(logits.reshape(-1, vocab), padded).item(),
        "the encoder attended to the pads: pass the attention_mask":
            F.cross_entropy(unmasked.reshape(-1, vocab), flat).item(),
    }


def shift_right_of(model: Any) -> dict[str, Callable]:
    """The model's own label shift, {'_shift_right': fn}, for no_shortcuts(extra=...) (empty if none)."""
    shift = getattr(type(model), "_shift_right", None)
    return {"_shift_right": shift} if shift is not None else {}


@guarded
def check_teacher_forced_loss(fn: Any, model: Any, tokenizer: Any) -> Feedback:
    """Q2: does fn(model, inputs, labels) compute the model's loss from logits, without labels=?"""
    expect_callable(fn, "teacher_forced_loss", "teacher_forced_loss(model, inputs, labels)")
    shift_right = shift_right_of(model)
    for name, (enc, labels) in (("one pair", loss_batch(tokenizer, LOSS_PAIRS[:1])),
                                ("a padded batch of two (labels with -100)", loss_batch(tokenizer))):
        enc, labels = enc.to(model.device), labels.to(model.device)
        try:
            answer, used, with_labels = _run_watched(fn, model, enc, labels.clone(), forbidden=shift_right)
        except IndexError as err:
            fail(f"for {name} your code raised {describe_error(err)}",
                 "-100 is not a token id: replace it by config.pad_token_id in the decoder inputs "
                 "(keep it in the targets, which cross_entropy then skips)")
        expect_no_shortcuts({k: v for k, v in used.items() if k != "_shift_right"}, "teacher_forced_loss")
        if with_labels:
            fail("teacher_forced_loss passes labels= to the model, which then computes the loss itself",
                 "build decoder_input_ids yourself (start token, then labels[:, :-1], -100 -> pad id), "
                 "call the model with them and compute F.cross_entropy from the logits")
        if "_shift_right" in used:
            fail("teacher_forced_loss calls model._shift_right(), the model's own shift",
                 "shift by hand: torch.cat([start, labels[:, :-1]], dim=1), then replace -100 by the pad id")
        value = expect_number(answer, f"the loss for {name}",
                              hint="average over the tokens (reduction='mean')")
        with torch.no_grad():
            expected = float(model(**enc, labels=labels).loss)
        if math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-5):
            continue
        for why, wrong_value in _loss_mistakes(model, enc, labels).items():
            if math.isclose(value, wrong_value, rel_tol=1e-4, abs_tol=1e-5):
                fail(f"for {name} your loss is {value:.4f}, the model's {expected:.4f}", why)
        fail(f"for {name} your loss is {value:.4f}, the model's {expected:.4f}",
             "F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1)) with the logits of "
             "model(**inputs, decoder_input_ids=<labels shifted right>)")
    return right("the model's teacher-forced loss, from your own shift and the logits, for one pair "
                 "and for a padded batch with -100 labels")


def _reference_greedy(model: Any, enc: Any, max_new_tokens: int) -> tuple[list[int], torch.Tensor]:
    out = model.generate(**enc, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                         return_dict_in_generate=True, output_logits=True)
    return out.sequences[0, 1:].tolist(), torch.stack(out.logits)[:, 0]


@guarded
def check_greedy(fn: Any, model: Any, tokenizer: Any, max_new_tokens: int = 6) -> Feedback:
    """Does fn(model, input_ids, attention_mask, max_new_tokens) match generate, using the cache?"""
    expect_callable(fn, "my_greedy", "my_greedy(model, input_ids, attention_mask, max_new_tokens)")
    eos = min(eos_ids(model)) if eos_ids(model) else None
    vocab = model.config.vocab_size
    # Real checkpoints and stand-ins alike: force a varied path and an EOS, so stopping is tested.
    forced = {1: 7 % vocab, 2: 11 % vocab, 3: eos} if eos is not None else {1: 7 % vocab}
    for text, script in zip(PROMPTS, ({}, forced)):
        enc = tokenizer(text, return_tensors="pt").to(model.device)
        with forced_tokens(model, script):
            want_tokens, want_logits = _reference_greedy(model, enc, max_new_tokens)
        with forced_tokens(model, script), watch_encoder_decoder(model) as calls, torch.no_grad(), \
                no_shortcuts(model) as used:
            answer = fn(model, enc["input_ids"], enc["attention_mask"], max_new_tokens)
        expect_no_shortcuts(used, "my_greedy")
        tokens, logits = expect_tokens_and_logits(answer, "my_greedy")
        if tokens[:1] == [model.config.decoder_start_token_id] and tokens[1:] == want_tokens:
            fail("your tokens start with the decoder start token",
                 "return only the new tokens (generate's sequences[0, 1:])")
        if tokens != want_tokens:
            stop = " (did you stop at EOS?)" if eos in want_tokens else ""
            fail(f"for {text[:30]!r}... you chose {tokens}, generate chose {want_tokens}{stop}",
                 "take the argmax of the last position's logits and feed that token back; stop "
                 "after EOS is appended or at max_new_tokens")
        expect_shape(logits, tuple(want_logits.shape), "logits",
                     hint="one row of vocabulary logits per generated token")
        if _close(logits, want_logits * model.config.d_model ** 0.5, 1e-2):
            fail("your logits are sqrt(d_model) too large",
                 "apply T5's d_model ** -0.5 rescale before lm_head (or call the full model)")
        if not _close(logits, want_logits, 1e-3):
            gap = (logits.detach().float().cpu() - want_logits.float().cpu()).abs().max()
            fail(f"the tokens match but the logits differ from generate's by up to {gap:.3g}",
                 "keep the logits of the last position at every step, as the model returns them")
        if calls.encoder_runs > 1:
            fail(f"the encoder ran {calls.encoder_runs} times for one input",
                 "run it once and pass encoder_outputs= at every step")
        if any(n != 1 for n in calls.decoder_tokens[1:]):
            fail("tokens and logits are right, but each step feeds the whole prefix to "
                 "the decoder: the cache is not used",
                 "pass use_cache=True, keep out.past_key_values and feed only the new token")
    return right("same tokens and logits as generate(do_sample=False), the encoder run once, "
                 "one new token per cached decoder step, and a stop at EOS")


def _compare(logits_a: torch.Tensor, logits_b: torch.Tensor) -> dict[str, float]:
    log_p, log_q = logits_a.float().log_softmax(-1), logits_b.float().log_softmax(-1)
    return {"cosine": float(F.cosine_similarity(log_p.exp(), log_q.exp(), dim=0)),
            "kl": float((log_p.exp() * (log_p - log_q)).sum())}


def first_step_comparison(model: Any, inputs_a: Any, inputs_b: Any) -> dict[str, float]:
    """Cosine and KL(p_a || p_b) between two inputs' first-step next-token distributions."""
    return _compare(*(first_step_logits(model, e["input_ids"], e.get("attention_mask"))[0]
                      for e in (inputs_a, inputs_b)))


@guarded
def check_comparison(fn: Any, model: Any, tokenizer: Any) -> Feedback:
    """Does fn(model, inputs_a, inputs_b) return {'cosine', 'kl'} of the first-step distributions?"""
    expect_callable(fn, "compare_first_step", "compare_first_step(model, inputs_a, inputs_b)")
    enc_a, enc_b = (tokenizer(t, return_tensors="pt").to(model.device) for t in PROMPTS)
    with no_shortcuts(model) as used:
        answer = fn(model, enc_a, enc_b)
    expect_no_shortcuts(used, "compare_first_step")
    expect_type(answer, dict, "the returned value")
    missing = {"cosine", "kl"} - set(answer)
    if missing:
        fail(f"the dict lacks {sorted(missing)}", "return {'cosine': ..., 'kl': ...}")
    cosine = expect_number(answer["cosine"], "cosine", hint="return one number: call .item()")
    kl = expect_number(answer["kl"], "kl", hint="sum over the vocabulary, then call .item()")
    la, lb = (first_step_logits(model, e["input_ids"], e["attention_mask"])[0].float()
              for e in (enc_a, enc_b))
    want, swapped = _compare(la, lb), _compare(lb, la)["kl"]
    logit_cosine = float(F.cosine_similarity(la, lb, dim=0))

    def ok(got: float, ref: float) -> bool:
        return math.isclose(got, ref, rel_tol=1e-3, abs_tol=1e-5)

    if not ok(cosine, want["cosine"]):
        if ok(cosine, logit_cosine):
            fail("your cosine compares the logits",
                 "compare the probability vectors (softmax of the first-step logits)")
        fail(f"cosine = {cosine:.4f}, expected {want['cosine']:.4f}",
             "F.cosine_similarity(p, q, dim=0) on the two softmax vectors")
    if not ok(kl, want["kl"]):
        if ok(kl, swapped):
            fail("your KL is KL(p_b || p_a); we asked for KL(p_a || p_b)",
                 "KL is not symmetric: sum p_a * (log p_a - log p_b)")
        if kl < 0:
            fail(f"kl = {kl:.4f} is negative, which a KL divergence never is",
                 "sum over the vocabulary of p_a * (log p_a - log p_b)")
        fail(f"kl = {kl:.4f}, expected {want['kl']:.4f}",
             "sum over the vocabulary of p_a * (log p_a - log p_b)")
    return right(f"cosine {cosine:.4f} and KL(p_a || p_b) {kl:.4f} of the first-step distributions")


@guarded
def check_top_candidates(fn: Any, tokenizer: Any, vocab_size: int = 50) -> Feedback:
    """Does fn(logits, tokenizer, k) give the k most probable tokens with full-softmax probabilities?"""
    expect_callable(fn, "top_candidates", "top_candidates(logits, tokenizer, k)")
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(vocab_size, generator=generator) * 3
    for k in (3, 5):
        with no_shortcuts() as used:
            table = fn(logits, tokenizer, k)
        expect_no_shortcuts(used, "top_candidates")
        expect_type(table, pd.DataFrame, "the returned table")
        missing = {"token", "id", "probability"} - set(table.columns)
        if missing:
            fail(f"the table lacks the columns {sorted(missing)}", "columns token, id and probability")
        if len(table) != k:
            fail(f"with k={k} the table has {len(table)} rows")
        want = candidate_table(logits, tokenizer, k)
        if [int(i) for i in table["id"]] != want["id"].tolist():
            fail(f"the ids {table['id'].tolist()} are not the {k} most probable "
                 f"{want['id'].tolist()}, most probable first", "use torch.topk")
        probs = torch.tensor([float(p) for p in table["probability"]])
        local = torch.softmax(logits.topk(k).values, -1)
        if torch.allclose(probs, local, atol=1e-3) and not torch.allclose(
                probs, torch.tensor(want["probability"].tolist()), atol=1e-3):
            fail("your probabilities sum to 1 over the top k only",
                 "apply softmax over the whole vocabulary, then take the top k")
        if not torch.allclose(probs, torch.tensor(want["probability"].tolist()), atol=1e-3):
            fail("the ids are right but the probabilities are not softmax(logits)",
                 "torch.softmax(logits, dim=-1), then .topk(k)")
    return right("the k most probable tokens, most probable first, with full-softmax probabilities")


CHOICES = ("The argmax changes, so greedy decoding picks other tokens",
           "The argmax stays the same, but every probability is wrong",
           "Nothing changes: softmax removes any constant factor")


RESCALE_EVIDENCE_KEYS = ("with_rescale", "without_rescale")


def rescale_evidence(model: Any, inputs: Any) -> dict[str, torch.Tensor]:
    """Q6's evidence: the model's first-step logits for `inputs`, and lm_head without the rescale."""
    start = torch.full((inputs["input_ids"].shape[0], 1), model.config.decoder_start_token_id,
                       device=inputs["input_ids"].device)
    with torch.no_grad():
        out = model(**inputs, decoder_input_ids=start, output_hidden_states=True)
        skipped = model.lm_head(out.decoder_hidden_states[-1])[0, -1]
    return {"with_rescale": out.logits[0, -1].float().cpu(), "without_rescale": skipped.float().cpu()}


def choice_from_evidence(with_rescale: torch.Tensor, without_rescale: torch.Tensor) -> str:
    """The option of CHOICES that two logit vectors support: same argmax? different probabilities?"""
    if int(with_rescale.argmax()) != int(without_rescale.argmax()):
        return CHOICES[0]
    gap = float((with_rescale.softmax(-1) - without_rescale.softmax(-1)).abs().max())
    return CHOICES[1] if gap > 1e-3 else CHOICES[2]


@guarded
def check_rescale_choice(answer: Any, evidence: Any, model: Any, inputs: Any) -> Feedback:
    """Q6: the evidence (logits with and without the rescale) first; only then the choice it supports."""
    expect_evidence(evidence, "rescale_evidence", RESCALE_EVIDENCE_KEYS, "two logit vectors")
    vocab = model.config.vocab_size
    given = {key: expect_logits(evidence[key], key, vocab, "one position of one row: [0, -1]")
             for key in RESCALE_EVIDENCE_KEYS}
    want = rescale_evidence(model, inputs)
    factor = model.config.d_model ** 0.5
    if not _close(given["with_rescale"], want["with_rescale"], 1e-3):
        fail("'with_rescale' is not the model's own first-step logits for inputs",
             "out.logits[0, -1] of model(**inputs, decoder_input_ids=<start token>)")
    if not _close(given["without_rescale"], want["without_rescale"], 1e-3):
        if _close(given["without_rescale"], want["with_rescale"], 1e-3):
            fail("'without_rescale' equals the model's logits: the rescale is still in it",
                 "apply model.lm_head to out.decoder_hidden_states[-1] yourself (output_hidden_states=True)")
        if _close(given["without_rescale"], want["with_rescale"] / factor, 1e-3):
            fail(f"'without_rescale' is the model's logits divided by sqrt(d_model) = {factor:.1f}: "
                 "you rescaled once more",
                 "lm_head on the decoder's last hidden state, with no factor at all")
        fail("'without_rescale' is not lm_head applied to the decoder's last hidden state",
             "out.decoder_hidden_states[-1][0, -1] through model.lm_head, no factor")
    # The evidence is right: now, and only now, the choice.
    choice = match_choice(answer, CHOICES, "rescale_answer")
    follows = choice_from_evidence(given["with_rescale"], given["without_rescale"])
    same_argmax = int(given["with_rescale"].argmax()) == int(given["without_rescale"].argmax())
    top = float(given["with_rescale"].softmax(-1).max()), float(given["without_rescale"].softmax(-1).max())
    if choice == follows:
        return right(f"your evidence: argmax {'unchanged' if same_argmax else 'changed'}, top probability "
                     f"{top[0]:.3g} with the rescale and {top[1]:.3g} without: softmax(c * z) != softmax(z)")
    fail(f"that does not follow from your evidence: the argmax is "
         f"{'the same' if same_argmax else 'different'} in both vectors, and the top probability is "
         f"{top[0]:.3g} with the rescale, {top[1]:.3g} without",
         "compare argmax() of the two vectors, then their softmax")


def first_step_table(model: Any, tokenizer: Any, text: str, k: int = 5) -> pd.DataFrame:
    """Explorer: the k most probable first output tokens for `text`, with probabilities."""
    enc = tokenizer(text, return_tensors="pt").to(model.device)
    return candidate_table(first_step_logits(model, enc["input_ids"], enc["attention_mask"])[0],
                           tokenizer, k)


def plot_first_step(table: pd.DataFrame) -> Any:
    """Bar chart of a first_step_table(...): one bar per candidate token."""
    return prob_bar_chart(table["token"].tolist(), table["probability"].tolist(),
                          title="first-step probabilities")
