"""Fine-tuning by hand (lesson 09): the course's labelled reviews, a padding collator, a training
loop run by accelerate's Accelerator, and evaluation.

Every definition here is taught in notebooks/09_fine_tuning.ipynb (cells tagged `export`);
tests/test_sync.py checks that the two copies agree.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Optional

import torch
import torch.nn.functional as F

from .precision import pick_dtype

LABELS = ("negative", "mixed", "positive")  # label id = position in this tuple


def load_reviews(text: Optional[str] = None) -> list[tuple[str, int]]:
    """The course's labelled reviews as (text, label id) pairs, in file order."""
    if text is None:
        text = (resources.files("course_utils") / "data" / "reviews.txt").read_text(encoding="utf-8")
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        label, tab, review = line.partition("\t")
        if not tab or not review.strip() or label not in LABELS:
            raise ValueError(f"line {number}: expected '<label><TAB><text>' with a label in "
                             f"{LABELS}, got {line[:60]!r}")
        examples.append((review.strip(), LABELS.index(label)))
    return examples


def split_examples(examples: list[tuple[str, int]], seed: int = 0,
                   fractions: tuple[float, float] = (0.6, 0.2)) -> dict[str, list[tuple[str, int]]]:
    """Split into train / validation / test, the same share of every label in each (fixed seed)."""
    rng = random.Random(seed)
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "validation": [], "test": []}
    for label in sorted({label for _, label in examples}):
        group = [example for example in examples if example[1] == label]
        rng.shuffle(group)
        n_train, n_val = round(fractions[0] * len(group)), round(fractions[1] * len(group))
        splits["train"] += group[:n_train]
        splits["validation"] += group[n_train:n_train + n_val]
        splits["test"] += group[n_train + n_val:]
    for part in splits.values():
        rng.shuffle(part)  # mix the labels (the order a loader without shuffling would see)
    return splits


def fresh_classifier(checkpoint: str, seed: int = 0) -> torch.nn.Module:
    """The encoder in `checkpoint` with a new, seeded classification head for LABELS."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)  # the new head's random initial weights
    return AutoModelForSequenceClassification.from_pretrained(
        checkpoint, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)}, trust_remote_code=False,
        use_safetensors=True)


def freeze_encoder(model: torch.nn.Module) -> int:
    """Stop training the encoder (`model.base_model`); return the number of trainable parameters."""
    for parameter in model.base_model.parameters():
        parameter.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class PaddingCollator:
    """Turn a list of (text, label) pairs into one batch, padded to its own longest text."""

    def __init__(self, tokenizer: Any, max_length: int = 64) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, examples: list[tuple[str, int]]) -> dict[str, torch.Tensor]:
        texts = [text for text, _ in examples]
        batch = self.tokenizer(texts, padding="longest", truncation=True,
                               max_length=self.max_length, return_tensors="pt")
        batch = dict(batch)  # input_ids, attention_mask (and token_type_ids for BERT)
        batch["labels"] = torch.tensor([label for _, label in examples], dtype=torch.long)
        return batch


def make_loaders(splits: dict[str, list[tuple[str, int]]], collator: PaddingCollator,
                 batch_size: int = 16, seed: int = 0) -> dict[str, Any]:
    """DataLoaders: the training split shuffled by a seeded generator, the others in order."""
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    return {name: DataLoader(part, batch_size=batch_size if name == "train" else 64,
                             shuffle=name == "train", collate_fn=collator,
                             generator=generator if name == "train" else None)
            for name, part in splits.items()}


@dataclass
class Evaluation:
    """A model's predictions on a data set: mean loss, accuracy and the raw numbers behind them."""

    loss: float
    accuracy: float
    logits: torch.Tensor  # (examples, labels), float32 on the CPU
    labels: torch.Tensor  # (examples,)
    losses: torch.Tensor  # (examples,): the loss of each example


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: Any) -> Evaluation:
    """Run `model` in eval mode (no dropout) over every batch of `loader`; loss and accuracy."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    all_logits, all_labels = [], []
    for batch in loader:
        batch = {key: value.to(device) for key, value in batch.items()}
        labels = batch.pop("labels")
        all_logits.append(model(**batch).logits.float().cpu())
        all_labels.append(labels.cpu())
    model.train(was_training)
    logits, labels = torch.cat(all_logits), torch.cat(all_labels)
    losses = F.cross_entropy(logits, labels, reduction="none")
    accuracy = (logits.argmax(dim=-1) == labels).float().mean().item()
    return Evaluation(losses.mean().item(), accuracy, logits, labels, losses)


def choose_mixed_precision(device: torch.device) -> str:
    """Lesson 08's dtype rule as accelerate's setting: 'bf16' or 'fp16' on a GPU, 'no' elsewhere."""
    if device.type != "cuda":
        return "no"  # CPU, MPS: accelerate's fp16 needs a GPU, and bf16 autocast is slower here
    # pick_dtype asks for *native* bf16: torch.cuda.is_bf16_supported() also says True on a T4,
    # which only emulates it (lesson 08)
    return "bf16" if pick_dtype(device).dtype == torch.bfloat16 else "fp16"


@dataclass
class TrainingRun:
    """What a fine-tuning run did: per-step training loss, validation curve, time, precision."""

    mixed_precision: str
    device: str
    trainable_parameters: int
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


def fine_tune(model: torch.nn.Module, train_loader: Any, val_loader: Any, *, epochs: int = 3,
              lr: float = 5e-5, warmup_fraction: float = 0.1, max_grad_norm: float = 1.0,
              evals_per_epoch: int = 2, seed: int = 0) -> TrainingRun:
    """Train `model` (its parameters with requires_grad) with AdamW, warm-up and clipping."""
    from accelerate import Accelerator, PartialState
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)  # dropout masks (the loader's shuffling has its own generator)
    # PartialState().device is the device the Accelerator will use: cuda, mps or cpu.
    accelerator = Accelerator(mixed_precision=choose_mixed_precision(PartialState().device))
    trainable = [p for p in model.parameters() if p.requires_grad]
    fused = accelerator.device.type in ("cpu", "cuda")  # one fused kernel per step: much faster
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01, fused=fused)
    total_steps = epochs * len(train_loader)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(warmup_fraction * total_steps),
                                                total_steps)
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler)
    run = TrainingRun(accelerator.mixed_precision, accelerator.device.type,
                      sum(p.numel() for p in trainable))
    eval_at = {round(len(train_loader) * (k + 1) / evals_per_epoch) for k in range(evals_per_epoch)}

    def validate(step: int) -> None:
        result = evaluate(model, val_loader)
        run.val_steps.append(step)
        run.val_loss.append(result.loss)
        run.val_accuracy.append(result.accuracy)

    start = time.perf_counter()
    validate(0)  # the untrained model: the curve starts here
    model.train()
    step = 0
    for _ in range(epochs):
        for index, batch in enumerate(train_loader, start=1):
            loss = model(**batch).loss  # labels in the batch: mean cross-entropy over it
            accelerator.backward(loss)
            norm = accelerator.clip_grad_norm_(trainable, max_grad_norm)
            run.learning_rate.append(scheduler.get_last_lr()[0])  # the rate this step uses
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            run.steps.append(step)
            run.train_loss.append(loss.item())
            run.grad_norm.append(float(norm))
            if index in eval_at:
                validate(step)
    run.seconds = time.perf_counter() - start
    accelerator.unwrap_model(model, keep_fp32_wrapper=False)  # plain forward again (no autocast)
    return run
