"""Lesson 09 checkers: right answers pass, each classic mistake gets its own diagnosis."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer

from course_utils import standins, training
from course_utils.exercises import l09_fine_tuning as ex


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(standins.build("features"), trust_remote_code=False)


# ------------------------------------------------------------------ question 1

def make_collate(tokenizer, padding="longest", dtype=torch.long, mask=True):
    def collate(examples):
        batch = dict(tokenizer([t for t, _ in examples], padding=padding, max_length=32,
                               truncation=True, return_tensors="pt"))
        if not mask:
            batch.pop("attention_mask")
        batch["labels"] = torch.tensor([y for _, y in examples], dtype=dtype)
        return batch
    return collate


def test_collator_right(tokenizer):
    assert ex.check_collator(make_collate(tokenizer), tokenizer).correct
    assert ex.check_collator(training.PaddingCollator(tokenizer), tokenizer).correct


@pytest.mark.parametrize("kwargs, words", [
    ({"dtype": torch.float32}, "wrong dtype"),
    ({"mask": False}, "padding is counted"),
    ({"padding": "max_length"}, "fixed length"),
])
def test_collator_mistakes_are_named(tokenizer, kwargs, words):
    feedback = ex.check_collator(make_collate(tokenizer, **kwargs), tokenizer)
    assert not feedback.correct and words in feedback.message, feedback


def test_collator_other_failures(tokenizer):
    assert "None" in ex.check_collator(None, tokenizer).message
    assert "dict" in ex.check_collator(lambda examples: [1, 2], tokenizer).message
    def stub(examples):
        raise NotImplementedError()
    assert ex.check_collator(stub, tokenizer).message == "not answered yet"
    def all_ones(examples):
        batch = make_collate(tokenizer)(examples)
        batch["attention_mask"] = torch.ones_like(batch["attention_mask"])
        return batch
    assert "padding counted" in ex.check_collator(all_ones, tokenizer).message
    def shuffled_labels(examples):
        batch = make_collate(tokenizer)(examples)
        batch["labels"] = batch["labels"].flip(0)
        return batch
    assert "labels are" in ex.check_collator(shuffled_labels, tokenizer).message


# ------------------------------------------------------------------ question 2

def good_step(model, batch, optimizer):
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def zero_first(model, batch, optimizer):
    optimizer.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    return loss


def no_zero_grad(model, batch, optimizer):
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    return loss.item()


def no_step(model, batch, optimizer):
    loss = model(**batch).loss
    loss.backward()
    optimizer.zero_grad()
    return loss.item()


def loss_after(model, batch, optimizer):
    good_step(model, batch, optimizer)
    return model(**batch).loss.item()


def test_train_step_right(tokenizer):
    assert ex.check_train_step(good_step, tokenizer).correct
    assert ex.check_train_step(zero_first, tokenizer).correct  # zeroing first is fine too


@pytest.mark.parametrize("step, words", [(no_zero_grad, "forgot zero_grad"),
                                         (no_step, "never stepped"),
                                         (loss_after, "before the step")])
def test_train_step_mistakes_are_named(tokenizer, step, words):
    feedback = ex.check_train_step(step, tokenizer)
    assert not feedback.correct and words in feedback.message, feedback


# ------------------------------------------------------------------ question 3

@pytest.fixture()
def frozen(tokenizer):
    model = ex.tiny_classifier(tokenizer)
    training.freeze_encoder(model)
    return model


def test_trainable_right(frozen):
    assert ex.check_trainable(99, frozen).correct


def test_trainable_mistakes(tokenizer, frozen):
    assert "tensors" in ex.check_trainable(2, frozen).message
    assert "every parameter" in ex.check_trainable(frozen.num_parameters(), frozen).message
    assert "expected an int" in ex.check_trainable(None, frozen).message
    assert not ex.check_trainable(100, frozen).correct
    unfrozen = ex.tiny_classifier(tokenizer)
    assert "not frozen" in ex.check_trainable(99, unfrozen).message
    for p in frozen.classifier.parameters():
        p.requires_grad_(False)
    assert "head is frozen too" in ex.check_trainable(0, frozen).message


# ------------------------------------------------------------------ question 4

def good_accuracy(model, loader):
    model.eval()
    right = total = 0
    with torch.no_grad():
        for batch in loader:
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            right += (model(**inputs).logits.argmax(-1) == batch["labels"]).sum().item()
            total += len(batch["labels"])
    return right / total


def _accuracy_without_eval(model, loader):
    right = total = 0
    for batch in loader:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        right += (model(**inputs).logits.argmax(-1) == batch["labels"]).sum().item()
        total += len(batch["labels"])
    return right / total


def no_mask(model, loader):
    model.eval()
    right = total = 0
    for batch in loader:
        right += (model(batch["input_ids"]).logits.argmax(-1) == batch["labels"]).sum().item()
        total += len(batch["labels"])
    return right / total


def mean_of_batches(model, loader):
    model.eval()
    values = []
    for batch in loader:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        values.append((model(**inputs).logits.argmax(-1) == batch["labels"]).float().mean().item())
    return sum(values) / len(values)


def test_accuracy_right(tokenizer):
    assert ex.check_accuracy(good_accuracy, tokenizer).correct


@pytest.mark.parametrize("fn, words", [(_accuracy_without_eval, "train mode"),
                                       (no_mask, "without the attention_mask"),
                                       (lambda model, loader: 100 * good_accuracy(model, loader),
                                        "percentage")])
def test_accuracy_mistakes_are_named(tokenizer, fn, words):
    feedback = ex.check_accuracy(fn, tokenizer)
    assert not feedback.correct and words in feedback.message, feedback


def test_accuracy_mean_of_unequal_batches_is_wrong_when_it_differs(tokenizer):
    # 11 examples in batches of 4, 4, 3: the mean of batch means weighs the last batch more
    model = ex.tiny_classifier(tokenizer, dropout=0.5, seed=1)
    examples = ex.SAMPLE * 3 + [("Fine.", 1), ("The lid doesn't seal and the handle is loose.", 0)]
    loader = [ex._reference_batch(tokenizer, examples[i:i + 4]) for i in range(0, len(examples), 4)]
    if abs(mean_of_batches(model, loader) - good_accuracy(model, loader)) > 1e-6:
        assert not ex.check_accuracy(mean_of_batches, tokenizer).correct


# ------------------------------------------------------------------ the explorer

def test_compare_predictions_table(tokenizer):
    untrained = ex.tiny_classifier(tokenizer, seed=0)
    trained = ex.tiny_classifier(tokenizer, seed=1)
    trained.config.id2label = dict(enumerate(training.LABELS))
    table = ex.compare_predictions(untrained, trained, tokenizer, "Great sound, weak battery.")
    assert isinstance(table, pd.DataFrame) and list(table.columns) == ["untrained", "trained"]
    assert list(table.index) == list(training.LABELS)
    assert table.sum().round(2).tolist() == [1.0, 1.0]
    assert not table["untrained"].equals(table["trained"])
    with pytest.raises(ValueError, match="type a review"):
        ex.compare_predictions(untrained, trained, tokenizer, "   ")
    long = ex.compare_predictions(untrained, trained, tokenizer, "word " * 500)  # truncated, no error
    assert long.shape == (3, 2)


def test_plot_comparison_has_labelled_axes(tokenizer):
    import matplotlib

    matplotlib.use("Agg")
    table = pd.DataFrame({"untrained": [0.3, 0.3, 0.4], "trained": [0.1, 0.2, 0.7]},
                         index=list(training.LABELS))
    ax = ex.plot_comparison(table)
    assert ax.get_xlabel() == "label" and ax.get_ylabel() == "probability"
