"""Lesson 01 (pipelines): checkers for the graded questions, and the pipeline explorers."""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

import pandas as pd

from ..display import prob_bar_chart, readable_token
from ..feedback import Feedback, expect_type, fail, guarded, right, wrong
from ..registry import REGISTRY

REVIEW_LABELS = ("candy", "pet food", "snack")

# Which pipeline task fits which problem (question 4).
TASK_FOR_PROBLEM = {
    "Decide whether a product review is positive or negative": "text-classification",
    "Suggest the most likely missing word in a sentence": "fill-mask",
    "Sort support tickets into topics chosen today, with no training data": "zero-shot-classification",
    "Continue a story from its first sentence": "text-generation",
    "Turn sentences into vectors to find similar ones": "feature-extraction",
    "Find the names of people and places in a news article": "token-classification",
}
TASKS = sorted(set(TASK_FOR_PROBLEM.values()))
REMOVED_TASKS = ("text2text-generation", "translation", "summarization", "question-answering")


def canonical_task(name: str) -> str:
    """The task a name stands for: aliases such as "sentiment-analysis" resolved, case folded."""
    from transformers.pipelines import TASK_ALIASES

    name = name.strip().strip("'\"").lower()
    return TASK_ALIASES.get(name, name)


@guarded
def check_generation_kwargs(kwargs: Any) -> Feedback:
    """Question 1: keyword arguments for 3 different sequences of 50 new tokens each."""
    expect_type(kwargs, dict, "generation_kwargs")
    if "max_length" in kwargs:
        fail("max_length counts the prompt's tokens too",
             "use max_new_tokens to count only the generated tokens")
    if kwargs.get("max_new_tokens") != 50:
        fail(f"max_new_tokens is {kwargs.get('max_new_tokens')!r}, expected 50",
             "max_new_tokens=50 asks for 50 new tokens")
    if kwargs.get("num_return_sequences") != 3:
        fail(f"num_return_sequences is {kwargs.get('num_return_sequences')!r}, expected 3")
    beams = kwargs.get("num_beams", 1)
    if kwargs.get("do_sample", True) is not True:
        if not isinstance(beams, int) or beams <= 1:
            fail("greedy decoding (do_sample=False, num_beams=1) can return only one sequence",
                 "sample instead (do_sample=True, the pipeline's default), or search with num_beams >= 3")
        if beams < 3:
            fail(f"beam search with num_beams={beams} keeps only {beams} sequences, and you ask for 3",
                 "num_return_sequences can be at most num_beams")
        return right(f"beam search with {beams} beams returns its 3 best sequences of 50 new tokens")
    return right("3 sampled sequences of 50 new tokens each")


@guarded
def check_reviews(reviews: Any) -> Feedback:
    """Question 2a: a labelled list of (review, label) pairs covering the three labels."""
    expect_type(reviews, list, "reviews")
    if len(reviews) < 6:
        fail(f"{len(reviews)} reviews; write at least 6 (two per label)")
    for i, item in enumerate(reviews):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            fail(f"reviews[{i}] is {item!r}", "each item is a (text, label) tuple")
        if item[1] not in REVIEW_LABELS:
            fail(f"reviews[{i}] has label {item[1]!r}", f"use one of {list(REVIEW_LABELS)}")
        if len(item[0].split()) < 4:
            fail(f"reviews[{i}] is too short to classify: {item[0]!r}")
    missing = set(REVIEW_LABELS) - {label for _, label in reviews}
    if missing:
        fail(f"no review labelled {sorted(missing)}", "cover all three labels")
    return right(f"{len(reviews)} labelled reviews covering all three labels")


@guarded
def check_accuracy(predictions: Any, truth: Sequence[str], accuracy: Any) -> Feedback:
    """Question 2b: predicted labels (one per review) and the accuracy computed from them."""
    expect_type(predictions, list, "predictions")
    if len(predictions) != len(truth):
        fail(f"{len(predictions)} predictions for {len(truth)} reviews",
             "predict one label per review")
    strays = [p for p in predictions if p not in REVIEW_LABELS]
    if strays:
        fail(f"predictions contain {strays[0]!r}, not a candidate label",
             "take result['labels'][0], the best-scoring label")
    expect_type(accuracy, (float, int), "accuracy")
    expected = sum(p == t for p, t in zip(predictions, truth)) / len(truth)
    if not math.isclose(accuracy, expected, abs_tol=1e-9):
        fail(f"accuracy is {accuracy}, but your predictions match {expected:.3f} of the labels",
             "accuracy = number of correct predictions / number of reviews")
    return right(f"accuracy {expected:.2f} computed correctly from your predictions")


@guarded
def check_review_results(reviews: Any, predictions: Any, accuracy: Any, classifier: Any = None) -> Feedback:
    """Question 2: the labelled reviews, then predictions and accuracy computed from them.

    Given the zero-shot `classifier`, the predictions must be its top labels (not, say, a copy of
    the labels you wrote).
    """
    feedback = check_reviews(reviews)
    if not feedback.correct:
        return feedback
    feedback = check_accuracy(predictions, [label for _, label in reviews], accuracy)
    if not feedback.correct or classifier is None:
        return feedback
    results = classifier([text for text, _ in reviews], candidate_labels=list(REVIEW_LABELS))
    top = [result["labels"][0] for result in results]
    differ = [i for i, (p, t) in enumerate(zip(predictions, top)) if p != t]
    if differ:
        fail(f"predictions[{differ[0]}] is {predictions[differ[0]]!r}, but zero_shot ranks "
             f"{top[differ[0]]!r} first ({len(differ)} of {len(top)} differ)",
             "predictions must come from zero_shot: result['labels'][0] for each review")
    return feedback


