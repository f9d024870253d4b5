"""Lesson 03 (models and heads): the exercise checkers and the sentence-similarity explorer.

Checkers return a Feedback and never raise for a wrong answer; the explorer function returns a
DataFrame (or a short text) so tests can call it without widgets.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import numbers
import random
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import pandas as pd
import torch

from ..feedback import (Feedback, a_type, describe_error, expect_callable, expect_int, expect_tensor,
                        expect_type, fail, guarded, match_choice, right, wrong)
from ..pooling import masked_mean_pool
from ..probes import count_calls, count_function_calls

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


# The texts classify_by_hand is re-run on: lengths far apart, so the batch is padded and leaving out the
# attention mask moves the log-probabilities by 4e-4 to 6e-4 on the stand-ins (tolerance 2e-5)
CLASSIFY_TEXTS = (
    "Great.",
    "The battery lasts two full days, the screen is gorgeous and the camera is far better than I expected.",
    "Meh, fine.",
    "It broke after a week.",
)


@contextlib.contextmanager
def watch_pipelines() -> Iterator[dict[str, int]]:
    """Count calls into transformers' pipelines: building one, calling one, or its steps by hand."""
    from transformers import pipelines
    from transformers.pipelines import base, text_classification

    tc = text_classification.TextClassificationPipeline
    with count_function_calls(pipeline=pipelines.pipeline, call=base.Pipeline.__call__,
                              forward=base.Pipeline.forward, run_single=base.Pipeline.run_single,
                              classify=tc.__call__, step=tc._forward,
                              postprocess=tc.postprocess) as calls:
        yield calls


def _reference(model: Any, tokenizer: Any, texts: Sequence[str]) -> list[dict]:
    """The pipeline's answer for `texts` with this model and tokenizer (one text at a time).

    The pipeline class wraps the objects already loaded: nothing is fetched or loaded here, so
    no remote code or pickle can be involved (what pipeline("text-classification", ...) returns).
    """
    from transformers import TextClassificationPipeline

    return TextClassificationPipeline(model=model, tokenizer=tokenizer, device=model.device)(list(texts))


@guarded
def check_classify_by_hand(classify_by_hand: Any, model: Any, tokenizer: Any) -> Feedback:
    """classify_by_hand(model, tokenizer, texts) -> (probs, labels): one padded batch, no pipeline.

    Re-run on CLASSIFY_TEXTS with `model` and with a 3-label variant of it, under probes that see
    any pipeline call and count the model's forward calls; compared with the pipeline's log-probs.
    """
    expect_callable(classify_by_hand, "classify_by_hand", "classify_by_hand(model, tokenizer, texts)")
    cases = [("the lesson's classifier", model.eval(), list(CLASSIFY_TEXTS)),
             ("a 3-label variant of it", head_variant(model, 3).to(model.device),
              list(CLASSIFY_TEXTS[::-1]))]
    for which, m, texts in cases:
        reference = _reference(m, tokenizer, texts)
        with watch_pipelines() as pipes, count_calls(m) as calls:
            try:
                out = classify_by_hand(m, tokenizer, list(texts))
            except Exception as err:  # the learner's function failed on this case
                fail(f"classify_by_hand raised {describe_error(err)} on {which}",
                     "tokenize the texts with padding=True, call the model, softmax, id2label")
        if any(pipes.values()):
            fail("classify_by_hand runs a pipeline (the task says: without the pipeline)",
                 "tokenize, call the model, take the softmax and map ids to names yourself")
        if calls.forward != 1:
            fail(f"classify_by_hand called the model {calls.forward} times for {len(texts)} texts",
                 "tokenize all texts in ONE call with padding=True and run the model once")
        if not (isinstance(out, tuple) and len(out) == 2):
            fail(f"classify_by_hand returned {a_type(out)}, expected a pair (probs, labels)",
                 "end with: return probs, labels")
        feedback = check_batch_classification(out[0], out[1], reference)
        if not feedback.correct:
            fail(f"on {which}: {feedback.message}", feedback.hint)
    return right(f"one padded batch, one forward call, no pipeline: your probabilities and labels "
                 f"equal the pipeline's on {len(CLASSIFY_TEXTS)} texts, for the classifier and for a "
                 "3-label variant (so the labels come from model.config.id2label)")


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
HEAD_SENTENCE = "Ada Lovelace was born in London."
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


