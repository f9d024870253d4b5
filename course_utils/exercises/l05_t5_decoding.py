"""Checkers, explorer and decoding stepper widget for lesson 05 (T5 decoding); checkers return Feedback."""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Optional

import pandas as pd
import torch
import torch.nn.functional as F

from .decoding import DecodingStepper, candidate_table, eos_ids, first_step_logits
from .feedback import (Feedback, a_type, describe_error, expect_callable, expect_shape, expect_type,
                       guarded, right, wrong)
from .widgets import show

PROMPTS = ("translate English to German: The weather is nice today.",
           "summarize: The meeting was moved to Friday because two speakers were ill.")


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=tol, rtol=tol))


def _as_float(value: Any, name: str) -> tuple[Optional[float], Optional[Feedback]]:
    """A Python float from a number or a one-element tensor, else a wrong-answer Feedback."""
    if value is None:
        return None, wrong(f"{name} is None", f"assign a number to {name}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None, wrong(f"{name} has shape {tuple(value.shape)}; expected a single number",
                               "average over all positions (reduction='mean')")
        return float(value.detach().float().cpu()), None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None
    return None, wrong(f"{name} is {a_type(value)}, expected a number or a 1-element tensor")


@guarded
def check_first_step_logits(first_logits: Any, model: Any, inputs: Any) -> Feedback:
    """Are these the (1, vocab) logits of the first decoding step for `inputs`?"""
    bad = expect_type(first_logits, torch.Tensor, "first_logits")
    if bad is not None:
        return bad
    expected = first_step_logits(model, inputs["input_ids"], inputs.get("attention_mask"))
    vocab = expected.shape[-1]
    if tuple(first_logits.shape) == (1, 1, vocab):
        return wrong("first_logits has shape (1, 1, vocab): one position too many dimensions",
                     "take the last decoder position: out.logits[:, -1, :]")
    bad = expect_shape(first_logits, tuple(expected.shape), "first_logits")
    if bad is not None:
        return wrong(bad.message, "one row per input, one column per vocabulary entry: "
                     "out.logits[:, -1, :]")
    if _close(first_logits, expected):
        return right(f"first-step logits of shape {tuple(expected.shape)}, equal to the model's")
    if _close(first_logits, expected * model.config.d_model ** 0.5, 1e-3):
        return wrong(f"your logits are sqrt(d_model) = {model.config.d_model ** 0.5:.1f} times too large",
                     "you applied lm_head to the decoder output without T5's d_model ** -0.5 "
                     "rescale; call the full model, or rescale first")
    if _close(first_logits, torch.softmax(expected, dim=-1)):
        return wrong("these are probabilities, not logits", "drop the softmax")
    return wrong("the shape is right but the values differ from the model's first-step logits",
                 "pass decoder_input_ids holding only config.decoder_start_token_id, and the "
                 "attention_mask too")


@guarded
def check_loss_by_hand(loss_by_hand: Any, model: Any, inputs: Any, labels: torch.Tensor) -> Feedback:
    """Does the hand-computed loss equal the model's teacher-forced loss for `labels`?"""
    value, bad = _as_float(loss_by_hand, "loss_by_hand")
    if bad is not None:
        return bad
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
            return wrong(f"loss_by_hand = {value:.4f}, the model says {expected:.4f}", why)
    return wrong(f"loss_by_hand = {value:.4f}, the model says {expected:.4f}",
                 "F.cross_entropy(out.logits.view(-1, vocab), labels.view(-1)) with the logits of "
                 "model(**inputs, labels=labels)")


