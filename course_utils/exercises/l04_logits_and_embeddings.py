"""Lesson 04 (logits and embeddings): the checkers (each returns a Feedback) and the explorer's data.

The next-token helpers they use (last_logits, next_token_table, ...) live in course_utils.next_token.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Mapping

import pandas as pd
import torch

from ..feedback import (Feedback, a_type, expect_callable, expect_evidence, expect_logits, expect_number,
                        expect_shape, expect_tensor, expect_type, fail, guarded, match_choice, right,
                        wrong)
from ..next_token import continuation_logprob, last_logits, last_position_lens
from ..probes import count_calls
from ..sampling import next_token_probs

# The prompts of the exercise notebook (its questions quote them).
TOPK_PROMPT = "The cat sat on the"
TOPK_K = 5
CONTINUATION_PROMPT = "The cat sat on the"
CONTINUATION = " mat and went to sleep."
LENS_PROMPT = "In the morning I like to"
PAD_TEXTS = ("Good morning", "My favourite food is pizza because")
RIGHT_PADDING_OPTIONS = (
    "A) the last column of the short row is a pad, so its logits do not predict after the text",
    "B) the model raises an error, because the pad token is also the end-of-text token",
    "C) the attention mask turns every logit of the short row into zero",
    "D) nothing: causal attention already ignores the pads",
)
EVIDENCE_KEYS = ("last_column", "alone")  # Q5's evidence: two logit vectors of the short text
# Q6 (fix the broken code): batches of texts of different lengths, where the bug shows in every short row
FIX_TEXTS = (("Hi", "The weather today is sunny and warm", "A cat"),
             ("Once upon a time there", "Yes"))
ATOL = 1e-4


# ---------- checkers ----------

@guarded
def check_top5(top5: Any, model: torch.nn.Module, tokenizer) -> Feedback:
    """Q1: a DataFrame of the TOPK_K most probable next tokens after TOPK_PROMPT."""
    expect_type(top5, pd.DataFrame, "top5")
    missing = [c for c in ("token", "probability") if c not in top5.columns]
    if missing:
        fail(f"top5 has columns {list(top5.columns)}; it needs {', '.join(missing)}",
             "build it with pd.DataFrame({'token': [...], 'probability': [...]})")
    if len(top5) != TOPK_K:
        fail(f"top5 has {len(top5)} rows, expected {TOPK_K}", f"use .topk({TOPK_K})")
    probs = next_token_probs(last_logits(model, tokenizer, TOPK_PROMPT))
    values, ids = probs.topk(TOPK_K)
    decoded = [tokenizer.decode([i]) for i in ids.tolist()]
    given = [str(t) for t in top5["token"].tolist()]
    if given != decoded and given != [repr(t) for t in decoded]:
        if sorted(given) in (sorted(decoded), sorted(repr(t) for t in decoded)):
            fail("the right tokens, in the wrong order", "sort by probability, highest first")
        fail(f"tokens {given} differ from the expected top {TOPK_K}",
             "use the logits of the LAST position, softmax over the vocabulary, then topk; "
             "decode each id on its own: tokenizer.decode([i])")
    try:
        given_p = torch.tensor([float(p) for p in top5["probability"]])
    except (TypeError, ValueError):
        fail("the probability column holds something other than numbers")
    if torch.allclose(given_p, probs.log()[ids], atol=1e-3):
        fail("the probability column holds log-probabilities", "use softmax, not log_softmax")
    logits = last_logits(model, tokenizer, TOPK_PROMPT)
    if torch.allclose(given_p, logits[ids], atol=1e-3):
        fail("the probability column holds raw logits", "apply softmax over the vocabulary")
    if not torch.allclose(given_p, values, rtol=1e-3, atol=6e-5):  # rounding to 4 decimals is fine
        fail(f"right tokens, but probabilities {given_p.numpy().round(4).tolist()} differ "
             f"from the expected {values.numpy().round(4).tolist()}",
             "softmax over the whole vocabulary (dim=-1) at temperature 1")
    return right(f"the {TOPK_K} most probable next tokens, with probabilities summing to "
                 f"{values.sum():.3f}")


@guarded
def check_logprob(logprob: Any, model: torch.nn.Module, tokenizer) -> Feedback:
    """Q2: the natural-log probability of CONTINUATION after CONTINUATION_PROMPT."""
    if logprob is None:
        fail("logprob is None", "assign a float (or a one-element tensor) to logprob")
    if isinstance(logprob, str) or (isinstance(logprob, torch.Tensor) and logprob.numel() != 1):
        fail(f"logprob is {a_type(logprob)}, expected one number",
             "sum the per-token log-probabilities, then float(...)")
    value = expect_number(logprob, "logprob")
    per_token = continuation_logprob(model, tokenizer, CONTINUATION_PROMPT, CONTINUATION)
    expected = float(per_token.sum())
    if math.isclose(value, expected, abs_tol=1e-3):
        return right(f"log P(continuation | prompt) = {expected:.3f}, the sum over "
                     f"{len(per_token)} tokens")
    if math.isclose(value, math.exp(expected), rel_tol=1e-3, abs_tol=1e-12):
        fail("that is the probability, not its logarithm", "take the log (or sum log_softmax values)")
    if value > 0:
        fail(f"{value:.4g} is positive; a log-probability is at most 0",
             "use log_softmax, and sum log-probabilities (not logits)")
    if math.isclose(value, expected / len(per_token), abs_tol=1e-3):
        fail("that is the average per token", "sum over the continuation's tokens, do not average")
    if math.isclose(value, expected / math.log(2), abs_tol=1e-3):
        fail("that is in bits (log base 2)", "use the natural log (log_softmax)")
    shifted = continuation_logprob(model, tokenizer, CONTINUATION_PROMPT, CONTINUATION, shift=0)
    if math.isclose(value, float(shifted.sum()), abs_tol=1e-3):
        fail("off by one position: you read each token's probability at its own position",
             "the logits at position i predict token i + 1: use position i - 1 for token i")
    return wrong(f"{value:.4f} differs from the expected value",
                 "tokenize the prompt and the continuation separately, concatenate the ids, run the "
                 "model once, and sum log_softmax(logits)[i - 1, id_i] over the continuation's tokens")


@guarded
def check_lens(lens: Any, model: torch.nn.Module, tokenizer) -> Feedback:
    """Q3: logit lens at the last position of LENS_PROMPT, shape (n_layer + 1, vocab)."""
    expect_type(lens, torch.Tensor, "lens")
    n_states, vocab = model.config.n_layer + 1, model.config.vocab_size
    if lens.dim() == 3 and lens.shape[0] == 1:
        fail(f"lens has shape {tuple(lens.shape)}: drop the batch dimension",
             "index the batch row: h[0, -1]")
    if tuple(lens.shape) == (n_states - 1, vocab):
        fail(f"lens has {n_states - 1} rows; hidden_states has n_layer + 1 = {n_states}",
             "include hidden_states[0], the embeddings")
    expect_shape(lens, (n_states, vocab), "lens",
                 hint="one row of vocabulary logits per hidden state, at the last position")
    given = lens.detach().float().cpu()
    expected = last_position_lens(model, tokenizer, LENS_PROMPT)
    if torch.allclose(given, expected, atol=ATOL, rtol=1e-4):
        return right(f"{n_states} rows of logits; the last row equals the model's own logits")
    if torch.allclose(given.sum(-1), torch.ones(n_states), atol=1e-3):
        fail("the rows sum to 1: these are probabilities", "keep the logits (no softmax)")
    if torch.allclose(given, last_position_lens(model, tokenizer, LENS_PROMPT, ln_f=False),
                      atol=ATOL, rtol=1e-4):
        fail("you projected the intermediate states without the final layer norm",
             "apply model.transformer.ln_f to every state except the last, then lm_head")
    if torch.allclose(given[:-1], expected[:-1], atol=ATOL, rtol=1e-4):
        fail("layers 0..n-1 are right, the last row is not",
             "hidden_states[-1] already went through ln_f: project it with lm_head alone")
    wrong_rows = [i for i in range(n_states) if not torch.allclose(given[i], expected[i], atol=ATOL,
                                                                   rtol=1e-4)]
    return wrong(f"rows {wrong_rows} differ from the expected logits",
                 "use the LAST position of each hidden state and model.lm_head")


def _unpadded(ids: torch.Tensor, mask: torch.Tensor) -> list[int]:
    return ids[mask.bool()].tolist()


@guarded
def check_padded_batch(batch: Any, position_ids: Any, model: torch.nn.Module, tokenizer) -> Feedback:
    """Q4: a left-padded batch of PAD_TEXTS and position ids that reproduce each text's logits."""
    if batch is None:
        fail("batch is None", "assign the tokenizer's output to batch")
    if not isinstance(batch, Mapping) or "input_ids" not in batch or "attention_mask" not in batch:
        fail(f"batch is {a_type(batch)} without input_ids and attention_mask",
             "call tokenizer(list_of_texts, padding=True, return_tensors='pt')")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.shape[0] != len(PAD_TEXTS):
        fail("input_ids must be a 2-D tensor with one row per text",
             "return_tensors='pt' and pass both texts in one list")
    for row, text in enumerate(PAD_TEXTS):
        if _unpadded(ids[row], mask[row]) != tokenizer(text)["input_ids"]:
            fail(f"row {row} does not hold the tokens of {text!r}",
                 "tokenize exactly the texts PAD_TEXTS, in that order")
    if not bool(mask[:, -1].all()):
        fail("the short row ends in padding (right padding): its last position is a pad",
             "set tokenizer.padding_side = 'left' before tokenizing")
    if position_ids is None:
        fail("position_ids is None", "derive them from the mask: cumsum(-1) - 1, clamped at 0")
    expect_tensor(position_ids, "position_ids", shape=tuple(ids.shape))
    if int(position_ids.min()) < 0:
        fail("position_ids has negative entries", "clamp(min=0) after cumsum(-1) - 1")
    with torch.no_grad():
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                       position_ids=position_ids.to(model.device)).logits[:, -1].float().cpu()
    gaps = [float((logits[r] - last_logits(model, tokenizer, t)).abs().max())
            for r, t in enumerate(PAD_TEXTS)]
    if max(gaps) <= ATOL:
        return right(f"both rows give the same next-token logits as their text alone "
                     f"(largest gap {max(gaps):.1e})")
    if torch.equal(position_ids.cpu(), torch.arange(ids.shape[1]).expand_as(ids)):
        fail("these are the default positions 0, 1, 2, ...: the padded row starts late",
                     "position_ids = attention_mask.cumsum(-1) - 1, then clamp(min=0)")
    return wrong(f"the next-token logits differ from each text alone by up to {max(gaps):.3g}",
                 "each row's first real token must get position 0")



