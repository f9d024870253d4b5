"""Unit tests of lesson 03's checkers and explorer: right, wrong, None, wrong type, wrong shape,
and an exception inside learner code."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import torch

from course_utils import widgets
from course_utils.exercises import l03_models_and_heads as ex
from course_utils import standins
from course_utils.feedback import Feedback, evaluate, report


class Exploding(torch.Tensor):
    """A tensor whose every operation raises: stands for learner code failing inside a check."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError("boom from learner code")


def exploding(shape=(2, 2)) -> torch.Tensor:
    return torch.zeros(shape).as_subclass(Exploding)


# ---- question 1: a batch by hand ---------------------------------------------------------------

LABELS = {0: "NEGATIVE", 1: "POSITIVE"}


@pytest.fixture
def logits():
    return torch.tensor([[2.0, -1.0], [-0.5, 1.5], [0.1, 0.3]])


def pipeline_like(logits: torch.Tensor) -> list[dict]:
    """What the text-classification pipeline returns for these logits (its own numpy softmax)."""
    out = []
    for row in logits.numpy():
        scores = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        out.append({"label": LABELS[int(scores.argmax())], "score": float(scores.max())})
    return out


def by_hand(logits):
    probs = logits.softmax(dim=-1)
    return probs, [LABELS[i] for i in probs.argmax(dim=-1).tolist()]


def test_batch_right(logits):
    probs, labels = by_hand(logits)
    outcome = ex.check_batch_classification(probs, labels, pipeline_like(logits))
    assert isinstance(outcome, Feedback) and outcome.correct, outcome
    assert "3 texts" in outcome.message


def test_batch_right_with_grad_and_tuple_of_labels(logits):
    probs, labels = by_hand(logits.clone().requires_grad_())
    assert ex.check_batch_classification(probs, tuple(labels), pipeline_like(logits)).correct


def test_batch_logits_instead_of_probs(logits):
    _, labels = by_hand(logits)
    outcome = ex.check_batch_classification(logits, labels, pipeline_like(logits))
    assert not outcome.correct and "logits" in outcome.message and "softmax" in outcome.hint


def test_batch_small_logits_inside_unit_interval(logits):
    small = logits / 100 + 0.5  # all in [0, 1], rows do not sum to 1 (like the stand-in's logits)
    outcome = ex.check_batch_classification(small, by_hand(logits)[1], pipeline_like(logits))
    assert not outcome.correct and "sum to 1" in outcome.message


def test_batch_softmax_over_the_wrong_axis():
    logits = torch.tensor([[2.0, -1.0, 0.0], [-0.5, 1.5, 0.2], [0.1, 0.3, 2.0]])
    LABELS[2] = "NEUTRAL"
    try:
        outcome = ex.check_batch_classification(logits.softmax(dim=0), by_hand(logits)[1],
                                                pipeline_like(logits))
    finally:
        del LABELS[2]
    assert not outcome.correct and "dim=0" in outcome.message


def test_batch_probabilities_of_another_model(logits):
    probs, labels = by_hand(logits * 2)
    outcome = ex.check_batch_classification(probs, labels, pipeline_like(logits))
    assert not outcome.correct and "differ" in outcome.message and "padding" in outcome.hint


def test_batch_wrong_labels(logits):
    probs, labels = by_hand(logits)
    outcome = ex.check_batch_classification(probs, labels[::-1], pipeline_like(logits))
    assert not outcome.correct and "labels[0]" in outcome.message


def test_batch_label_ids_instead_of_names(logits):
    probs, _ = by_hand(logits)
    outcome = ex.check_batch_classification(probs, probs.argmax(dim=-1).tolist(),
                                            pipeline_like(logits))
    assert not outcome.correct and "id2label" in outcome.hint


def test_batch_labels_wrong_length_and_none(logits):
    probs, labels = by_hand(logits)
    outcome = ex.check_batch_classification(probs, labels[:2], pipeline_like(logits))
    assert not outcome.correct and "2 entries" in outcome.message
    outcome = ex.check_batch_classification(probs, None, pipeline_like(logits))
    assert not outcome.correct and "labels is None" in outcome.message
    outcome = ex.check_batch_classification(probs, "POSITIVE", pipeline_like(logits))
    assert not outcome.correct and "str" in outcome.message