@contextlib.contextmanager
def forced_tokens(model: Any, script: dict[int, int]) -> Iterator[None]:
    """Inside the block, lm_head call number n (from 0) strongly prefers token script[n]."""
    calls = {"n": 0}

    def hook(module: Any, args: Any, output: torch.Tensor) -> torch.Tensor:
        token = script.get(calls["n"])
        calls["n"] += 1
        if token is None:
            return output
        output = output.clone()
        output[..., token] += 1e3
        return output

    handle = model.lm_head.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def _watch_calls(model: Any, record: dict[str, list[int]]) -> Iterator[None]:
    """Record how often the encoder runs and how many tokens each decoder call receives."""

    def on_encoder(module: Any, args: Any, kwargs: dict) -> None:
        record["encoder"].append(1)

    def on_decoder(module: Any, args: Any, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            ids = kwargs.get("inputs_embeds")
        record["decoder"].append(int(ids.shape[1]) if ids is not None else -1)

    handles = [model.get_encoder().register_forward_pre_hook(on_encoder, with_kwargs=True),
               model.decoder.register_forward_pre_hook(on_decoder, with_kwargs=True)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _reference_greedy(model: Any, enc: Any, max_new_tokens: int) -> tuple[list[int], torch.Tensor]:
    out = model.generate(**enc, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                         return_dict_in_generate=True, output_logits=True)
    return out.sequences[0, 1:].tolist(), torch.stack(out.logits)[:, 0]


@guarded
def check_greedy(fn: Any, model: Any, tokenizer: Any, max_new_tokens: int = 6) -> Feedback:
    """Does fn(model, input_ids, attention_mask, max_new_tokens) match generate, using the cache?"""
    bad = expect_callable(fn, "my_greedy", "my_greedy(model, input_ids, attention_mask, max_new_tokens)")
    if bad is not None:
        return bad
    eos = min(eos_ids(model)) if eos_ids(model) else None
    vocab = model.config.vocab_size
    # Real checkpoints and stand-ins alike: force a varied path and an EOS, so stopping is tested.
    forced = {1: 7 % vocab, 2: 11 % vocab, 3: eos} if eos is not None else {1: 7 % vocab}
    for text, script in zip(PROMPTS, ({}, forced)):
        enc = tokenizer(text, return_tensors="pt").to(model.device)
        with forced_tokens(model, script):
            want_tokens, want_logits = _reference_greedy(model, enc, max_new_tokens)
        record: dict[str, list[int]] = {"encoder": [], "decoder": []}
        with forced_tokens(model, script), _watch_calls(model, record), torch.no_grad():
            answer = fn(model, enc["input_ids"], enc["attention_mask"], max_new_tokens)
        if not isinstance(answer, tuple) or len(answer) != 2:
            return wrong(f"my_greedy returned {a_type(answer)}; expected a tuple "
                         "(tokens, logits)", "end with: return tokens, torch.stack(step_logits)")
        tokens, logits = answer
        if isinstance(tokens, torch.Tensor):
            tokens = tokens.reshape(-1).tolist()
        if isinstance(logits, (list, tuple)) and logits and isinstance(logits[0], torch.Tensor):
            logits = torch.stack([t.reshape(-1) for t in logits])
        bad = expect_type(logits, torch.Tensor, "logits (the second value returned)")
        if bad is not None:
            return bad
        if not isinstance(tokens, list):
            return wrong(f"tokens is {a_type(tokens)}, expected a list of ints")
        if tokens[:1] == [model.config.decoder_start_token_id] and tokens[1:] == want_tokens:
            return wrong("your tokens start with the decoder start token",
                         "return only the new tokens (generate's sequences[0, 1:])")
        if tokens != want_tokens:
            stop = " (did you stop at EOS?)" if eos in want_tokens else ""
            return wrong(f"for {text[:30]!r}... you chose {tokens}, generate chose {want_tokens}"
                         f"{stop}", "take the argmax of the last position's logits and feed that "
                         "token back; stop after EOS is appended or at max_new_tokens")
        bad = expect_shape(logits, tuple(want_logits.shape), "logits")
        if bad is not None:
            return wrong(bad.message, "one row of vocabulary logits per generated token")
        if _close(logits, want_logits * model.config.d_model ** 0.5, 1e-2):
            return wrong("your logits are sqrt(d_model) too large",
                         "apply T5's d_model ** -0.5 rescale before lm_head (or call the full model)")
        if not _close(logits, want_logits, 1e-3):
            gap = (logits.detach().float().cpu() - want_logits.float().cpu()).abs().max()
            return wrong(f"the tokens match but the logits differ from generate's by up to {gap:.3g}",
                         "keep the logits of the last position at every step, as the model returns them")
        if len(record["encoder"]) > 1:
            return wrong(f"the encoder ran {len(record['encoder'])} times for one input",
                         "run it once and pass encoder_outputs= at every step")
        if any(n != 1 for n in record["decoder"][1:]):
            return wrong("tokens and logits are right, but each step feeds the whole prefix to "
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
    bad = expect_callable(fn, "compare_first_step", "compare_first_step(model, inputs_a, inputs_b)")
    if bad is not None:
        return bad
    enc_a, enc_b = (tokenizer(t, return_tensors="pt").to(model.device) for t in PROMPTS)
    answer = fn(model, enc_a, enc_b)
    bad = expect_type(answer, dict, "the returned value")
    if bad is not None:
        return bad
    missing = {"cosine", "kl"} - set(answer)
    if missing:
        return wrong(f"the dict lacks {sorted(missing)}", "return {'cosine': ..., 'kl': ...}")
    cosine, bad = _as_float(answer["cosine"], "cosine")
    if bad is not None:
        return bad
    kl, bad = _as_float(answer["kl"], "kl")
    if bad is not None:
        return bad
    la, lb = (first_step_logits(model, e["input_ids"], e["attention_mask"])[0].float() for e in (enc_a, enc_b))
    want, swapped = _compare(la, lb), _compare(lb, la)["kl"]
    logit_cosine = float(F.cosine_similarity(la, lb, dim=0))
    ok = lambda got, ref: math.isclose(got, ref, rel_tol=1e-3, abs_tol=1e-5)  # noqa: E731
    if not ok(cosine, want["cosine"]):
        if ok(cosine, logit_cosine):
            return wrong("your cosine compares the logits", "compare the probability vectors "
                         "(softmax of the first-step logits)")
        return wrong(f"cosine = {cosine:.4f}, expected {want['cosine']:.4f}",
                     "F.cosine_similarity(p, q, dim=0) on the two softmax vectors")
    if not ok(kl, want["kl"]):
        if ok(kl, swapped):
            return wrong("your KL is KL(p_b || p_a); we asked for KL(p_a || p_b)",
                         "KL is not symmetric: sum p_a * (log p_a - log p_b)")
        if kl < 0:
            return wrong(f"kl = {kl:.4f} is negative, which a KL divergence never is",
                         "sum over the vocabulary of p_a * (log p_a - log p_b)")
        return wrong(f"kl = {kl:.4f}, expected {want['kl']:.4f}",
                     "sum over the vocabulary of p_a * (log p_a - log p_b)")
    return right(f"cosine {cosine:.4f} and KL(p_a || p_b) {kl:.4f} of the first-step distributions")


@guarded
def check_top_candidates(fn: Any, tokenizer: Any, vocab_size: int = 50) -> Feedback:
    """Does fn(logits, tokenizer, k) give the k most probable tokens with full-softmax probabilities?"""
    bad = expect_callable(fn, "top_candidates", "top_candidates(logits, tokenizer, k)")
    if bad is not None:
        return bad
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(vocab_size, generator=generator) * 3
    for k in (3, 5):
        table = fn(logits, tokenizer, k)
        bad = expect_type(table, pd.DataFrame, "the returned table")
        if bad is not None:
            return bad
        missing = {"token", "id", "probability"} - set(table.columns)
        if missing:
            return wrong(f"the table lacks the columns {sorted(missing)}",
                         "columns token, id and probability")
        if len(table) != k:
            return wrong(f"with k={k} the table has {len(table)} rows")
        want = candidate_table(logits, tokenizer, k)
        if [int(i) for i in table["id"]] != want["id"].tolist():
            return wrong(f"the ids {table['id'].tolist()} are not the {k} most probable "
                         f"{want['id'].tolist()}, most probable first", "use torch.topk")
        probs = torch.tensor([float(p) for p in table["probability"]])
        local = torch.softmax(logits.topk(k).values, -1)
        if torch.allclose(probs, local, atol=1e-3) and not torch.allclose(
                probs, torch.tensor(want["probability"].tolist()), atol=1e-3):
            return wrong("your probabilities sum to 1 over the top k only",
                         "apply softmax over the whole vocabulary, then take the top k")
        if not torch.allclose(probs, torch.tensor(want["probability"].tolist()), atol=1e-3):
            return wrong("the ids are right but the probabilities are not softmax(logits)",
                         "torch.softmax(logits, dim=-1), then .topk(k)")
    return right("the k most probable tokens, most probable first, with full-softmax probabilities")


CHOICES = ("The argmax changes, so greedy decoding picks other tokens",
           "The argmax stays the same, but every probability is wrong",
           "Nothing changes: softmax removes any constant factor")


@guarded
def check_rescale_choice(answer: Any) -> Feedback:
    """Multiple choice: what does skipping T5's d_model ** -0.5 rescale break?"""
    if answer not in CHOICES:
        return wrong(f"{answer!r} is not one of the options", "copy one option's text exactly")
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


def stepper_text(stepper: DecodingStepper, table: Optional[pd.DataFrame] = None) -> str:
    """Plain-text view of a stepper: the tokens so far and the candidates of the current step."""
    step = len(stepper.tokens)
    lines = [f"input: {stepper.text}", f"output so far ({step} tokens): {stepper.output()!r}"]
    if table is not None:
        chosen = stepper.tokenizer.convert_ids_to_tokens([stepper.tokens[-1]])[0]
        lines.append(f"step {step}: chose {chosen!r} (id {stepper.tokens[-1]}) from")
        lines.append(table.to_string(index=False))
    if stepper.done:
        lines.append("finished (EOS or length limit): press Reset")
        return "\n".join(lines)
    try:
        lines.append(f"next step's candidates:\n{stepper.candidates().to_string(index=False)}")
    except Exception as err:  # the learner's table function is unfinished or broken
        lines.append(f"the table function raised {describe_error(err)}")
    return "\n".join(lines)


def stepper_widget(stepper: DecodingStepper) -> Any:
    """A 'Next token' and a 'Reset' button over a DecodingStepper; text fallback without widgets."""
    import ipywidgets as w

    output = w.Output()
    next_button = w.Button(description="Next token", button_style="primary")
    reset_button = w.Button(description="Reset")

    def render(text: str) -> None:
        output.clear_output(wait=True)
        with output:
            print(text)

    def on_next(_: Any) -> None:
        try:
            table = stepper.step() if not stepper.done else None
        except Exception as err:  # e.g. the learner's table function raised
            render(f"could not step: {describe_error(err)}")
            return
        render(stepper_text(stepper, table))

    def on_reset(_: Any) -> None:
        stepper.reset()
        render(stepper_text(stepper))

    next_button.on_click(on_next)
    reset_button.on_click(on_reset)
    render(stepper_text(stepper))
    widget = w.VBox([w.HBox([next_button, reset_button]), output])
    show(widget, stepper_text(stepper) + "\n(widgets unavailable: call stepper.step() in a cell)")
    return widget

