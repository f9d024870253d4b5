"""Lesson 03 (models and heads): the exercise checkers and the sentence-similarity explorer.

Checkers return a Feedback and never raise for a wrong answer; the explorer function returns a
DataFrame (or a short text) so tests can call it without widgets.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import pandas as pd
import torch

from ..feedback import (Feedback, expect_callable, expect_int, expect_tensor, expect_type, fail,
                        guarded, match_choice, right, wrong)
from ..pooling import masked_mean_pool
from ..probes import count_function_calls

# ---------------------------------------------------------------- question 1: a batch by hand

LOGPROB_TOLERANCE = 2e-5  # on log-probabilities: the right batch is within 1e-7, a maskless one 1.5e-4 off


def _label_names(labels: Any) -> list:
    """The labels as a list of strings (the probabilities are already right), else fail."""
    if labels is None:
        fail("probs matches the pipeline; labels is None",
             "assign a list or tuple to labels (did a function forget to return?)")
    if not isinstance(labels, (list, tuple)):
        expect_type(labels, (list, tuple), "probs matches the pipeline; labels")
    if any(isinstance(x, numbers.Integral) or (isinstance(x, torch.Tensor) and x.numel() == 1)
           for x in labels):
        fail("probs matches the pipeline; labels holds class ids (numbers), not label names",
             "map each id to its name with model.config.id2label[i]")
    if not all(isinstance(x, str) for x in labels):
        kinds = sorted({type(x).__name__ for x in labels if not isinstance(x, str)})
        fail(f"probs matches the pipeline; labels should hold strings, but it contains "
             f"{', '.join(kinds)}")
    return list(labels)


@guarded
def check_batch_classification(probs: Any, labels: Any, reference: Sequence[dict]) -> Feedback:
    """Hand-made probabilities and label names vs the pipeline's top label and score per text."""
    expect_tensor(probs, "probs")
    n = len(reference)
    if probs.dim() != 2 or probs.shape[0] != n:
        fail(f"probs has shape {tuple(probs.shape)}, expected ({n}, number of labels)",
             "one row per text and one column per label, like the logits")
    p = probs.detach().to("cpu", torch.float64)
    if not torch.isfinite(p).all():
        fail("probs contains NaN or inf values")
    rows_sum_to_one = torch.allclose(p.sum(dim=-1), torch.ones(n, dtype=p.dtype), atol=1e-4)
    if (p < 0).any() or (p > 1).any():
        fail("probs has values outside [0, 1]: these are logits, not probabilities",
             "apply torch.softmax(logits, dim=-1)")
    if not rows_sum_to_one:
        cols = torch.allclose(p.sum(dim=0), torch.ones(p.shape[1], dtype=p.dtype), atol=1e-4)
        if cols:
            fail("each column of probs sums to 1, not each row: the softmax ran across "
                 "the texts (dim=0)", "use softmax over the labels axis, dim=-1")
        fail("the rows of probs do not sum to 1", "apply torch.softmax(logits, dim=-1)")
    # Log-probabilities, not probabilities: a random stand-in sits near 0.5, where leaving out the
    # attention mask moves a probability by only 7e-5 but its log by 1.5e-4; the right method is
    # within 1e-7 (tests/test_l03_models_and_heads.py measures both on the stand-in).
    expected = torch.tensor([float(r["score"]) for r in reference], dtype=p.dtype).log()
    top = p.max(dim=-1).values.clamp_min(1e-300).log()
    gap = (top - expected).abs().max().item()
    if gap > LOGPROB_TOLERANCE:
        fail(f"probs are valid probabilities, but the log of their top scores differs from the "
             f"pipeline's by up to {gap:.3g} (tolerance {LOGPROB_TOLERANCE:g})",
             "tokenize all texts in one call with padding=True and pass the "
             "attention_mask too (model(**inputs)); keep the model in eval mode")
    names = _label_names(labels)
    if len(names) != n:
        fail(f"probs matches the pipeline, but labels has {len(names)} entries for {n} texts",
             "one label per text, in the order of the texts")
    expected_labels = [str(r["label"]) for r in reference]
    bad = [i for i, (a, b) in enumerate(zip(names, expected_labels)) if a != b]
    if bad:
        i = bad[0]
        fail(f"probs matches the pipeline, but labels[{i}] is {names[i]!r} where the "
             f"pipeline says {expected_labels[i]!r}",
             "take argmax over the last axis of probs, then model.config.id2label")
    return right(f"{n} texts: your probabilities and labels equal the pipeline's "
                 "(same tokenizer, model, softmax and id2label)")


# ---------------------------------------------------------------- question 2: masked mean pooling


