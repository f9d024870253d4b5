"""Unit tests of lesson 02's checkers and explorer: right, wrong, None, wrong type, learner errors."""

from __future__ import annotations

from collections import UserDict

import numpy as np
import pandas as pd
import pytest
import torch

from course_utils.exercises import l02_tokenization as ex
from course_utils.feedback import Feedback


@pytest.fixture(scope="module")
def bert():
    return ex.tokenizer_for("sentiment")


def batch_of(bert, **kwargs):
    options = dict(padding="max_length", truncation=True, max_length=ex.BATCH_LENGTH,
                   return_tensors="pt")
    options.update(kwargs)
    return bert(list(ex.BATCH_SENTENCES), **options)


def span_solution(encoding, text, index):
    start, end = encoding["offset_mapping"][index]
    return text[start:end]


# ---- question 1: the padded, truncated batch -------------------------------------------------

def test_padded_batch_right(bert):
    outcome = ex.check_padded_batch(batch_of(bert))
    assert isinstance(outcome, Feedback) and outcome.correct, outcome
    assert str(ex.BATCH_LENGTH) in outcome.message


def test_padded_batch_plain_dict_of_tensors_is_fine(bert):
    batch = batch_of(bert)
    assert ex.check_padded_batch({k: v.clone() for k, v in batch.items()}).correct


def test_padded_batch_not_truncated(bert):
    outcome = ex.check_padded_batch(bert(list(ex.BATCH_SENTENCES), padding=True,
                                         return_tensors="pt"))
    assert not outcome.correct
    assert "longer" in outcome.message and "truncation=True" in outcome.hint


def test_padded_batch_too_short_says_max_length(bert):
    outcome = ex.check_padded_batch(batch_of(bert, max_length=8))
    assert not outcome.correct
    outcome = ex.check_padded_batch(bert(list(ex.BATCH_SENTENCES[:2]), padding=True,
                                         return_tensors="pt"))
    assert not outcome.correct and "rows" in outcome.message
    short = {k: v[:, :7] for k, v in batch_of(bert).items()}
    outcome = ex.check_padded_batch(short)
    assert not outcome.correct and "max_length" in outcome.hint


def test_padded_batch_lists_and_numpy(bert):
    outcome = ex.check_padded_batch(batch_of(bert, return_tensors=None))
    assert not outcome.correct and "list" in outcome.message
    outcome = ex.check_padded_batch(batch_of(bert, return_tensors="np"))
    assert not outcome.correct and "NumPy" in outcome.message


def test_padded_batch_left_padding(bert):
    outcome = ex.check_padded_batch(batch_of(bert, padding_side="left"))
    assert not outcome.correct and "left" in outcome.message


def test_padded_batch_without_special_tokens(bert):
    outcome = ex.check_padded_batch(batch_of(bert, add_special_tokens=False))
    assert not outcome.correct and "[CLS]" in outcome.message


def test_padded_batch_other_ids(bert):
    batch = {k: v.clone() for k, v in batch_of(bert).items()}
    batch["input_ids"][1, 2] = 7592
    outcome = ex.check_padded_batch(batch)
    assert not outcome.correct and "row 1" in outcome.message and "position 2" in outcome.message


def test_padded_batch_bad_mask(bert):
    batch = {k: v.clone() for k, v in batch_of(bert).items()}
    batch["attention_mask"] = torch.ones_like(batch["attention_mask"])
    outcome = ex.check_padded_batch(batch)
    assert not outcome.correct and "attention_mask" in outcome.message
    del batch["attention_mask"]
    assert "attention_mask" in ex.check_padded_batch(batch).message


def test_padded_batch_none_and_wrong_type(bert):
    assert "None" in ex.check_padded_batch(None).message
    outcome = ex.check_padded_batch(batch_of(bert)["input_ids"])
    assert not outcome.correct and "Tensor" in outcome.message
    assert not ex.check_padded_batch("a batch").correct


def test_padded_batch_exception_inside_learner_object():
    class Broken(UserDict):
        def __getitem__(self, key):
            raise RuntimeError("boom")

    outcome = ex.check_padded_batch(Broken(input_ids=1, attention_mask=1))
    assert not outcome.correct and "RuntimeError: boom" in outcome.message


# ---- question 2: token spans from offsets ----------------------------------------------------

def test_token_span_right():
    outcome = ex.check_token_span(span_solution)
    assert outcome.correct, outcome
    assert "Face" in outcome.message