# ---------- Q5: right padding, a choice justified by evidence ----------

@contextlib.contextmanager
def kept_padding(tokenizer) -> Iterator[None]:
    """Inside the block the tokenizer may be re-configured; its padding side and pad token come back after."""
    side, pad = tokenizer.padding_side, tokenizer.pad_token
    try:
        yield
    finally:
        tokenizer.padding_side, tokenizer.pad_token = side, pad


def padded_last_column(model: torch.nn.Module, tokenizer, texts: tuple[str, ...], side: str = "right",
                       attention_mask: bool = True) -> torch.Tensor:
    """logits[:, -1] of `texts` padded on `side` with the eos token (default positions), as floats on CPU."""
    with kept_padding(tokenizer):
        tokenizer.pad_token = tokenizer.eos_token
        batch = tokenizer(list(texts), padding=True, padding_side=side, return_tensors="pt")
    kwargs = {"attention_mask": batch["attention_mask"].to(model.device)} if attention_mask else {}
    with torch.no_grad():
        return model(input_ids=batch["input_ids"].to(model.device), **kwargs).logits[:, -1].float().cpu()


def right_padding_evidence(model: torch.nn.Module, tokenizer) -> dict[str, torch.Tensor]:
    """Q5's evidence: the right-padded batch's logits[0, -1] for PAD_TEXTS[0], and that text alone."""
    return {"last_column": padded_last_column(model, tokenizer, PAD_TEXTS)[0],
            "alone": last_logits(model, tokenizer, PAD_TEXTS[0])}