@functools.lru_cache(maxsize=None)
def _checkpoint_config(role: str) -> dict:
    """The configuration of a registry role's checkpoint, as a dict (read once)."""
    from transformers import AutoConfig

    from ..registry import checkpoint

    return AutoConfig.from_pretrained(checkpoint(role, announce=False), trust_remote_code=False).to_dict()


def head_config(num_labels: int = 3, checkpoint_role: str = "sentiment") -> Any:
    """The sentiment checkpoint's configuration, shrunk to one small layer, with `num_labels` labels.

    Same architecture and vocabulary as the checkpoint, so its tokenizer's inputs fit; small enough
    that building a model from it takes milliseconds (hidden size 32 instead of 768).
    """
    from transformers import AutoConfig

    values = _checkpoint_config(checkpoint_role)
    config = AutoConfig.for_model(values["model_type"], **{k: v for k, v in values.items()
                                                          if k != "model_type"})
    config.num_hidden_layers, config.hidden_size, config.num_attention_heads = 1, 32, 2
    for name in ("hidden_dim", "intermediate_size"):
        if hasattr(config, name):
            setattr(config, name, 64)
    config.num_labels = num_labels
    return config


def config_for(option: str, num_labels: int = 3) -> Any:
    """head_config for an Auto class of HEAD_OPTIONS: a question-answering head always has 2 labels."""
    return head_config(2 if option == "AutoModelForQuestionAnswering" else num_labels)


def expected_output_shape(option: str, config: Any, input_ids: torch.Tensor) -> tuple[int, ...]:
    """The shape of model(**inputs)[0] for an Auto class named in HEAD_OPTIONS (tested on real models)."""
    batch, length = tuple(input_ids.shape)
    return {"AutoModel": (batch, length, config.hidden_size),
            "AutoModelForSequenceClassification": (batch, config.num_labels),
            "AutoModelForTokenClassification": (batch, length, config.num_labels),
            "AutoModelForMaskedLM": (batch, length, config.vocab_size),
            "AutoModelForQuestionAnswering": (batch, length)}[option]


_SHAPE_HINT = "model = head_class.from_config(config); return tuple(model(**inputs)[0].shape)"


def _shape_of(value: Any, where: str) -> tuple[int, ...]:
    """A learner's shape (tuple, list or torch.Size of ints) as a tuple, else fail."""
    if isinstance(value, torch.Tensor):
        fail(f"{where} returned a tensor, not its shape", "return tuple(output.shape)")
    if not isinstance(value, (tuple, list)) or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in value):
        fail(f"{where} returned {a_type(value)}, expected a tuple of ints",
             "return tuple(model(**inputs)[0].shape)")
    return tuple(int(n) for n in value)


def check_shapes(output_shape: Any, tokenizer: Any) -> dict[str, tuple[int, ...]]:
    """Question 3's evidence: output_shape(head_class, config, inputs) for every option, else fail.

    Run with config_for(option, labels) for 3, 5 and a random number of labels, on one and on two
    (padded) sentences; returns each option's shape for HEAD_SENTENCE with 3 labels (used inside checkers).
    """
    import transformers

    expect_callable(output_shape, "output_shape", "output_shape(head_class, config, inputs)")
    batches = [tokenizer([HEAD_SENTENCE], return_tensors="pt"),
               tokenizer(["Grace Hopper worked on the first compilers.", "Alan Turing was here."],
                         padding=True, return_tensors="pt")]
    shapes: dict[str, tuple[int, ...]] = {}
    seen: dict[tuple[str, int, int], tuple[int, ...]] = {}  # (option, labels, batch) -> shape
    values = _checkpoint_config("sentiment")
    checkpoint_config = transformers.AutoConfig.for_model(
        values["model_type"], **{k: v for k, v in values.items() if k != "model_type"})
    unseen = random.SystemRandom().randrange(6, 13)  # a number of labels made up for this check
    cases = [(3, 0), (3, 1), (5, 1), (unseen, 1)]
    for labels, number in cases:
        inputs = batches[number]
        for option in HEAD_OPTIONS:
            config = config_for(option, labels)
            where = (f"output_shape({option}, <config with {labels} labels>, "
                     f"<{tuple(inputs['input_ids'].shape)} input_ids>)")
            try:
                with torch.no_grad():
                    got = output_shape(getattr(transformers, option), config, inputs)
            except Exception as err:  # the learner's function failed on this case
                fail(f"{where} raised {describe_error(err)}", _SHAPE_HINT)
            got = _shape_of(got, where)
            want = expected_output_shape(option, config, inputs["input_ids"])
            if got != want:
                if got == tuple(inputs["input_ids"].shape) and option != "AutoModelForQuestionAnswering":
                    hint = "that is the shape of the input ids: return the shape of the model's output"
                elif any(got == shape for (o, _, _), shape in seen.items() if o == option):
                    hint = ("the same shape as for another number of labels or another batch: did "
                            "you type a constant? Build the model from the config you are given")
                elif got == expected_output_shape(option, checkpoint_config, inputs["input_ids"]):
                    hint = ("that is the shape of the checkpoint's own model (its hidden size, its "
                            f"{checkpoint_config.num_labels} labels), not of the config you are given: "
                            "build the model with head_class.from_config(config)")
                else:
                    hint = _SHAPE_HINT
                fail(f"{where} returned {got}, expected {want}", hint)
            seen[(option, labels, number)] = got
            if (labels, number) == (3, 0):
                shapes[option] = got
    return shapes