_HUB_ID = re.compile(r"(?:[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9])?/)?[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9])?",
                     flags=re.ASCII)


def is_hub_id(text: str) -> bool:
    """Whether `text` is written like a Hub repo id ('model' or 'owner/model'); not whether it exists."""
    return (bool(_HUB_ID.fullmatch(text)) and "--" not in text and ".." not in text
            and not text.endswith(".git"))


@guarded
def check_model_id(model_id: Any) -> Feedback:
    """Question 3a: the Hub name of another zero-shot model."""
    expect_type(model_id, str, "my_model_id")
    if not is_hub_id(model_id.strip()):
        fail(f"{model_id!r} cannot be a Hub id",
             "a Hub id is 'model' or 'owner/model': letters, digits, '-', '_' and '.', at most 96 "
             "characters per part, no '--' or '..'")
    if model_id.strip() == REGISTRY["zero-shot"].hub_id:
        fail("that is the course's own model", "pick a different zero-shot model")
    return right(f"{model_id} is written like a Hub id; whether it exists shows only when Colab "
                 "loads it (this check reads the form, not the Hub)")


@guarded
def check_comparison(table: Any, texts: Sequence[str], model_names: Sequence[str],
                     labels: Sequence[str], classifiers: dict | None = None) -> Feedback:
    """Question 3b: one row per text, one column per model, each cell a candidate label.

    Given the `classifiers` by name, each column must hold that classifier's top labels.
    """
    expect_type(table, pd.DataFrame, "the result of compare_models")
    if list(table.columns) != list(model_names):
        fail(f"columns are {list(table.columns)}, expected {list(model_names)}",
             "one column per model, named by the dictionary's keys")
    if len(table) != len(texts):
        fail(f"{len(table)} rows for {len(texts)} texts", "one row per text")
    strays = {v for v in table.to_numpy().ravel() if v not in labels}
    if strays:
        fail(f"cells contain {sorted(map(str, strays))[:3]}, not candidate labels",
             "each cell is the top label that model gives that text")
    for name, classifier in (classifiers or {}).items():
        top = [r["labels"][0] for r in classifier(list(texts), candidate_labels=list(labels))]
        if list(table[name]) != top:
            fail(f"column {name!r} is {list(table[name])}, but that classifier ranks {top} first",
                 "call each classifier on the texts and keep result['labels'][0]")
    return right(f"a {len(texts)} x {len(model_names)} table of top labels")


@guarded
def check_task_choices(choices: Any) -> Feedback:
    """Question 4: map every problem to the pipeline task that fits it."""
    expect_type(choices, dict, "task_choices")
    missing = [p for p in TASK_FOR_PROBLEM if p not in choices]
    if missing:
        fail(f"no answer for {missing[0]!r}", "keep every problem as a key")
    if not all(isinstance(task, str) for task in choices.values()):
        fail("every answer must be a task name as text")
    removed = [t for t in choices.values() if canonical_task(t) in REMOVED_TASKS]
    if removed:
        fail(f"{removed[0]!r} was removed in transformers 5",
             "see lesson 01's section on removed tasks")
    wrong_ones = [p for p, task in TASK_FOR_PROBLEM.items() if canonical_task(choices[p]) != task]
    if wrong_ones:
        n = len(TASK_FOR_PROBLEM) - len(wrong_ones)
        fail(f"{n} of {len(TASK_FOR_PROBLEM)} right; not yet: {wrong_ones[0]!r}",
             f"the task names are {TASKS}")
    return right(f"all {len(TASK_FOR_PROBLEM)} problems matched to their task")


@guarded
def check_story_task(answer: Any) -> Feedback:
    """Self-check box: which task continues a story from its first sentence?"""
    expect_type(answer, str, "your answer")
    given = canonical_task(answer)
    if given == "text-generation":
        return right("text-generation continues a prompt token by token")
    if given in REMOVED_TASKS:
        return wrong(f"{given} was removed in transformers 5")
    if given in TASKS:
        return wrong(f"{given} does not write new text after a prompt",
                     "which task generates text?")
    return wrong(f"{answer!r} is not a pipeline task name", f"task names look like {TASKS[0]!r}")


def zero_shot_scores(classifier: Any, text: str, labels: str) -> pd.DataFrame:
    """Explorer: zero-shot scores of `text` for comma-separated candidate labels."""
    candidates = [label.strip() for label in labels.split(",") if label.strip()]
    if not text.strip():
        raise ValueError("type a sentence to classify")
    if len(candidates) < 2:
        raise ValueError("give at least two comma-separated labels")
    result = classifier(text, candidate_labels=candidates)
    return pd.DataFrame({"label": result["labels"], "score": result["scores"]}).round(4)


def fill_mask_table(unmasker: Any, text: str, top_k: int = 5) -> pd.DataFrame:
    """Explorer: the top-k fillers for the blank written as ___ in `text`."""
    if text.count("___") != 1:
        raise ValueError("write exactly one blank as ___")
    masked = text.replace("___", unmasker.tokenizer.mask_token)
    rows = unmasker(masked, top_k=top_k)
    return pd.DataFrame({"token": [readable_token(r["token_str"]) for r in rows],
                         "score": [round(r["score"], 4) for r in rows],
                         "sentence": [r["sequence"] for r in rows]})


def plot_scores(table: pd.DataFrame) -> Any:
    """Bar chart of an explorer's score column."""
    names = table["label"] if "label" in table else table["token"]
    return prob_bar_chart(list(names), list(table["score"]))
