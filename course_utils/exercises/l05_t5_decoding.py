"""Lesson 05 (T5 decoding): the checkers (each returns a Feedback) and the first-step explorer.

The stepper's view is `course_utils.widgets.stepper_widget`; the probes the checkers use
(forced_tokens, watch_encoder_decoder) live in `course_utils.probes`.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from typing import Any, Callable, Iterator

import pandas as pd
import torch
import torch.nn.functional as F

from .. import decoding
from ..display import prob_bar_chart
from ..decoding import candidate_table, eos_ids, first_step_logits
from ..feedback import (Feedback, a_type, expect_callable, expect_number, expect_shape, expect_type,
                        fail, guarded, match_choice, right, wrong)
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
def no_shortcuts(model: Any = None) -> Iterator[dict[str, int]]:
    """Inside the block, count calls of model.generate and of forbidden_functions(); `used` names them."""
    with contextlib.ExitStack() as stack:
        counted = stack.enter_context(count_calls(model)) if model is not None else None
        calls = stack.enter_context(count_function_calls(**forbidden_functions()))
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


@guarded
def check_first_step_logits(first_logits: Any, model: Any, inputs: Any) -> Feedback:
    """Are these the (1, vocab) logits of the first decoding step for `inputs`?"""
    expect_type(first_logits, torch.Tensor, "first_logits")
    expected = first_step_logits(model, inputs["input_ids"], inputs.get("attention_mask"))
    vocab = expected.shape[-1]
    if tuple(first_logits.shape) == (1, 1, vocab):
        fail("first_logits has shape (1, 1, vocab): one position too many dimensions",
             "take the last decoder position: out.logits[:, -1, :]")
    expect_shape(first_logits, tuple(expected.shape), "first_logits",
                 hint="one row per input, one column per vocabulary entry: out.logits[:, -1, :]")
    if _close(first_logits, expected):
        return right(f"first-step logits of shape {tuple(expected.shape)}, equal to the model's")
    if _close(first_logits, expected * model.config.d_model ** 0.5, 1e-3):
        fail(f"your logits are sqrt(d_model) = {model.config.d_model ** 0.5:.1f} times too large",
             "you applied lm_head to the decoder output without T5's d_model ** -0.5 "
             "rescale; call the full model, or rescale first")
    if _close(first_logits, torch.softmax(expected, dim=-1)):
        fail("these are probabilities, not logits", "drop the softmax")
    return wrong("the shape is right but the values differ from the model's first-step logits",
                 "pass decoder_input_ids holding only config.decoder_start_token_id, and the "
                 "attention_mask too")


@guarded
def check_loss_by_hand(loss_by_hand: Any, model: Any, inputs: Any, labels: torch.Tensor) -> Feedback:
    """Does the hand-computed loss equal the model's teacher-forced loss for `labels`?"""
    value = expect_number(loss_by_hand, "loss_by_hand",
                          hint="average over all positions (reduction='mean')")
    with torch.no_grad():
        out = model(**inputs, labels=labels)
    expected = float(out.loss)
    logits, flat = out.logits.float(), labels.reshape(-1)
    vocab = logits.shape[-1]
    if math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-5):
        return right(f"cross-entropy by hand = {value:.4f}, the model's loss")
    mistakes = {
        "you shifted logits and labels as for GPT-2; in T5 the model shifts the labels into the "
        "decoder inputs for you, so logits[:, i] already predicts labels[:, i]":
            F.cross_entropy(logits[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1)),
        "you summed the per-token losses; the model averages them (reduction='mean')":
            F.cross_entropy(logits.reshape(-1, vocab), flat, reduction="sum"),
        "you applied softmax before cross_entropy, which applies log-softmax itself":
            F.cross_entropy(torch.softmax(logits, -1).reshape(-1, vocab), flat),
    }
    for why, wrong_value in mistakes.items():
        if math.isclose(value, float(wrong_value), rel_tol=1e-4, abs_tol=1e-5):
            fail(f"loss_by_hand = {value:.4f}, the model says {expected:.4f}", why)
    return wrong(f"loss_by_hand = {value:.4f}, the model says {expected:.4f}",
                 "F.cross_entropy(out.logits.view(-1, vocab), labels.view(-1)) with the logits of "
                 "model(**inputs, labels=labels)")


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
        if not isinstance(answer, tuple) or len(answer) != 2:
            fail(f"my_greedy returned {a_type(answer)}; expected a tuple (tokens, logits)",
                 "end with: return tokens, torch.stack(step_logits)")
        tokens, logits = answer
        if isinstance(tokens, torch.Tensor):
            tokens = tokens.reshape(-1).tolist()
        if isinstance(logits, (list, tuple)) and logits and isinstance(logits[0], torch.Tensor):
            logits = torch.stack([t.reshape(-1) for t in logits])
        expect_type(logits, torch.Tensor, "logits (the second value returned)")
        if not isinstance(tokens, list):
            fail(f"tokens is {a_type(tokens)}, expected a list of ints")
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


@guarded
def check_rescale_choice(answer: Any) -> Feedback:
    """Multiple choice: what does skipping T5's d_model ** -0.5 rescale break?"""
    answer = match_choice(answer, CHOICES)
    if answer == CHOICES[1]:
        return right("scaling all logits by one positive factor keeps their order (same argmax), "
                     "but softmax(c * z) != softmax(z): the distribution becomes far too peaked")
    if answer == CHOICES[0]:
        return wrong("multiplying every logit by the same positive number keeps their order",
                     "which token is largest cannot change; what about softmax?")
    return wrong("softmax ignores an added constant, not a multiplied one",
                 "compare softmax([1, 2]) with softmax([10, 20])")


def first_step_table(model: Any, tokenizer: Any, text: str, k: int = 5) -> pd.DataFrame:
    """Explorer: the k most probable first output tokens for `text`, with probabilities."""
    enc = tokenizer(text, return_tensors="pt").to(model.device)
    return candidate_table(first_step_logits(model, enc["input_ids"], enc["attention_mask"])[0],
                           tokenizer, k)


def plot_first_step(table: pd.DataFrame) -> Any:
    """Bar chart of a first_step_table(...): one bar per candidate token."""
    return prob_bar_chart(table["token"].tolist(), table["probability"].tolist(),
                          title="first-step probabilities")
