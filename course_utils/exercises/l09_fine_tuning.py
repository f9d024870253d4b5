"""Lesson 09 exercises: checkers for the collator, one training step, trainable parameters and
evaluation accuracy, and the explorer comparing an untrained and a trained classifier.

The checkers run learner code on a tiny random BERT classifier built here (fast, and dropout can
be switched off so gradients are exact); the forbidden-call and mode probes are private to this
module.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Callable

import pandas as pd
import torch

from ..feedback import Feedback, expect_callable, expect_int, expect_number, fail, guarded, right
from ..training import LABELS

SAMPLE = [("Great sound, but the battery barely lasts four hours and the case cracked.", 1),
          ("Worth every penny.", 2),
          ("The zipper broke the second time I used it.", 0)]


# ------------------------------------------------------------------ the explorer

def compare_predictions(untrained: torch.nn.Module, trained: torch.nn.Module, tokenizer: Any,
                        text: str) -> pd.DataFrame:
    """Each label's probability for `text` under the untrained and the trained model."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("type a review (some words) first")
    columns = {}
    for name, model in (("untrained", untrained), ("trained", trained)):
        device = next(model.parameters()).device
        encoded = tokenizer([text], truncation=True, max_length=64, return_tensors="pt").to(device)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            columns[name] = model(**encoded).logits.float().softmax(-1)[0].cpu().tolist()
        model.train(was_training)
    labels = [trained.config.id2label[i] for i in range(len(columns["trained"]))]
    table = pd.DataFrame(columns, index=pd.Index(labels, name="label")).round(3)
    return table


def plot_comparison(table: pd.DataFrame) -> Any:
    """Grouped bars: each label's probability, untrained next to trained; returns the Axes."""
    import matplotlib.pyplot as plt

    ax = table.plot.bar(figsize=(6, 3), rot=0, color=["#999999", "#0072B2"])  # Okabe-Ito
    ax.set_ylim(0, 1)
    ax.set_xlabel("label")
    ax.set_ylabel("probability")
    ax.set_title("untrained (random head) vs fine-tuned")
    plt.tight_layout()
    return ax


# ------------------------------------------------------------------ a tiny model for the checkers

def tiny_classifier(tokenizer: Any, dropout: float = 0.0, seed: int = 0) -> torch.nn.Module:
    """A random one-layer BERT classifier over `tokenizer`'s vocabulary (for checking code fast).

    Its weights are drawn 10 times wider than BERT's usual 0.02, so one SGD step visibly changes
    the loss and predictions differ between train and eval mode.
    """
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                        num_labels=len(LABELS), pad_token_id=tokenizer.pad_token_id,
                        initializer_range=0.2)
    torch.manual_seed(seed)
    return BertForSequenceClassification(config)