def test_token_span_returns_the_token():
    outcome = ex.check_token_span(lambda encoding, text, index: encoding.tokens()[index])
    assert not outcome.correct
    assert "(0, 0)" in outcome.hint  # the first token checked is [CLS]

    def no_specials(encoding, text, index):
        start, end = encoding["offset_mapping"][index]
        return encoding.tokens()[index] if end > start else ""

    outcome = ex.check_token_span(no_specials)
    assert not outcome.correct and "token itself" in outcome.hint


def test_token_span_off_by_one():
    def off(encoding, text, index):
        start, end = encoding["offset_mapping"][index]
        return text[start:end + 1] if end > start else ""

    outcome = ex.check_token_span(off)
    assert not outcome.correct and "expected" in outcome.message


def test_token_span_none_wrong_type_and_wrong_return():
    assert "None" in ex.check_token_span(None).message
    outcome = ex.check_token_span("text[start:end]")
    assert not outcome.correct and "str" in outcome.message and "function" in outcome.message
    outcome = ex.check_token_span(lambda encoding, text, index: encoding["offset_mapping"][index])
    assert not outcome.correct and "tuple" in outcome.message


def test_token_span_exception_inside_learner_code():
    def broken(encoding, text, index):
        return text[encoding["offsets"][index][0]:]

    outcome = ex.check_token_span(broken)
    assert not outcome.correct and "KeyError" in outcome.message and "token 0" in outcome.message


# ---- question 3: what add_tokens does --------------------------------------------------------

def test_added_tokens_facts_are_measured(bert):
    facts = ex.added_token_facts()
    assert facts["old_len"] == len(bert)  # the cached tokenizer itself stays unchanged
    assert facts["new_len"] - facts["old_len"] < facts["returned"] == len(ex.ADDED_WORDS)
    assert facts["lakers_id"] >= facts["old_len"] > facts["vocab_lakers_id"]


def test_added_tokens_right():
    facts = ex.added_token_facts()
    outcome = ex.check_added_tokens(facts["new_len"], facts["lakers_id"])
    assert outcome.correct, outcome
    assert ex.check_added_tokens(np.int64(facts["new_len"]), facts["lakers_id"]).correct


def test_added_tokens_wrong_answers():
    facts = ex.added_token_facts()
    trusting = ex.check_added_tokens(facts["old_len"] + facts["returned"], facts["lakers_id"])
    assert not trusting.correct and "return value" in trusting.message
    before = ex.check_added_tokens(facts["old_len"], facts["lakers_id"])
    assert not before.correct and "vocab_size" in before.hint
    other = ex.check_added_tokens(facts["new_len"] + 7, facts["lakers_id"])
    assert not other.correct and "fresh" in other.hint
    vocab = ex.check_added_tokens(facts["new_len"], facts["vocab_lakers_id"])
    assert not vocab.correct and "original vocabulary" in vocab.message
    off = ex.check_added_tokens(facts["new_len"], facts["lakers_id"] - 1)
    assert not off.correct and "lakers_id" in off.message


def test_added_tokens_none_and_wrong_types():
    facts = ex.added_token_facts()
    assert "None" in ex.check_added_tokens(None, facts["lakers_id"]).message
    assert "None" in ex.check_added_tokens(facts["new_len"], None).message
    assert "str" in ex.check_added_tokens(str(facts["new_len"]), facts["lakers_id"]).message
    assert "bool" in ex.check_added_tokens(True, facts["lakers_id"]).message
    as_tensor = ex.check_added_tokens(facts["new_len"], torch.tensor(facts["lakers_id"]))
    assert not as_tensor.correct and ".item()" in as_tensor.hint


def test_added_tokens_exception_inside_learner_value():
    class Weird(int):
        def __int__(self):
            raise ValueError("cannot convert")

    outcome = ex.check_added_tokens(Weird(5), 5)
    assert not outcome.correct and "ValueError" in outcome.message


# ---- question 4: which family is lossless (evidence first) --------------------------------------

def round_trip(tokenizer, text):
    return tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True)


def test_unseen_text_is_new_each_call_and_has_an_emoji():
    texts = {ex.unseen_text() for _ in range(20)}
    assert len(texts) > 10
    assert all(any(ord(ch) >= 0x1F600 for ch in text) for text in texts)