def _close_logits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.allclose(a, b, atol=ATOL, rtol=1e-4))


@guarded
def check_right_padding(answer: Any, evidence: Any, model: torch.nn.Module, tokenizer) -> Feedback:
    """Q5: the evidence (two logit vectors) first; only then the choice that follows from it."""
    expect_evidence(evidence, "right_padding_evidence", EVIDENCE_KEYS, "two logit vectors")
    vocab = model.config.vocab_size
    last_column = expect_logits(evidence["last_column"], "last_column", vocab)
    alone = expect_logits(evidence["alone"], "alone", vocab)
    want = right_padding_evidence(model, tokenizer)
    if not _close_logits(alone, want["alone"]):
        fail(f"'alone' is not the next-token logits after {PAD_TEXTS[0]!r} on its own",
             "tokenize that text alone (no padding), run the model, take logits[0, -1]")
    if not _close_logits(last_column, want["last_column"]):
        if _close_logits(last_column, want["alone"]):
            fail("'last_column' equals the text alone: your batch was not padded on the right "
                 "(or you read the last real token)",
                 "pad with padding_side='right' and read logits[0, -1], the short row's last column")
        if _close_logits(last_column, padded_last_column(model, tokenizer, PAD_TEXTS, side="left")[0]):
            fail("'last_column' comes from a batch padded on the left: the question asks what right padding "
                 "does", "pad with padding_side='right', then read logits[0, -1]")
        unmasked = padded_last_column(model, tokenizer, PAD_TEXTS, attention_mask=False)[0]
        if _close_logits(last_column, unmasked):
            fail("'last_column' was computed without the attention mask",
                 "pass the whole batch: model(**batch), so the pads are masked as in real use")
        if _close_logits(last_column, padded_last_column(model, tokenizer, PAD_TEXTS)[1]):
            fail("'last_column' is row 1, the long text, which has no padding",
                 "row 0 is the short text; read logits[0, -1]")
        fail("'last_column' is not logits[0, -1] of the right-padded batch",
             "tokenizer.pad_token = tokenizer.eos_token; tokenizer(list(ex.PAD_TEXTS), padding=True, "
             "padding_side='right', return_tensors='pt'); then model(**batch).logits[0, -1]")
    # The evidence is right: now, and only now, the choice.
    choice = match_choice(answer, RIGHT_PADDING_OPTIONS, "right_padding_answer")
    gap = float((last_column - alone).abs().max())
    follows = RIGHT_PADDING_OPTIONS[0] if gap > 1e-3 else RIGHT_PADDING_OPTIONS[3]
    if choice == follows:
        return right(f"your evidence: logits[0, -1] differs from the text alone by up to {gap:.3g}; "
                     "the short row's last column is a pad, so its logits predict what follows a pad")
    why_not = {
        "B": "your own cell ran the right-padded batch without an error",
        "C": f"your last_column logits are not zero (largest |logit| {float(last_column.abs().max()):.3g})",
        "D": f"your two vectors differ by up to {gap:.3g}: something did go wrong",
        "A": f"your two vectors agree to {gap:.1e}",
    }
    fail(f"that does not follow from your evidence: {why_not[choice[0]]}",
         "compare last_column with alone: what does the last column of the short row hold?")