@guarded
def check_head_shapes(output_shape: Any, tokenizer: Any) -> Feedback:
    """Question 3's evidence alone: output_shape gives each head's output shape."""
    shapes = check_shapes(output_shape, tokenizer)
    table = ", ".join(f"{k}: {v}" for k, v in shapes.items())
    return right(f"output_shape is right for all five classes, two configs and two batches ({table}); "
                 "now choose")


@guarded
def check_head_choice(output_shape: Any, answer: Any, tokenizer: Any) -> Feedback:
    """Question 3: the evidence (output_shape) first, then which Auto class tags every token."""
    shapes = check_shapes(output_shape, tokenizer)  # nothing about the choice until this is right
    choice = match_choice(answer, HEAD_OPTIONS)
    length = shapes["AutoModel"][1]
    if choice != HEAD_ANSWER:
        message, hint = _HEAD_WHY_NOT[choice]
        fail(f"your shapes are right, and {choice} gives {shapes[choice]} for one sentence of "
             f"{length} tokens and 3 tags: {message}; your choice does not follow from them",
             f"pick the class whose output is (batch, tokens, tags) = (1, {length}, 3); {hint}")
    return right(f"token classification: {shapes[choice]}, one score per token and tag, which is "
                 "what tagging every word needs")


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


# ---------------------------------------------------------------- question 5: predict, then verify

PREDICTION_OPTIONS = (
    "A) one label gets a probability near 1, for every sentence",
    "B) every label gets a probability close to 1/3, for every sentence",
    "C) the probabilities are spread over [0, 1] and change a lot from sentence to sentence",
)
UNTRAINED_SENTENCES = ("The train was late again.", "I love this phone!",
                       "Terrible service, never again.", "ok")
MIN_REASON_WORDS = 8
NEAR_UNIFORM = 0.1  # max |p - 1/3| the measurement calls "close to 1/3" (measured: 0.010-0.015)


@dataclass(frozen=True)
class PredictionReceipt:
    """A prediction as it was recorded: the option, the reason, their digest and the time."""

    choice: str
    reason: str
    digest: str
    recorded_at: float

    def __str__(self) -> str:
        when = time.strftime("%H:%M:%S UTC", time.gmtime(self.recorded_at))
        return f"prediction {self.choice[:2]} recorded at {when} (digest {self.digest})"


def _digest(choice: str, reason: str) -> str:
    return hashlib.sha256(f"{choice}\n{reason.strip()}".encode()).hexdigest()[:12]


def _reason_words(reason: Any) -> int:
    """The number of words in a reason, else fail."""
    expect_type(reason, str, "reason")
    if "YOUR ANSWER" in reason.upper() or "NotImplementedError" in reason:
        fail("reason still holds the placeholder", "write why you expect that outcome")
    words = len(reason.split())
    if words < MIN_REASON_WORDS:
        fail(f"reason has {words} word(s); write at least {MIN_REASON_WORDS}",
             "say why: what are the head's weights before training, and what does softmax do "
             "with logits near zero?")
    return words