def _pooling_cases() -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed random hidden states (3, 5, 4) and a mask with 0, 2 and 4 padding positions."""
    gen = torch.Generator().manual_seed(3)
    hidden = torch.randn(3, 5, 4, generator=gen)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    return hidden, mask


def _diagnose_pooling(out: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor) -> Feedback:
    """Name the usual mistake behind a wrong pooling result."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    guesses = [
        (hidden.mean(dim=1), "you averaged over every position, padding included",
         "multiply by the mask before summing, and divide by the number of real tokens"),
        ((hidden * m).sum(dim=1), "you summed the real tokens but did not divide",
         "divide by each sequence's number of real tokens, attention_mask.sum(dim=1)"),
        ((hidden * m).sum(dim=1) / hidden.shape[1],
         "you divided by the padded length instead of each sequence's number of real tokens",
         "divide by attention_mask.sum(dim=1) (keep a trailing axis so it broadcasts)"),
        (hidden[:, 0], "that is the first token's vector, not an average",
         "average the vectors of all real tokens"),
    ]
    for candidate, message, hint in guesses:
        if torch.allclose(out, candidate, atol=1e-5):
            return wrong(f"the shape is right, but {message}", hint)
    return wrong("the shape is right but the values are not the masked mean",
                 "sum hidden * mask over dim=1, then divide by mask.sum(dim=1)")


@guarded
def check_mean_pool(mean_pool: Any) -> Feedback:
    """A learner's mean_pool(hidden_states, attention_mask) vs masked mean pooling."""
    expect_callable(mean_pool, "mean_pool", "mean_pool(hidden_states, attention_mask)")
    hidden, mask = _pooling_cases()
    hidden_in, mask_in = hidden.clone(), mask.clone()
    with count_function_calls(masked_mean_pool=masked_mean_pool) as calls:
        out = mean_pool(hidden_in, mask_in)
    if calls["masked_mean_pool"]:
        fail("mean_pool calls the course's cu.pooling.masked_mean_pool",
             "write it yourself: multiply by the mask, sum over dim=1, divide by the mask's sum")
    name = "mean_pool(hidden_states, attention_mask)"
    expect_type(out, torch.Tensor, name, hint=None if out is None else "return a torch.Tensor")
    if not (torch.equal(hidden_in, hidden) and torch.equal(mask_in, mask)):
        fail("mean_pool changed its input tensors in place",
             "use out-of-place operations (hidden * mask, not hidden *= mask)")
    expected = masked_mean_pool(hidden, mask)
    if tuple(out.shape) != tuple(expected.shape):
        hints = {
            (3, 5): "you averaged over the hidden axis; average over the tokens (dim=1)",
            (3, 5, 4): "nothing was reduced: sum over the sequence axis (dim=1)",
            (3, 1, 4): "drop the kept axis: sum(dim=1) without keepdim=True",
        }
        fail(f"mean_pool returned shape {tuple(out.shape)} for hidden states of shape "
             "(3, 5, 4); expected (batch, hidden) = (3, 4)",
             hints.get(tuple(out.shape), "reduce over the sequence axis, dim=1"))
    out = out.detach().to(torch.float32)
    if not torch.allclose(out, expected, atol=1e-5):
        return _diagnose_pooling(out, hidden, mask)
    noisy = hidden.clone()
    noisy[mask == 0] = 1000.0
    if not torch.allclose(mean_pool(noisy, mask.clone()).detach().float(), expected, atol=1e-4):
        fail("values at padding positions still change your result",
             "padding vectors must get weight zero")
    alone = mean_pool(hidden[1:2, :3].clone(), mask[1:2, :3].clone()).detach().float()
    if not torch.allclose(alone[0], expected[1], atol=1e-5):
        fail("a sequence pooled alone differs from the same sequence padded in a batch")
    return right("shape (batch, hidden), padding ignored, and a sequence alone gives the same "
                 "vector as in a padded batch")


# ---------------------------------------------------------------- question 3: which head?

HEAD_QUESTION = ("You want to tag every word of a sentence as PERSON, PLACE or OTHER "
                 "(named-entity recognition). Which class do you load the checkpoint with?")
HEAD_OPTIONS = (
    "AutoModel",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoModelForMaskedLM",
    "AutoModelForQuestionAnswering",
)
HEAD_ANSWER = "AutoModelForTokenClassification"
_HEAD_WHY_NOT = {
    "AutoModel": ("AutoModel has no head: it returns hidden states, not label scores",
                  "you need a head that gives scores for each label"),
    "AutoModelForSequenceClassification": (
        "that head gives one label per text, logits of shape (batch, num_labels)",
        "you need one label per token: logits of shape (batch, sequence, num_labels)"),
    "AutoModelForMaskedLM": ("that head scores every vocabulary word at each position "
                             "(to fill in a blank), not your three tags",
                             "look for a head whose last axis is the number of labels"),
    "AutoModelForQuestionAnswering": ("that head scores where an answer span starts and ends",
                                      "you need a label for every token"),
}


@guarded
def check_head_choice(answer: Any) -> Feedback:
    """Which Auto class tags every token: the class name (or the class itself)."""
    choice = match_choice(answer, HEAD_OPTIONS)
    if choice != HEAD_ANSWER:
        fail(*_HEAD_WHY_NOT[choice])
    return right("token classification: one vector per token in, logits (batch, sequence, "
                 "num_labels) out")