def test_batch_none_and_wrong_type(logits):
    reference = pipeline_like(logits)
    outcome = ex.check_batch_classification(None, ["POSITIVE"] * 3, reference)
    assert not outcome.correct and "probs is None" in outcome.message
    probs, labels = by_hand(logits)
    outcome = ex.check_batch_classification(probs.numpy(), labels, reference)
    assert not outcome.correct and "ndarray" in outcome.message
    outcome = ex.check_batch_classification(probs.tolist(), labels, reference)
    assert not outcome.correct and "list" in outcome.message


def test_batch_wrong_shape(logits):
    probs, labels = by_hand(logits)
    reference = pipeline_like(logits)
    for bad in (probs[0], probs[:2], probs.unsqueeze(0)):
        outcome = ex.check_batch_classification(bad, labels, reference)
        assert not outcome.correct and "shape" in outcome.message, bad.shape


def test_batch_nan(logits):
    probs, labels = by_hand(logits)
    probs[0, 0] = float("nan")
    assert not ex.check_batch_classification(probs, labels, pipeline_like(logits)).correct


def test_batch_exception_inside_learner_code(logits):
    outcome = ex.check_batch_classification(exploding((3, 2)), ["POSITIVE"] * 3,
                                            pipeline_like(logits))
    assert not outcome.correct and "RuntimeError" in outcome.message


def test_batch_with_the_real_pipeline_and_stand_in():
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    path = standins.build("sentiment")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    texts = ["Great fun.", "A slow and dull film that never gets going.", "Fine."]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = model(**batch).logits.softmax(dim=-1)
    labels = [model.config.id2label[i] for i in probs.argmax(dim=-1).tolist()]
    reference = pipeline("text-classification", model=str(path))(texts)
    assert ex.check_batch_classification(probs, labels, reference).correct
    model.train()  # dropout on: different numbers than the pipeline's
    torch.manual_seed(0)
    noisy = model(**batch).logits.softmax(dim=-1)
    assert not ex.check_batch_classification(noisy, labels, reference).correct


REVIEWS = ["The battery lasts two full days and the screen is gorgeous.",
           "It stopped working after a week and support never replied.",
           "Decent value for the price, though the speakers are tinny.",
           "Absolutely the best purchase I have made this year!"]