@guarded
def check_prediction(prediction: Any, reason: Any) -> Feedback:
    """Question 5's prediction: one option and a reason (graded for being there, never for being right)."""
    choice = match_choice(prediction, PREDICTION_OPTIONS, "prediction")
    words = _reason_words(reason)
    return right(f"prediction {choice[:2]} with a {words}-word reason: recorded. It earns its point for "
                 "being made with a reason, not for being right; now verify it below")


def record_prediction(prediction: Any, reason: Any) -> PredictionReceipt | None:
    """Record a prediction before the verification runs: prints and returns a receipt (None if invalid)."""
    feedback = check_prediction(prediction, reason)
    if not feedback.correct:
        print(feedback)
        return None
    choice = match_choice(prediction, PREDICTION_OPTIONS, "prediction")
    receipt = PredictionReceipt(choice, reason.strip(), _digest(choice, reason), time.time())
    print(f"Recorded: {receipt}. Do not edit it after you verify: the receipt keeps this version.")
    return receipt


def untrained_probabilities(model: Any, tokenizer: Any,
                            texts: Sequence[str] = UNTRAINED_SENTENCES) -> torch.Tensor:
    """The reference: softmax of `model`'s logits for `texts`, one padded batch with its mask."""
    batch = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(model.device)
    with torch.no_grad():
        return model.eval()(**batch).logits.softmax(dim=-1).cpu()


def prediction_from(probs: torch.Tensor) -> str:
    """The option a table of probabilities (texts, labels) bears out."""
    p = probs.detach().double().cpu()
    if (p - 1.0 / p.shape[-1]).abs().max().item() < NEAR_UNIFORM:
        return PREDICTION_OPTIONS[1]
    if bool((p.max(dim=-1).values > 0.9).all()):
        return PREDICTION_OPTIONS[0]
    return PREDICTION_OPTIONS[2]


@guarded
def check_untrained_probs(untrained_probs: Any, model: Any, tokenizer: Any, receipt: Any,
                          prediction: Any, reason: Any) -> Feedback:
    """Question 5's verification: a recorded prediction first, then the measured probabilities."""
    if not isinstance(receipt, PredictionReceipt):
        fail("no prediction is recorded yet (receipt is not a receipt)",
             "write prediction and reason, run that cell (it records them), then verify")
    choice = match_choice(prediction, PREDICTION_OPTIONS, "prediction")
    if _digest(choice, str(reason)) != receipt.digest:
        fail("prediction or reason changed after they were recorded",
             "a prediction is made before the measurement: put back the one you recorded "
             f"({receipt.choice[:2]}), or re-run the prediction cell only if you have not verified yet")
    expected = untrained_probabilities(model, tokenizer)
    n, labels = expected.shape
    probs = expect_tensor(untrained_probs, "untrained_probs")
    if tuple(probs.shape) != (n, labels):
        fail(f"untrained_probs has shape {tuple(probs.shape)}, expected ({n}, {labels}): one row per "
             "sentence of ex.UNTRAINED_SENTENCES, one column per label", "run fresh on all of them at once")
    p = probs.detach().to("cpu", torch.float64)
    if (p < 0).any() or (p > 1).any() or not torch.allclose(p.sum(-1), torch.ones(n, dtype=p.dtype),
                                                            atol=1e-4):
        fail("the rows of untrained_probs are not probabilities", "apply softmax(dim=-1) to the logits")
    gap = (p.clamp_min(1e-300).log() - expected.double().log()).abs().max().item()
    if gap > LOGPROB_TOLERANCE:
        fail(f"untrained_probs differ from fresh's probabilities (log gap {gap:.3g})",
             "fresh on ex.UNTRAINED_SENTENCES: one padded batch with its attention mask, model in eval mode")
    measured = prediction_from(p)
    spread = (p - 1.0 / labels).abs().max().item()
    verdict = ("your prediction was right" if measured == receipt.choice else
               f"your recorded prediction was {receipt.choice[:2]}: compare your reason with why")
    return right(f"measured: every probability is within {spread:.3f} of 1/{labels}, option {measured[:2]}; "
                 f"{verdict}. The new head's weights start small (std "
                 f"{getattr(model.config, 'initializer_range', 0.02)}), so its logits are near 0 and "
                 "softmax of near-equal logits is near-uniform: the untrained head knows nothing yet")


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
