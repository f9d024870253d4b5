"""Lesson 01 checkers and explorers, called directly."""

from __future__ import annotations

import pandas as pd
import pytest

from course_utils.exercises import l01_pipelines as ex

GOOD_KWARGS = {"max_new_tokens": 50, "num_return_sequences": 3, "do_sample": True}
REVIEWS = [("soft fruity gummy bears everywhere", "candy"), ("sour lollipops for the kids", "candy"),
           ("my old dog loves this kibble", "pet food"), ("the kittens eat every tuna pouch", "pet food"),
           ("salted almonds for long drives", "snack"), ("light crunchy rice crackers today", "snack")]


@pytest.mark.parametrize("kwargs,fragment", [
    (GOOD_KWARGS, "✓ Correct"),
    ({"max_new_tokens": 50, "num_return_sequences": 3}, "✓ Correct"),
    ({**GOOD_KWARGS, "max_length": 50}, "max_length counts the prompt"),
    ({**GOOD_KWARGS, "max_new_tokens": 20}, "max_new_tokens is 20"),
    ({**GOOD_KWARGS, "num_return_sequences": 1}, "num_return_sequences is 1"),
    ({**GOOD_KWARGS, "do_sample": False}, "greedy decoding"),
    ({**GOOD_KWARGS, "do_sample": False, "num_beams": 1}, "greedy decoding"),
    # beam search returns num_return_sequences <= num_beams different sequences: valid (issue 14)
    ({**GOOD_KWARGS, "do_sample": False, "num_beams": 3}, "✓ Correct"),
    ({**GOOD_KWARGS, "do_sample": False, "num_beams": 5}, "✓ Correct"),
    ({**GOOD_KWARGS, "do_sample": False, "num_beams": 2}, "at most num_beams"),
    (None, "generation_kwargs is None"),
    ([("max_new_tokens", 50)], "is a list, expected a dict"),
])
def test_generation_kwargs(kwargs, fragment):
    assert fragment in str(ex.check_generation_kwargs(kwargs))


def test_reviews_and_accuracy():
    truth = [label for _, label in REVIEWS]
    preds = ["candy"] * 6
    assert ex.check_review_results(REVIEWS, preds, 2 / 6).correct
    assert "match 0.333" in ex.check_review_results(REVIEWS, preds, 0.5).message
    assert "4 reviews" in ex.check_reviews(REVIEWS[:4]).message
    assert "label 'toy'" in ex.check_reviews(REVIEWS[:5] + [("a toy for the cat", "toy")]).message
    assert "no review labelled ['snack']" in ex.check_reviews(REVIEWS[:4] * 2).message
    assert "(text, label) tuple" in str(ex.check_reviews(["just text"] * 6))
    assert "5 predictions for 6" in ex.check_accuracy(preds[:5], truth, 0.5).message
    assert "not a candidate label" in ex.check_accuracy(["toy"] * 6, truth, 0.0).message
    assert "accuracy is None" in ex.check_accuracy(preds, truth, None).message


def test_model_id_and_comparison():
    assert ex.check_model_id("cross-encoder/nli-distilroberta-base").correct
    assert "course's own" in ex.check_model_id("typeform/distilbert-base-uncased-mnli").message
    assert "cannot be a Hub id" in ex.check_model_id("bart/").message
    table = pd.DataFrame({"a": ["candy", "snack"], "b": ["snack", "snack"]})
    assert ex.check_comparison(table, ["t1", "t2"], ["a", "b"], ex.REVIEW_LABELS).correct
    assert "columns are" in ex.check_comparison(table, ["t1", "t2"], ["b", "a"], ex.REVIEW_LABELS).message
    assert "3 texts" in ex.check_comparison(table, ["t1", "t2", "t3"], ["a", "b"], ex.REVIEW_LABELS).message
    assert "not candidate labels" in ex.check_comparison(table, ["t1", "t2"], ["a", "b"], ["x"]).message
    assert "expected a DataFrame" in ex.check_comparison({}, [], [], []).message


def test_task_choices():
    assert ex.check_task_choices(dict(ex.TASK_FOR_PROBLEM)).correct
    swapped = dict(ex.TASK_FOR_PROBLEM)
    swapped["Continue a story from its first sentence"] = "fill-mask"
    assert "5 of 6 right" in ex.check_task_choices(swapped).message
    removed = dict(ex.TASK_FOR_PROBLEM)
    removed["Continue a story from its first sentence"] = "summarization"
    assert "removed in transformers 5" in ex.check_task_choices(removed).message
    assert "no answer for" in ex.check_task_choices({}).message
    aliases = dict(ex.TASK_FOR_PROBLEM)
    aliases["Decide whether a product review is positive or negative"] = "sentiment-analysis"
    aliases["Find the names of people and places in a news article"] = "NER"
    assert ex.check_task_choices(aliases).correct
    qa = dict(ex.TASK_FOR_PROBLEM)
    qa["Continue a story from its first sentence"] = "question-answering"
    assert "removed in transformers 5" in ex.check_task_choices(qa).message
    numbers = {problem: 1 for problem in ex.TASK_FOR_PROBLEM}
    assert "task name as text" in ex.check_task_choices(numbers).message