# ---------- Q6: fix the broken code (a batched next-token read under right padding) ----------

@guarded
def check_fixed_next_token_logits(fn: Any, model: torch.nn.Module, tokenizer,
                                  batches: tuple[tuple[str, ...], ...] = FIX_TEXTS) -> Feedback:
    """Q6: does fn(model, tokenizer, texts) give each text's own next-token logits, in one batched call?"""
    expect_callable(fn, "next_token_logits", "next_token_logits(model, tokenizer, texts)")
    vocab = model.config.vocab_size
    for texts in batches:
        with kept_padding(tokenizer), count_calls(model) as calls:
            answer = fn(model, tokenizer, list(texts))
        expect_tensor(answer, "next_token_logits(...)", shape=(len(texts), vocab))
        given = answer.detach().float().cpu()
        alone = torch.stack([last_logits(model, tokenizer, t) for t in texts])
        bad = [r for r in range(len(texts)) if not _close_logits(given[r], alone[r])]
        if bad:
            if _close_logits(given, padded_last_column(model, tokenizer, texts)):
                fail(f"still the bug: for {[texts[r] for r in bad]} you read logits[:, -1], which under "
                     "right padding is a pad position, not the text's last token",
                     "read each row at its last real token: attention_mask.sum(-1) - 1 "
                     "(or pad on the left and pass position_ids)")
            if _close_logits(given, padded_last_column(model, tokenizer, texts, side="left")):
                fail("left padding without position_ids: GPT-2's learned positions then start late "
                     f"for the short rows {[texts[r] for r in bad]}",
                     "pass position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0), as in question 4")
            fail(f"rows {bad} of {list(texts)} differ from each text's logits alone",
                 "one row per text, in the order given: the logits that predict the token after its "
                 "last real token")
        if calls.forward != 1 or calls.generate:
            fail(f"the logits are right, but the model ran {calls.forward} times for {len(texts)} texts",
                 "keep it batched: one model call on the padded batch, as the original code does")
    return right("each row equals its text's next-token logits alone, from one batched model call")