# ---------------------------------------------------------------- question 4: size of a head


def head_parameter_count(model: torch.nn.Module) -> int:
    """Parameters of a model with a head that do not belong to its body (model.base_model)."""
    body = {id(p) for p in model.base_model.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in body)


@guarded
def check_head_params(head_params: Any, model: torch.nn.Module) -> Feedback:
    """The number of parameters in the model's head (everything outside model.base_model)."""
    if isinstance(head_params, torch.Tensor) and head_params.numel() != 1:
        fail(f"head_params is a tensor of shape {tuple(head_params.shape)}, expected a single "
             "number", "add up the counts: sum(...) or .sum().item()")
    if isinstance(head_params, float) and head_params.is_integer():
        head_params = int(head_params)  # 1539.0 is a count too
    head_params = expect_int(head_params, "head_params")
    expected = head_parameter_count(model)
    total = sum(p.numel() for p in model.parameters())
    body = total - expected
    if head_params == expected:
        return right(f"{expected:,} of {total:,} parameters sit in the head; the body holds "
                     f"the other {body:,}")
    if head_params == total:
        fail("that is the whole model, body included",
             "subtract the body: model.base_model.num_parameters()")
    if head_params == body:
        fail("that is the body (model.base_model); the head is everything else")
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if layers and head_params == sum(p.numel() for p in layers[-1].parameters()):
        fail("that counts only the final layer of the head",
             "the head is every child of the model except the body: see model.named_children()")
    fail(f"{head_params:,} is not the number of parameters outside the body",
         "model.num_parameters() minus model.base_model.num_parameters()")


def head_variant(model: torch.nn.Module, num_labels: int) -> torch.nn.Module:
    """A one-layer random model of the same class as `model` with another number of labels."""
    config = model.config.__class__.from_dict(model.config.to_dict())
    config.num_labels = num_labels
    config.id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
    config.label2id = {v: k for k, v in config.id2label.items()}
    for name in ("num_hidden_layers", "n_layers"):
        if hasattr(config, name):
            setattr(config, name, 1)
    return type(model)(config).eval()


@guarded
def check_head_counter(count_head_params: Any, model: torch.nn.Module) -> Feedback:
    """count_head_params(model) vs the head's size on `model` and on variants with 2 and 5 labels."""
    expect_callable(count_head_params, "count_head_params", "count_head_params(model)")
    feedback = check_head_params(count_head_params(model), model)
    if not feedback.correct:
        return feedback
    for labels in (5, 2):
        other = head_variant(model, labels)
        got, want = count_head_params(other), head_parameter_count(other)
        if not check_head_params(got, other).correct:
            fail(f"count_head_params gives {got!r} for the same model with {labels} labels, whose head "
                 f"has {want:,} parameters: did you type a constant?",
                 "compute from the model you are given: model.num_parameters() minus "
                 "model.base_model.num_parameters()")
    return right(f"count_head_params counts the head of any such model ({head_parameter_count(model):,} "
                 "parameters here; it also holds with 2 and 5 labels)")


# ---------------------------------------------------------------- explorer: sentence similarity


def embed_sentences(sentences: Sequence[str], model: Any, tokenizer: Any) -> torch.Tensor:
    """Unit-length sentence vectors (sentences, hidden) by masked mean pooling of the last layer."""
    batch = tokenizer(list(sentences), padding=True, truncation=True, return_tensors="pt")
    batch = batch.to(model.device)
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    pooled = masked_mean_pool(hidden, batch["attention_mask"])
    return torch.nn.functional.normalize(pooled, dim=-1).cpu()


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def sentence_similarity(text: str | Sequence[str], model: Any,
                        tokenizer: Any) -> pd.DataFrame | str:
    """Cosine similarity of every pair of sentences (one per line): a table, or why not."""
    lines = text.splitlines() if isinstance(text, str) else list(text)
    sentences = [s.strip() for s in lines if s and s.strip()]
    if len(sentences) < 2:
        return "Enter at least two sentences, one per line."
    vectors = embed_sentences(sentences, model, tokenizer)
    sims = (vectors @ vectors.T).clamp(-1.0, 1.0).numpy().round(3)
    rows = [f"{i + 1}. {_short(s)}" for i, s in enumerate(sentences)]
    return pd.DataFrame(sims, index=rows, columns=[str(i + 1) for i in range(len(sentences))])


def similarity_heatmap(table: pd.DataFrame, title: str = "cosine similarity") -> Any:
    """Draw a similarity table as a heatmap with the value in each cell; returns the Axes."""
    from ..display import heatmap

    text = [[f"{v:.2f}" for v in row] for row in table.to_numpy()]
    return heatmap(table.to_numpy(), list(table.index), list(table.columns), title=title,
                   cell_text=text)
