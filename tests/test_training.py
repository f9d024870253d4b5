"""course_utils.training: the reviews, the split, the collator, evaluation and the loop."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from course_utils import standins, training


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(standins.build("features"), trust_remote_code=False)


@pytest.fixture(scope="module")
def tiny(tokenizer):
    from course_utils.exercises.l09_fine_tuning import tiny_classifier

    return tiny_classifier(tokenizer, dropout=0.1)


def test_reviews_are_300_balanced_and_distinct():
    examples = training.load_reviews()
    assert len(examples) == 300
    assert [sum(1 for _, y in examples if y == k) for k in range(3)] == [100, 100, 100]
    assert len({text for text, _ in examples}) == 300


def test_load_reviews_names_the_broken_line():
    assert training.load_reviews("# comment\n\npositive\tFine.\n") == [("Fine.", 2)]
    for broken in ["positive Fine.", "great\tFine.", "mixed\t  "]:
        with pytest.raises(ValueError, match="line 1"):
            training.load_reviews(broken)


def test_split_is_stratified_disjoint_and_seeded():
    examples = training.load_reviews()
    splits = training.split_examples(examples, seed=0)
    assert [len(p) for p in splits.values()] == [180, 60, 60]
    for part, size in zip(splits.values(), (60, 20, 20)):
        assert [sum(1 for _, y in part if y == k) for k in range(3)] == [size] * 3
    texts = [t for part in splits.values() for t, _ in part]
    assert sorted(texts) == sorted(t for t, _ in examples)
    assert splits == training.split_examples(examples, seed=0)
    assert splits["test"] != training.split_examples(examples, seed=1)["test"]


def test_collator_pads_to_the_longest_of_each_batch(tokenizer):
    collate = training.PaddingCollator(tokenizer, max_length=64)
    examples = [("Worth every penny.", 2), ("The zipper broke the second time I used it.", 0)]
    batch = collate(examples)
    longest = max(len(tokenizer(t)["input_ids"]) for t, _ in examples)
    assert batch["input_ids"].shape == (2, longest)
    assert batch["attention_mask"][0].sum() < longest and batch["attention_mask"][1].all()
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [2, 0]
    assert collate([examples[0]])["input_ids"].shape[1] < longest
    assert training.PaddingCollator(tokenizer, max_length=5)(examples)["input_ids"].shape[1] == 5


def test_loaders_shuffle_only_training_and_reproducibly(tokenizer):
    splits = training.split_examples(training.load_reviews())
    collate = training.PaddingCollator(tokenizer)
    first = [b["labels"].tolist() for b in training.make_loaders(splits, collate, seed=0)["train"]]
    again = [b["labels"].tolist() for b in training.make_loaders(splits, collate, seed=0)["train"]]
    other = [b["labels"].tolist() for b in training.make_loaders(splits, collate, seed=1)["train"]]
    assert first == again and first != other
    test = next(iter(training.make_loaders(splits, collate)["test"]))
    assert test["labels"].tolist() == [y for _, y in splits["test"]]


def test_evaluate_uses_eval_mode_and_restores_the_mode(tokenizer, tiny):
    collate = training.PaddingCollator(tokenizer)
    loader = [collate(training.load_reviews()[i:i + 5]) for i in (0, 100, 200)]
    tiny.train()
    first, second = training.evaluate(tiny, loader), training.evaluate(tiny, loader)
    assert tiny.training  # restored
    assert torch.equal(first.logits, second.logits)  # no dropout inside
    assert first.logits.shape == (15, 3) and first.losses.shape == (15,)
    manual = (first.logits.argmax(-1) == first.labels).float().mean().item()
    assert first.accuracy == pytest.approx(manual)
    assert first.loss == pytest.approx(torch.nn.functional.cross_entropy(first.logits, first.labels).item())


def test_mixed_precision_rule_on_cpu():
    assert training.choose_mixed_precision(torch.device("cpu")) == "no"
    assert training.choose_mixed_precision(torch.device("mps")) == "no"


def test_freeze_encoder_leaves_the_head(tiny):
    import copy

    model = copy.deepcopy(tiny)
    assert training.freeze_encoder(model) == 32 * 3 + 3
    assert not any(p.requires_grad for p in model.base_model.parameters())


def test_fine_tune_lowers_the_loss_and_is_deterministic(tokenizer, tiny):
    import copy

    examples = training.load_reviews()
    splits = {"train": examples[:24] + examples[100:124] + examples[200:224],
              "validation": examples[90:100] + examples[290:300]}
    runs, models = [], []
    for _ in range(2):
        loaders = training.make_loaders(splits, training.PaddingCollator(tokenizer), batch_size=8)
        model = copy.deepcopy(tiny)
        runs.append(training.fine_tune(model, loaders["train"], loaders["validation"], epochs=3,
                                       lr=3e-3, seed=0))
        models.append(model)
    run = runs[0]
    assert run.mixed_precision == "no" and run.device == "cpu"
    assert len(run.steps) == 27 and run.val_steps == [0, 4, 9, 13, 18, 22, 27]
    assert run.learning_rate[0] == 0.0 and max(run.learning_rate) == pytest.approx(3e-3)
    assert run.val_loss[-1] < run.val_loss[0]
    assert run.train_loss == runs[1].train_loss
    assert run.trainable_parameters == sum(p.numel() for p in tiny.parameters())
    assert all(torch.equal(a, b) for a, b in zip(models[0].parameters(), models[1].parameters()))
    assert not any(torch.equal(a, b) for a, b in zip(models[0].parameters(), tiny.parameters())
                   if a.dim() == 2 and a.shape[0] < 1000)


def test_fine_tune_trains_only_what_requires_grad(tokenizer, tiny):
    import copy

    model = copy.deepcopy(tiny)
    training.freeze_encoder(model)
    examples = training.load_reviews()[::20]
    loaders = training.make_loaders({"train": examples, "validation": examples[:4]},
                                    training.PaddingCollator(tokenizer), batch_size=5)
    run = training.fine_tune(model, loaders["train"], loaders["validation"], epochs=1, lr=1e-2)
    assert run.trainable_parameters == 99
    assert all(torch.equal(a, b) for a, b in zip(model.base_model.parameters(),
                                                 tiny.base_model.parameters()))
    assert not torch.equal(model.classifier.weight, tiny.classifier.weight)