def test_round_trip_evidence_right_and_what_it_shows():
    outcome = ex.check_round_trip(round_trip)
    assert outcome.correct, outcome
    exact = ex.check_round_trips(round_trip)
    assert exact == {"WordPiece (BERT)": False, "byte-level BPE (GPT-2)": True, "unigram (T5)": False}


def test_lossless_family_right_with_evidence():
    outcome = ex.check_lossless_family(round_trip, "byte-level BPE (GPT-2)")
    assert outcome.correct, outcome
    assert ex.check_lossless_family(round_trip, "  Byte-Level BPE (GPT-2) ").correct
    assert "whole word" in outcome.message  # WordPiece: the word, not the character (issue 14)


@pytest.mark.parametrize("answer, words", [("WordPiece (BERT)", "does not follow"),
                                           ("unigram (T5)", "does not follow"),
                                           ("SentencePiece", "not one of")])
def test_lossless_family_wrong_choice_after_right_evidence(answer, words):
    outcome = ex.check_lossless_family(round_trip, answer)
    assert not outcome.correct and words in outcome.message


def identity(tokenizer, text):
    return text


def with_specials(tokenizer, text):
    return tokenizer.decode(tokenizer(text)["input_ids"])


def joined_tokens(tokenizer, text):
    return " ".join(tokenizer.tokenize(text))


def typed_table(tokenizer, text):  # the visible texts' answers typed in, for every family
    return {t: round_trip(tokenizer, t) for t in ex.SPELL_TEXTS}[text]


@pytest.mark.parametrize("evidence, words", [
    (identity, "text itself"), (with_specials, "skip_special_tokens"), (joined_tokens, "joined the tokens"),
    (typed_table, "KeyError"), (lambda tokenizer, text: ["snow"], "expected a str"),
    (None, "expected a function"), (3, "expected a function")])
def test_wrong_evidence_is_named_and_the_choice_is_not_judged(evidence, words):
    for answer in ex.FAMILY_OPTIONS:
        outcome = ex.check_lossless_family(evidence, answer)
        assert not outcome.correct and words in outcome.message + outcome.hint, outcome
        assert "choice" not in outcome.message, outcome  # nothing about the choice yet


def test_lossless_family_none_wrong_type_and_learner_error():
    assert "None" in ex.check_lossless_family(round_trip, None).message
    assert "int" in ex.check_lossless_family(round_trip, 2).message

    class Shouting(str):
        def strip(self, *args):
            raise RuntimeError("no stripping")

    outcome = ex.check_lossless_family(round_trip, Shouting("unigram (T5)"))
    assert not outcome.correct and "RuntimeError" in outcome.message

    def broken(tokenizer, text):
        raise ValueError("learner bug")

    outcome = ex.check_lossless_family(broken, "byte-level BPE (GPT-2)")
    assert not outcome.correct and "ValueError: learner bug" in outcome.message


def test_round_trip_cannot_damage_the_cached_tokenizers():
    def vandal(tokenizer, text):
        tokenizer.add_tokens(["zzqxword"])
        return round_trip(tokenizer, text)

    ex.check_lossless_family(vandal, "byte-level BPE (GPT-2)")
    assert len(ex.tokenizer_for("sentiment")) == ex.tokenizer_for("sentiment").vocab_size


# ---- the explorer -----------------------------------------------------------------------------

@pytest.mark.parametrize("role", ex.ROLES)
def test_explore_tokens_every_role(role):
    text = "HuggingFace rocks!"
    table = ex.explore_tokens(text, role)
    assert isinstance(table, pd.DataFrame) and len(table) > 0
    tokenizer = ex.tokenizer_for(role)
    assert table["id"].tolist() == tokenizer(text)["input_ids"]
    covered = table[~table["special"]]
    assert "".join(covered["text"]).replace(" ", "") == text.replace(" ", "")


def test_explore_tokens_unknown_role():
    with pytest.raises(ValueError, match="role"):
        ex.explore_tokens("hi", "fill-mask")


def test_explorer_widget_drives_the_function_for_every_role():
    import ipywidgets as w

    from course_utils import widgets

    calls = []

    def spy(text, role):
        calls.append(role)
        return ex.explore_tokens(text, role)

    role = w.Dropdown(options=list(ex.ROLES), value="sentiment")
    widgets.build_explorer(spy, {"text": w.Text(value="Go Lakers!"), "role": role})
    for name in ex.ROLES[1:]:
        role.value = name
    assert calls == list(ex.ROLES)
    assert "lakers" in ex.explore_tokens("Go Lakers!", "sentiment")["token"].tolist()