@pytest.mark.parametrize("answer,correct", [("text-generation", True), (" 'Text-Generation' ", True),
                                            ("fill-mask", False), ("translation", False),
                                            ("write", False), (None, False)])
def test_story_task(answer, correct):
    assert ex.check_story_task(answer).correct is correct


class FakeZeroShot:
    def __call__(self, text, candidate_labels):
        scores = [1 / len(candidate_labels)] * len(candidate_labels)
        return {"sequence": text, "labels": list(candidate_labels), "scores": scores}


def test_zero_shot_explorer_returns_a_table():
    table = ex.zero_shot_scores(FakeZeroShot(), "salted nuts", "snack, candy ,")
    assert list(table["label"]) == ["snack", "candy"] and table["score"].sum() == pytest.approx(1)
    with pytest.raises(ValueError, match="at least two"):
        ex.zero_shot_scores(FakeZeroShot(), "salted nuts", "snack")
    with pytest.raises(ValueError, match="type a sentence"):
        ex.zero_shot_scores(FakeZeroShot(), "  ", "a, b")


class FakeUnmasker:
    class tokenizer:
        mask_token = "<mask>"

    def __init__(self, tokens=None):
        self.tokens = tokens

    def __call__(self, text, top_k):
        assert text.count("<mask>") == 1
        tokens = self.tokens or [f"w{i}" for i in range(top_k)]
        return [{"token_str": tokens[i], "score": 0.5 / (i + 1), "sequence": text} for i in range(top_k)]


def test_fill_mask_explorer_uses_the_models_mask_token():
    table = ex.fill_mask_table(FakeUnmasker(), "all about ___ models", top_k=2)
    assert list(table["token"]) == ["w0", "w1"]
    table = ex.fill_mask_table(FakeUnmasker(tokens=["\x00", " "]), "all about ___ models", top_k=2)
    assert list(table["token"]) == ["'\\x00'", "' '"]  # a blank filler stays visible
    with pytest.raises(ValueError, match="exactly one blank"):
        ex.fill_mask_table(FakeUnmasker(), "no blank here")


@pytest.mark.parametrize("model_id", ["bert-base-uncased", "roberta-large-mnli", "facebook/bart-large-mnli",
                                      "MoritzLaurer/DeBERTa-v3-base-mnli", "gpt2", "foo/bar", "a.b_c-d"])
def test_model_id_accepts_hub_syntax_with_or_without_namespace(model_id):
    """Legacy ids without a namespace still resolve on the Hub; the check reads only the form."""
    feedback = ex.check_model_id(model_id)
    assert feedback.correct, feedback
    assert "form" in feedback.message  # says what it checked: the form, not existence


@pytest.mark.parametrize("model_id", ["", "  ", "owner/", "/model", "a/b/c", "has space/model",
                                      "owner/-model",
                                      "owner/model.", "a--b", "a..b", "model.git", "café/model",
                                      "https://huggingface.co/gpt2", "x" * 97])
def test_model_id_rejects_what_cannot_be_an_id(model_id):
    feedback = ex.check_model_id(model_id)
    assert not feedback.correct and "cannot be a Hub id" in feedback.message, feedback


def test_review_results_given_the_classifier_reject_copied_labels():
    """Issue 14: predictions copied from the labels (accuracy 1.0) passed the checker."""
    def classifier(texts, candidate_labels):
        return [{"labels": ["snack", "candy", "pet food"], "scores": [0.5, 0.3, 0.2]} for _ in texts]

    copied = [label for _, label in REVIEWS]
    outcome = ex.check_review_results(REVIEWS, copied, 1.0, classifier)
    assert not outcome.correct and "zero_shot ranks" in outcome.message, outcome
    assert ex.check_review_results(REVIEWS, ["snack"] * 6, 2 / 6, classifier).correct
    assert ex.check_review_results(REVIEWS, copied, 1.0).correct  # without the classifier: arithmetic only


def test_comparison_given_the_classifiers_rejects_a_made_up_table():
    """A table of the right shape with labels not from the classifier passed the checker."""
    def classifier(texts, candidate_labels):
        return [{"labels": ["snack", "candy", "pet food"], "scores": [0.5, 0.3, 0.2]} for _ in texts]

    made_up = pd.DataFrame({"a": ["candy", "candy"]})
    outcome = ex.check_comparison(made_up, ["t1", "t2"], ["a"], ex.REVIEW_LABELS, {"a": classifier})
    assert not outcome.correct and "ranks" in outcome.message, outcome
    real = pd.DataFrame({"a": ["snack", "snack"]})
    assert ex.check_comparison(real, ["t1", "t2"], ["a"], ex.REVIEW_LABELS, {"a": classifier}).correct