def _reference_batch(tokenizer: Any, examples: list[tuple[str, int]]) -> dict[str, torch.Tensor]:
    batch = dict(tokenizer([t for t, _ in examples], padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([label for _, label in examples], dtype=torch.long)
    return batch


# ------------------------------------------------------------------ question 1: the collator

@guarded
def check_collator(collate: Callable, tokenizer: Any) -> Feedback:
    """collate(list of (text, label)) -> dict of tensors padded to the batch's longest text."""
    problem = expect_callable(collate, "collate", "collate(examples)")
    if problem:
        return problem
    for examples in (SAMPLE, SAMPLE[1:2]):
        batch = collate(list(examples))
        if not isinstance(batch, Mapping):
            fail(f"collate returned {type(batch).__name__}, expected a dict of tensors",
                 "return dict(encoded) with a 'labels' entry added")
        reference = _reference_batch(tokenizer, examples)
        for key in ("input_ids", "labels"):
            if key not in batch:
                fail(f"the batch has no {key!r} (keys: {sorted(batch)})")
        if "attention_mask" not in batch:
            fail("the batch has no 'attention_mask': the model would attend to the [PAD] tokens, "
                 "so padding is counted and a review's logits depend on its batch",
                 "keep the tokenizer's attention_mask in the batch")
        ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
        if not isinstance(ids, torch.Tensor) or not isinstance(labels, torch.Tensor):
            fail("input_ids and labels must be tensors", "tokenize with return_tensors='pt' and "
                 "make the labels with torch.tensor(...)")
        longest = reference["input_ids"].shape[1]
        if ids.dim() != 2 or ids.shape[0] != len(examples):
            fail(f"input_ids has shape {tuple(ids.shape)}, expected ({len(examples)}, {longest})")
        if ids.shape[1] > longest:
            fail(f"input_ids is {ids.shape[1]} tokens wide, but the longest review of this batch "
                 f"has {longest}: you pad to a fixed length",
                 "padding='longest' (or True) pads to the batch's longest text: shorter, faster")
        if ids.shape[1] < longest:
            fail(f"input_ids is {ids.shape[1]} tokens wide but the longest review has {longest}: "
                 "you truncate reviews", "truncate only at a generous max_length (64)")
        if not torch.equal(ids.cpu(), reference["input_ids"]):
            fail("input_ids differ from the tokenizer's for these texts (in this order)")
        if not torch.equal(torch.as_tensor(mask).cpu().long(), reference["attention_mask"]):
            fail("the attention_mask is not the tokenizer's: padding positions must be 0, or "
                 "the model attends to them (padding counted)")
        if labels.dtype != torch.long:
            fail(f"labels have dtype {labels.dtype}: the wrong dtype for a classification loss",
                 "cross_entropy wants class indices as torch.long (int64): "
                 "torch.tensor(labels, dtype=torch.long)")
        if labels.tolist() != reference["labels"].tolist():
            fail(f"labels are {labels.tolist()}, expected {reference['labels'].tolist()} "
                 "(one per example, in order)")
    return right("every batch is padded to its own longest review, with its attention mask and "
                 "torch.long labels")


# ------------------------------------------------------------------ question 2: one training step

class _RecordingSGD(torch.optim.SGD):
    """SGD that keeps a copy of the gradients it sees at every step (to diagnose zero_grad)."""

    def __init__(self, params: Any, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.seen: list[list[torch.Tensor | None]] = []

    def step(self, closure: Any = None) -> Any:
        self.seen.append([None if p.grad is None else p.grad.detach().clone()
                          for group in self.param_groups for p in group["params"]])
        return super().step(closure)


def _loss_and_grads(model: torch.nn.Module, batch: dict) -> tuple[float, list[torch.Tensor]]:
    clone = copy.deepcopy(model)
    clone.zero_grad(set_to_none=True)
    loss = clone(**batch).loss
    loss.backward()
    return loss.item(), [p.grad.detach().clone() for p in clone.parameters()]


def _close(a: list, b: list) -> bool:
    return all(x is not None and torch.allclose(x, y, atol=1e-6, rtol=1e-4) for x, y in zip(a, b))


@guarded
def check_train_step(train_step: Callable, tokenizer: Any) -> Feedback:
    """train_step(model, batch, optimizer) does one update, leaves no stale gradients, returns the loss."""
    problem = expect_callable(train_step, "train_step", "train_step(model, batch, optimizer)")
    if problem:
        return problem
    model = tiny_classifier(tokenizer, dropout=0.0).train()
    batch = _reference_batch(tokenizer, SAMPLE)
    optimizer = _RecordingSGD(model.parameters(), lr=0.5)
    first_loss, first_grads = _loss_and_grads(model, batch)
    value = expect_number(train_step(model, batch, optimizer), "train_step's return value")
    if not optimizer.seen:
        fail("the optimizer never stepped", "call optimizer.step() after the backward pass")
    if any(g is None for g in optimizer.seen[0]):
        fail("optimizer.step() ran before any gradient existed", "call loss.backward() first")
    if abs(value - first_loss) > 1e-4 * max(1.0, first_loss):
        fail(f"train_step returned {value:.4f}, but the batch's loss before the step was "
             f"{first_loss:.4f}", "return loss.item() of the forward pass of this step")
    second_loss, second_grads = _loss_and_grads(model, batch)
    train_step(model, batch, optimizer)
    if len(optimizer.seen) != 2:
        fail(f"two calls made {len(optimizer.seen)} optimizer steps, expected one per call")
    seen = optimizer.seen[1]
    if not _close(seen, second_grads):
        summed = [a + b for a, b in zip(first_grads, second_grads)]
        if _close(seen, summed):
            fail("the second step used the gradients of both calls added together: you forgot "
                 "zero_grad, and PyTorch accumulates .grad across backward passes",
                 "call optimizer.zero_grad() after optimizer.step() (or before the forward pass)")
        fail("the gradients at optimizer.step() are not those of this batch's loss",
             "forward with the batch (labels included), loss.backward(), then step")
    if not second_loss < first_loss:
        fail(f"the loss did not go down after one step ({first_loss:.4f} -> {second_loss:.4f})")
    return right(f"one step: loss {first_loss:.3f} -> {second_loss:.3f} on the same batch, and "
                 "each step sees only its own gradients")


# ------------------------------------------------------------------ question 3: trainable parameters

@guarded
def check_trainable(n_trainable: Any, model: torch.nn.Module) -> Feedback:
    """n_trainable = the number of numbers that still train once the encoder is frozen."""
    count = expect_int(n_trainable, "n_trainable")
    still = sum(p.numel() for p in model.base_model.parameters() if p.requires_grad)
    if still:
        fail(f"{still:,} encoder parameters still have requires_grad=True: the encoder is not "
             "frozen", "loop over model.base_model.parameters() and call p.requires_grad_(False)")
    head = [p for name, p in model.named_parameters()
            if not name.startswith(model.base_model_prefix + ".")]
    if not all(p.requires_grad for p in head):
        fail("the head is frozen too: nothing would train",
             "freeze model.base_model only; model.classifier must keep requires_grad=True")
    actual = sum(p.numel() for p in model.parameters() if p.requires_grad)
    tensors = sum(1 for p in model.parameters() if p.requires_grad)
    if count == tensors and count != actual:
        fail(f"n_trainable = {count} counts parameter tensors, not numbers",
             "sum p.numel() over the parameters with requires_grad")
    if count == model.num_parameters():
        fail(f"n_trainable = {count:,} counts every parameter, frozen or not",
             "keep only the parameters with p.requires_grad")
    if count != actual:
        fail(f"n_trainable = {count:,}, but {actual:,} numbers have requires_grad=True")
    return right(f"{actual:,} trainable numbers: the head alone ({model.config.hidden_size} x "
                 f"{model.config.num_labels} weights + {model.config.num_labels} biases)")


# ------------------------------------------------------------------ question 4: evaluation accuracy

class _ForwardProbe:
    """Records, for every forward call of a model, its mode and whether a mask was passed."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls: list[tuple[bool, bool]] = []
        self.handle = model.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        self.calls.append((module.training, kwargs.get("attention_mask") is not None))

    def close(self) -> None:
        self.handle.remove()


def reference_accuracy(model: torch.nn.Module, loader: Any) -> float:
    """Accuracy of argmax(logits) in eval mode, with the attention mask (the course's evaluate)."""
    from ..training import evaluate

    return evaluate(model, loader).accuracy


@guarded
def check_accuracy(evaluate_accuracy: Callable, tokenizer: Any) -> Feedback:
    """evaluate_accuracy(model, loader): a fraction in [0, 1], in eval mode, padding masked."""
    problem = expect_callable(evaluate_accuracy, "evaluate_accuracy",
                              "evaluate_accuracy(model, loader)")
    if problem:
        return problem
    model = tiny_classifier(tokenizer, dropout=0.5, seed=1).train()  # as a training loop leaves it
    examples = SAMPLE * 3 + [("Fine.", 1), ("The lid doesn't seal and the handle is loose.", 0)]
    loader = [_reference_batch(tokenizer, examples[i:i + 4]) for i in range(0, len(examples), 4)]
    probe = _ForwardProbe(model)
    try:
        value = expect_number(evaluate_accuracy(model, loader), "the accuracy")
    finally:
        probe.close()
    if not probe.calls:
        fail("the model was never called", "run model(**inputs) on every batch of the loader")
    if any(training for training, _ in probe.calls):
        fail("the model ran in train mode: dropout was on, so predictions were random and the "
             "accuracy changes from run to run", "call model.eval() before the loop")
    if not all(masked for _, masked in probe.calls):
        fail("the model was called without the attention_mask: it attends to [PAD] tokens, so "
             "padding counts and short reviews get different logits",
             "pass input_ids and attention_mask (e.g. every key of the batch except labels)")
    if 1 < value <= 100:
        fail(f"the accuracy is {value}: give a fraction between 0 and 1, not a percentage")
    expected = reference_accuracy(model, loader)
    if abs(value - expected) > 1e-6:
        fail(f"the accuracy is {value:.4f}, expected {expected:.4f}",
             "count argmax(logits, dim=-1) == labels over ALL examples, divide by their number")
    return right(f"accuracy {expected:.3f}: eval mode, masked padding, argmax of the logits")