def test_batch_without_attention_mask_fails_on_the_stand_in():
    """Issue 14: the maskless batch passed offline (probability gap 7e-5 under a 1e-4 tolerance)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    path = standins.build("sentiment")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    batch = tokenizer(REVIEWS, padding=True, truncation=True, return_tensors="pt")
    assert not bool(batch["attention_mask"].all())  # the batch is padded
    with torch.no_grad():
        right = model(**batch).logits.softmax(dim=-1)
        maskless = model(input_ids=batch["input_ids"]).logits.softmax(dim=-1)
    labels = [model.config.id2label[i] for i in right.argmax(dim=-1).tolist()]
    reference = pipeline("text-classification", model=str(path))(REVIEWS)
    scores = torch.tensor([r["score"] for r in reference], dtype=torch.float64)
    right_gap = (right.double().max(-1).values.log() - scores.log()).abs().max().item()
    wrong_gap = (maskless.double().max(-1).values.log() - scores.log()).abs().max().item()
    assert right_gap < ex.LOGPROB_TOLERANCE / 10, right_gap
    assert wrong_gap > ex.LOGPROB_TOLERANCE * 3, wrong_gap
    assert ex.check_batch_classification(right, labels, reference).correct
    outcome = ex.check_batch_classification(maskless, labels, reference)
    assert not outcome.correct and "attention_mask" in outcome.hint, outcome


# ---- question 1 as a function: re-run under probes ---------------------------------------------

@pytest.fixture(scope="module")
def sentiment():
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = standins.build("sentiment")
    return (AutoModelForSequenceClassification.from_pretrained(path).eval(),
            AutoTokenizer.from_pretrained(path))


def classify_right(model, tokenizer, texts):
    batch = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(model.device)
    with torch.no_grad():
        probs = model(**batch).logits.softmax(dim=-1)
    return probs, [model.config.id2label[i] for i in probs.argmax(dim=-1).tolist()]


def classify_maskless(model, tokenizer, texts):
    batch = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        probs = model(input_ids=batch["input_ids"]).logits.softmax(dim=-1)
    return probs, [model.config.id2label[i] for i in probs.argmax(dim=-1).tolist()]


def classify_one_by_one(model, tokenizer, texts):
    with torch.no_grad():
        probs = torch.cat([model(**tokenizer([t], return_tensors="pt")).logits for t in texts]).softmax(-1)
    return probs, [model.config.id2label[i] for i in probs.argmax(dim=-1).tolist()]


def classify_with_pipeline(model, tokenizer, texts):
    from transformers import pipeline

    rows = pipeline("text-classification", model=model, tokenizer=tokenizer, top_k=None)(list(texts))
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    probs = torch.tensor([[next(d["score"] for d in row if d["label"] == n) for n in names] for row in rows])
    return probs, [names[i] for i in probs.argmax(dim=-1).tolist()]


def classify_typed_labels(model, tokenizer, texts):
    probs, _ = classify_right(model, tokenizer, texts)
    return probs, [{0: "NEGATIVE", 1: "POSITIVE"}[i] for i in probs.argmax(dim=-1).tolist()]


def test_classify_by_hand_right(sentiment):
    outcome = ex.check_classify_by_hand(classify_right, *sentiment)
    assert outcome.correct, outcome


@pytest.mark.parametrize("fn, words", [
    (classify_maskless, "attention_mask"), (classify_one_by_one, "ONE call"),
    (classify_with_pipeline, "pipeline"), (classify_typed_labels, "3-label variant"),
    (lambda model, tokenizer, texts: classify_right(model, tokenizer, texts)[0], "pair"),
    (None, "expected a function")])
def test_classify_by_hand_shortcuts_are_named(sentiment, fn, words):
    outcome = ex.check_classify_by_hand(fn, *sentiment)
    assert not outcome.correct and words in outcome.message + outcome.hint, outcome


def test_watch_pipelines_sees_the_existing_pipeline_and_its_steps(sentiment):
    from transformers import pipeline

    model, tokenizer = sentiment
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer)
    with ex.watch_pipelines() as calls:
        classify("Fine.")
    assert calls["call"] and calls["postprocess"]
    with ex.watch_pipelines() as calls:
        with torch.no_grad():
            classify.postprocess(classify._forward(classify.preprocess("Fine.")))
    assert calls["postprocess"] and calls["step"]
    with ex.watch_pipelines() as calls:
        classify_right(model, tokenizer, ["Fine."])
    assert not any(calls.values())


# ---- question 2: masked mean pooling ------------------------------------------------------------

def solution(hidden_states, attention_mask):
    weights = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
    return (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def loop_solution(hidden_states, attention_mask):
    return torch.stack([h[m.bool()].mean(dim=0) for h, m in zip(hidden_states, attention_mask)])


def test_pool_right():
    for fn in (solution, loop_solution):
        outcome = ex.check_mean_pool(fn)
        assert outcome.correct, (fn.__name__, outcome)


def test_pool_calling_the_course_pooling_is_refused():
    """The task says "without calling cu.pooling": the function itself and a wrapper both fail."""
    for fn in (ex.masked_mean_pool, lambda h, m: ex.masked_mean_pool(h, m)):
        outcome = ex.check_mean_pool(fn)
        assert not outcome.correct and "masked_mean_pool" in outcome.message, outcome


@pytest.mark.parametrize("fn,words", [
    (lambda h, m: h.mean(dim=1), "padding included"),
    (lambda h, m: (h * m.unsqueeze(-1)).sum(dim=1), "did not divide"),
    (lambda h, m: (h * m.unsqueeze(-1)).sum(dim=1) / h.shape[1], "padded length"),
    (lambda h, m: h[:, 0], "first token"),
    (lambda h, m: (h * m.unsqueeze(-1)).sum(dim=1) / (m.sum(dim=1, keepdim=True) + 1), "not the masked mean"),
])
def test_pool_wrong_values_are_named(fn, words):
    outcome = ex.check_mean_pool(fn)
    assert not outcome.correct and words in outcome.message, outcome


def test_pool_none_and_wrong_type():
    outcome = ex.check_mean_pool(None)
    assert not outcome.correct and "None" in outcome.message and "def mean_pool" in outcome.hint
    outcome = ex.check_mean_pool(torch.zeros(3, 4))
    assert not outcome.correct and "expected a function" in outcome.message


def test_pool_returns_wrong_type():
    outcome = ex.check_mean_pool(lambda h, m: None)
    assert not outcome.correct and "None" in outcome.message
    outcome = ex.check_mean_pool(lambda h, m: solution(h, m).numpy())
    assert not outcome.correct and "ndarray" in outcome.message
    outcome = ex.check_mean_pool(lambda h, m: solution(h, m).tolist())
    assert not outcome.correct and "list" in outcome.message


@pytest.mark.parametrize("fn,hint", [
    (lambda h, m: h * m.unsqueeze(-1), "nothing was reduced"),
    (lambda h, m: (h * m.unsqueeze(-1)).mean(dim=-1), "hidden axis"),
    (lambda h, m: solution(h, m).unsqueeze(1), "keepdim"),
    (lambda h, m: solution(h, m).mean(dim=0), "sequence axis"),
])
def test_pool_wrong_shape(fn, hint):
    outcome = ex.check_mean_pool(fn)
    assert not outcome.correct and "shape" in outcome.message and hint in outcome.hint, outcome


def test_pool_in_place_modification():
    def in_place(h, m):
        h *= m.unsqueeze(-1)
        return h.sum(dim=1) / m.sum(dim=1, keepdim=True)

    outcome = ex.check_mean_pool(in_place)
    assert not outcome.correct and "in place" in outcome.message


def test_pool_exception_inside_learner_code():
    def unfinished(h, m):
        raise NotImplementedError()

    outcome = ex.check_mean_pool(unfinished)  # the student version's placeholder, still in place
    assert not outcome.correct and outcome.message == "not answered yet"
    assert "NotImplementedError" in outcome.hint
    outcome = ex.check_mean_pool(lambda h, m: h * m)  # broadcasting error inside the learner's code
    assert not outcome.correct and "RuntimeError" in outcome.message


def test_self_check_never_raises_and_names_missing_variables(capsys):
    outcome = evaluate(ex.check_mean_pool, {}, "mean_pool")
    assert not outcome.correct and "not defined" in outcome.message
    report(ex.check_mean_pool, {"mean_pool": 3}, "mean_pool")  # displays, never raises
    assert "expected a function" in capsys.readouterr().out


# ---- question 3: which head (evidence first) ------------------------------------------------------

@pytest.fixture(scope="module")
def bert_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(standins.build("sentiment"))


def output_shape(head_class, config, inputs):
    model = head_class.from_config(config).eval()
    with torch.no_grad():
        return tuple(model(**inputs)[0].shape)


def test_expected_output_shape_matches_real_models(bert_tokenizer):
    import transformers

    inputs = bert_tokenizer(["One sentence here.", "A second, longer sentence is here."], padding=True,
                            return_tensors="pt")
    for option in ex.HEAD_OPTIONS:
        for labels in (3, 7):
            config = ex.config_for(option, labels)
            assert output_shape(getattr(transformers, option), config, inputs) == \
                ex.expected_output_shape(option, config, inputs["input_ids"]), (option, labels)


def test_head_right_in_several_spellings(bert_tokenizer):
    import transformers

    for answer in ["AutoModelForTokenClassification", " automodelfortokenclassification ",
                   '"AutoModelForTokenClassification"', transformers.AutoModelForTokenClassification]:
        assert ex.check_head_choice(output_shape, answer, bert_tokenizer).correct, answer


def test_head_answer_is_an_option():
    assert ex.HEAD_ANSWER in ex.HEAD_OPTIONS


@pytest.mark.parametrize("option", [o for o in ex.HEAD_OPTIONS if o != ex.HEAD_ANSWER])
def test_head_every_wrong_option_says_why(option, bert_tokenizer):
    outcome = ex.check_head_choice(output_shape, option, bert_tokenizer)
    assert not outcome.correct and outcome.hint and "does not follow" in outcome.message


def test_head_wrong_messages_differ(bert_tokenizer):
    messages = {ex.check_head_choice(output_shape, o, bert_tokenizer).message
                for o in ex.HEAD_OPTIONS if o != ex.HEAD_ANSWER}
    assert len(messages) == len(ex.HEAD_OPTIONS) - 1


def test_head_unknown_none_wrong_type_and_several(bert_tokenizer):
    outcome = ex.check_head_choice(output_shape, "BertForTokenClassification", bert_tokenizer)
    assert not outcome.correct and "not one of the options" in outcome.message
    assert not ex.check_head_choice(output_shape, None, bert_tokenizer).correct
    outcome = ex.check_head_choice(output_shape, 3, bert_tokenizer)
    assert not outcome.correct and "int" in outcome.message
    outcome = ex.check_head_choice(output_shape, ["AutoModelForTokenClassification", "AutoModel"],
                                   bert_tokenizer)
    assert not outcome.correct and "exactly one" in outcome.message


def test_head_exception_inside_learner_code(bert_tokenizer):
    class Weird(str):
        def strip(self, *args):
            raise ValueError("learner's str subclass")

    outcome = ex.check_head_choice(output_shape, Weird("AutoModel"), bert_tokenizer)
    assert not outcome.correct and "ValueError" in outcome.message


def from_checkpoint(head_class, config, inputs):  # ignores the config: the checkpoint's own 2 labels
    model = head_class.from_pretrained(standins.build("sentiment"))
    return tuple(model(**inputs)[0].shape)


def typed_table(head_class, config, inputs):  # right for every 3-label case: the visible ones, typed in
    name = head_class.__name__
    return ex.expected_output_shape(name, ex.config_for(name, 3), inputs["input_ids"])


@pytest.mark.parametrize("evidence, words", [
    (lambda head_class, config, inputs: (1, 10, 3), "expected"),
    (lambda head_class, config, inputs: tuple(inputs["input_ids"].shape), "shape of the input ids"),
    (from_checkpoint, "checkpoint's own model"),
    (typed_table, "type a constant"),
    (lambda head_class, config, inputs: head_class.from_config(config)(**inputs)[0], "not its shape"),
    (None, "expected a function"),
])
def test_wrong_evidence_is_named_and_the_choice_is_not_judged(evidence, words, bert_tokenizer):
    for option in ex.HEAD_OPTIONS:
        outcome = ex.check_head_choice(evidence, option, bert_tokenizer)
        assert not outcome.correct and words in outcome.message + outcome.hint, outcome
        assert "choice" not in outcome.message, outcome


def test_head_choice_widget_text_mode(monkeypatch, capsys, bert_tokenizer):
    from course_utils import widgets

    monkeypatch.setenv("COURSE_WIDGETS", "text")
    widgets.choice_question(lambda answer: ex.check_head_choice(None, answer, bert_tokenizer),
                            ex.HEAD_QUESTION, ex.HEAD_OPTIONS)
    printed = capsys.readouterr().out
    assert ex.HEAD_QUESTION in printed and all(o in printed for o in ex.HEAD_OPTIONS)


# ---- question 4: parameters of the head ---------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_classifier():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=3)
    return BertForSequenceClassification(config)


@pytest.fixture(scope="module")
def tiny_distilbert():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
    return DistilBertForSequenceClassification(config)


def test_head_parameter_count_independent_formula(tiny_classifier, tiny_distilbert):
    assert ex.head_parameter_count(tiny_classifier) == 16 * 3 + 3
    assert ex.head_parameter_count(tiny_distilbert) == (16 * 16 + 16) + (16 * 2 + 2)


def test_params_right(tiny_classifier, tiny_distilbert):
    for model in (tiny_classifier, tiny_distilbert):
        count = model.num_parameters() - model.base_model.num_parameters()
        outcome = ex.check_head_params(count, model)
        assert outcome.correct, outcome
        assert ex.check_head_params(np.int64(count), model).correct
        assert ex.check_head_params(torch.tensor(count), model).correct
        assert ex.check_head_params(float(count), model).correct


def test_params_wrong_named(tiny_classifier, tiny_distilbert):
    total = tiny_classifier.num_parameters()
    outcome = ex.check_head_params(total, tiny_classifier)
    assert not outcome.correct and "whole model" in outcome.message
    outcome = ex.check_head_params(tiny_classifier.base_model.num_parameters(), tiny_classifier)
    assert not outcome.correct and "body" in outcome.message
    last_only = sum(p.numel() for p in tiny_distilbert.classifier.parameters())
    outcome = ex.check_head_params(last_only, tiny_distilbert)
    assert not outcome.correct and "final layer" in outcome.message
    outcome = ex.check_head_params(12, tiny_classifier)
    assert not outcome.correct and "not the number" in outcome.message


def test_params_none_and_wrong_types(tiny_classifier):
    assert "None" in ex.check_head_params(None, tiny_classifier).message
    for bad, word in [("51", "str"), (51.5, "float"), (True, "bool")]:
        outcome = ex.check_head_params(bad, tiny_classifier)
        assert not outcome.correct and word in outcome.message, bad


def test_params_wrong_shape(tiny_classifier):
    outcome = ex.check_head_params(torch.tensor([48, 3]), tiny_classifier)
    assert not outcome.correct and "shape" in outcome.message and "sum" in outcome.hint


def test_params_exception_inside_learner_code(tiny_classifier):
    class Angry(int):
        def __int__(self):
            raise TypeError("learner's int subclass")

    outcome = ex.check_head_params(Angry(51), tiny_classifier)
    assert not outcome.correct and "TypeError" in outcome.message


# ---- explorer: sentence similarity -------------------------------------------------------------

@pytest.fixture(scope="module")
def minilm():
    from transformers import AutoModel, AutoTokenizer

    path = standins.minilm_dir()
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


TEXT = """A man is playing a guitar.
Someone is strumming a guitar.

The stock market fell sharply today.
Share prices dropped a lot this morning, as investors feared higher interest rates."""


def test_similarity_table(minilm):
    table = ex.sentence_similarity(TEXT, *minilm)
    assert isinstance(table, pd.DataFrame) and table.shape == (4, 4)  # the blank line is skipped
    values = table.to_numpy()
    np.testing.assert_allclose(np.diag(values), 1.0, atol=1e-3)
    np.testing.assert_allclose(values, values.T, atol=1e-6)
    assert values.min() >= -1 and values.max() <= 1
    assert table.index[0].startswith("1. A man") and list(table.columns) == ["1", "2", "3", "4"]
    # the real model: each paraphrase pair beats every unrelated pair
    assert min(values[0, 1], values[2, 3]) > max(values[0, 2], values[0, 3], values[1, 2], values[1, 3])


def test_similarity_list_input_and_long_names(minilm):
    long = "This sentence is much longer than the width of a table row label."
    table = ex.sentence_similarity(["Short.", long], *minilm)
    assert table.shape == (2, 2) and table.index[1].endswith("…") and len(table.index[1]) < 40


def test_similarity_does_not_depend_on_the_other_sentences(minilm):
    alone = ex.embed_sentences(["A cat sleeps."], *minilm)
    padded = ex.embed_sentences(["A cat sleeps.", TEXT.splitlines()[-1]], *minilm)
    torch.testing.assert_close(alone[0], padded[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(padded.norm(dim=-1), torch.ones(2))


@pytest.mark.parametrize("text", ["", "only one sentence", "\n  \n", []])
def test_similarity_needs_two_sentences(minilm, text):
    outcome = ex.sentence_similarity(text, *minilm)
    assert isinstance(outcome, str) and "two sentences" in outcome


def test_similarity_heatmap_draws_every_cell(minilm):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = ex.sentence_similarity(TEXT, *minilm)
    ax = ex.similarity_heatmap(table)
    assert len(ax.texts) == 16 and [t.get_text() for t in ax.get_xticklabels()] == list(table.columns)
    plt.close(ax.figure)


def test_similarity_explorer_text_fallback(minilm, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_WIDGETS", "text")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    model, tokenizer = minilm
    run = functools.partial(ex.sentence_similarity, model=model, tokenizer=tokenizer)
    import ipywidgets as w

    widgets.explorer(run, {"text": w.Textarea(value="Hello there.\nHi!")}, plot=ex.similarity_heatmap)
    printed = capsys.readouterr().out
    assert "1. Hello there." in printed and "2. Hi!" in printed


def test_head_counter_rejects_a_typed_constant(tiny_classifier):
    """Issue 14: a typed constant passed; the checker now runs the function on other label counts."""
    def count(model):
        return model.num_parameters() - model.base_model.num_parameters()

    assert ex.check_head_counter(count, tiny_classifier).correct
    constant = count(tiny_classifier)
    outcome = ex.check_head_counter(lambda model: constant, tiny_classifier)
    assert not outcome.correct and "constant" in outcome.message, outcome
    assert "function" in ex.check_head_counter(constant, tiny_classifier).message


# ---- question 5: predict, then verify -------------------------------------------------------------

REASON = "a new head starts with small random weights so its logits are close to zero"


@pytest.fixture(scope="module")
def untrained():
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from course_utils import registry

    path = registry.checkpoint("features", announce=False)
    torch.manual_seed(0)
    return (AutoModelForSequenceClassification.from_pretrained(path, num_labels=3).eval(),
            AutoTokenizer.from_pretrained(path))


def test_prediction_graded_for_a_reason_not_for_being_right():
    for option in ("A", "B", "C) the probabilities are spread over [0, 1] and change a lot from sentence "
                   "to sentence"):
        assert ex.check_prediction(option, REASON).correct
    assert "at least" in ex.check_prediction("B", "small weights").message
    assert "placeholder" in ex.check_prediction("B", "YOUR ANSWER HERE").message
    assert not ex.check_prediction("D", REASON).correct
    assert not ex.check_prediction(None, REASON).correct


def test_record_prediction_prints_a_receipt(capsys):
    receipt = ex.record_prediction("b", REASON)
    assert isinstance(receipt, ex.PredictionReceipt) and receipt.choice == ex.PREDICTION_OPTIONS[1]
    assert "recorded at" in capsys.readouterr().out
    assert ex.record_prediction("B", "too short") is None


def test_verification_right_says_whether_the_prediction_held(untrained):
    model, tokenizer = untrained
    probs = ex.untrained_probabilities(model, tokenizer)
    assert (probs - 1 / 3).abs().max().item() < ex.NEAR_UNIFORM  # the fact the question is about
    right = ex.check_untrained_probs(probs, model, tokenizer, ex.record_prediction("B", REASON), "B", REASON)
    assert right.correct and "your prediction was right" in right.message
    wrong = ex.check_untrained_probs(probs, model, tokenizer, ex.record_prediction("A", REASON), "A", REASON)
    assert wrong.correct and "recorded prediction was A)" in wrong.message  # verification still counts


def test_verification_needs_a_recorded_unedited_prediction_and_the_measurement(untrained):
    model, tokenizer = untrained
    probs = ex.untrained_probabilities(model, tokenizer)
    receipt = ex.record_prediction("A", REASON)
    outcome = ex.check_untrained_probs(probs, model, tokenizer, None, "A", REASON)
    assert not outcome.correct and "no prediction is recorded" in outcome.message
    outcome = ex.check_untrained_probs(probs, model, tokenizer, receipt, "B", REASON)  # edited after
    assert not outcome.correct and "changed after" in outcome.message
    typed = torch.full((4, 3), 1 / 3)  # the prediction typed in, not measured
    outcome = ex.check_untrained_probs(typed, model, tokenizer, receipt, "A", REASON)
    assert not outcome.correct and "log gap" in outcome.message
    outcome = ex.check_untrained_probs(probs[:2], model, tokenizer, receipt, "A", REASON)
    assert not outcome.correct and "shape" in outcome.message
    batch = tokenizer(list(ex.UNTRAINED_SENTENCES), padding=True, return_tensors="pt")
    with torch.no_grad():
        maskless = model(input_ids=batch["input_ids"]).logits.softmax(-1)
    outcome = ex.check_untrained_probs(maskless, model, tokenizer, receipt, "A", REASON)
    assert not outcome.correct and "attention mask" in outcome.hint
