"""Checkers and the token explorer of lesson 02 (tokenization).

Every checker computes its reference answer with the course's own sentiment tokenizer (the real
BERT-uncased vocabulary in both tiers), so the learner's variables cannot change what is expected.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..feedback import (Feedback, a_type, describe_error, expect_callable, expect_int,
                        expect_tensor, expect_type, fail, guarded, match_choice, right)
from ..tokens import token_table

ROLES = ("sentiment", "generation", "t5")

# Question 1: one batch, every row exactly BATCH_LENGTH tokens.
BATCH_SENTENCES = (
    "Tokenizers turn text into numbers.",
    "Short one.",
    "This sentence is far too long to fit into the ten tokens that every row of the batch is allowed.",
)
BATCH_LENGTH = 10

# Question 2: texts whose every token the learner's token_span must map back to the text.
SPAN_TEXTS = ("HuggingFace rocks!", "I've been waiting.", "Café au lait, please")

# Question 3: words added to a fresh tokenizer, and the sentence whose ids are asked for.
ADDED_WORDS = ("huggingface", "hello", "Lakers")
PROBE = "Go Lakers!"


@functools.lru_cache(maxsize=None)
def tokenizer_for(role: str) -> Any:
    """The tokenizer of registry role `role` (sentiment, generation or t5), loaded once."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    from transformers import AutoTokenizer

    from ..registry import checkpoint

    return AutoTokenizer.from_pretrained(checkpoint(role, announce=False), trust_remote_code=False)


def explore_tokens(text: str, role: str = "sentiment") -> pd.DataFrame:
    """The explorer's view: the token table of `text` under the tokenizer of `role`."""
    return token_table(tokenizer_for(role), text)


def reference_batch(length: int = BATCH_LENGTH) -> Any:
    """The batch question 1 asks for, built with the course's sentiment tokenizer."""
    return tokenizer_for("sentiment")(list(BATCH_SENTENCES), padding="max_length", truncation=True,
                                      max_length=length, return_tensors="pt")


def _batch_tensor(value: Any, name: str) -> Any:
    """`value` if it is a torch tensor; a NumPy array or a list fails with the tokenizer's fix."""
    import numpy as np

    if isinstance(value, np.ndarray):
        fail(f"{name} is a NumPy array", "ask the tokenizer for PyTorch tensors: return_tensors='pt'")
    if isinstance(value, list):
        fail(f"{name} is a Python list", "without return_tensors the tokenizer returns lists; pass "
             "return_tensors='pt'")
    return expect_tensor(value, name)


@guarded
def check_padded_batch(batch: Any) -> Feedback:
    """Question 1: BATCH_SENTENCES as tensors, padded and truncated to BATCH_LENGTH tokens each."""
    expect_type(batch, Mapping, "batch", hint="keep the whole result of tokenizer(...), a "
                "BatchEncoding (dict-like), not only its input_ids")
    missing = [key for key in ("input_ids", "attention_mask") if key not in batch]
    if missing:
        fail(f"batch has no {' and no '.join(missing)}",
             "call the tokenizer on the sentences and keep everything it returns")
    ids = _batch_tensor(batch["input_ids"], "batch['input_ids']")
    rows, length = len(BATCH_SENTENCES), BATCH_LENGTH
    if ids.dim() != 2:
        fail(f"input_ids has {ids.dim()} dimension(s), expected 2 (sentences × tokens)",
             "pass the list of all sentences in one call")
    if ids.shape[0] != rows:
        fail(f"input_ids has {ids.shape[0]} rows, expected {rows}: one per sentence",
             "tokenize SENTENCES, all of them, in one call")
    if ids.shape[1] > length:
        fail(f"rows are {ids.shape[1]} tokens long, longer than {length}",
             f"cut long sentences: truncation=True, max_length={length}")
    if ids.shape[1] < length:
        fail(f"rows are {ids.shape[1]} tokens long, shorter than {length}",
             f"padding=True pads only to the longest row; padding='max_length' with "
             f"max_length={length} pads every row to exactly that length")
    expected = reference_batch(length)
    tokenizer = tokenizer_for("sentiment")
    if not bool((ids == expected["input_ids"]).all()):
        left = tokenizer(list(BATCH_SENTENCES), padding="max_length", truncation=True,
                         max_length=length, padding_side="left", return_tensors="pt")
        if bool((ids == left["input_ids"]).all()):
            fail("the rows are padded on the left",
                 "BERT models are padded on the right (the tokenizer's default); "
                 "leave padding_side alone")
        if not bool((ids[:, 0] == tokenizer.cls_token_id).all()):
            fail("the rows do not start with [CLS]",
                 "let the tokenizer add its special tokens (no add_special_tokens=False)")
        row = next(r for r in range(rows) if not bool((ids[r] == expected["input_ids"][r]).all()))
        col = next(c for c in range(length) if ids[row, c] != expected["input_ids"][row, c])
        fail(f"row {row} differs from the tokenizer's output at position {col}: "
             f"got {int(ids[row, col])}, expected {int(expected['input_ids'][row, col])}",
             "use the lesson's sentiment tokenizer on SENTENCES, unchanged")
    mask = _batch_tensor(batch["attention_mask"], "batch['attention_mask']")
    if tuple(mask.shape) != tuple(ids.shape) or not bool((mask == expected["attention_mask"]).all()):
        fail("the input_ids are right but the attention_mask does not match them",
             "keep the attention_mask the tokenizer made: 1 for real tokens, 0 for padding")
    pads = int((mask == 0).sum())
    return right(f"{rows} rows of exactly {length} tokens: the long sentence is cut (and still "
                 f"ends with [SEP]), the short ones carry {pads} [PAD] tokens, masked with 0")


def _span_cases() -> list[tuple[Any, str, str]]:
    """(tokenizer, text, role) for every text question 2 checks, over two tokenizer families."""
    return [(tokenizer_for(role), text, role) for role in ("sentiment", "generation")
            for text in SPAN_TEXTS]


@guarded
def check_token_span(token_span: Any) -> Feedback:
    """Question 2: token_span(encoding, text, index) returns the text that token `index` covers."""
    expect_callable(token_span, "token_span", "token_span(encoding, text, index)")
    checked = 0
    for tokenizer, text, role in _span_cases():
        encoding = tokenizer(text, return_offsets_mapping=True)
        tokens = encoding.tokens()
        for index, (start, end) in enumerate(encoding["offset_mapping"]):
            expected = text[start:end]
            where = f"token {index} ({tokens[index]!r}) of {text!r} ({role} tokenizer)"
            try:
                got = token_span(encoding, text, index)
            except Exception as err:  # the learner's function failed on this case
                fail(f"token_span raised {describe_error(err)} on {where}",
                     "read the span from encoding['offset_mapping'][index]")
            if not isinstance(got, str):
                fail(f"token_span returned {a_type(got)} for {where}, expected a str",
                     "return the slice text[start:end]")
            if got != expected:
                hint = "slice the original text with the token's offsets: text[start:end]"
                if start == end:
                    hint = "special tokens have offsets (0, 0): they cover no text, return ''"
                elif got == tokens[index]:
                    hint = ("you returned the token itself; the question asks for the original "
                            "text it came from (case, accents and all)")
                fail(f"for {where} you returned {got!r}, expected {expected!r}", hint)
            checked += 1
    return right(f"all {checked} tokens of {len(SPAN_TEXTS)} texts map back to their text, in two "
                 "tokenizer families: special tokens give '', '##face' gives 'Face'")


def added_token_facts() -> dict[str, int]:
    """What question 3 asks, measured on a fresh copy of the sentiment tokenizer."""
    fresh = copy.deepcopy(tokenizer_for("sentiment"))
    old_len = len(fresh)
    returned = fresh.add_tokens(list(ADDED_WORDS))
    encoding = fresh(PROBE)
    position = encoding.tokens().index("lakers")
    return {"old_len": old_len, "returned": returned, "new_len": len(fresh),
            "lakers_id": encoding["input_ids"][position],
            "vocab_lakers_id": fresh.convert_tokens_to_ids("lakers")}


@guarded
def check_added_tokens(new_len: Any, lakers_id: Any) -> Feedback:
    """Question 3: len(tokenizer) after adding ADDED_WORDS, and the id "Lakers" gets in PROBE."""
    # allow_tensor=False: the hidden tests check isinstance(..., int)
    new_len = expect_int(new_len, "new_len", allow_tensor=False)
    lakers_id = expect_int(lakers_id, "lakers_id", allow_tensor=False)
    facts = added_token_facts()
    if new_len != facts["new_len"]:
        if new_len == facts["old_len"] + facts["returned"]:
            fail(f"new_len = {new_len} trusts add_tokens' return value ({facts['returned']})",
                 "a word already in the vocabulary gets no new id even though add_tokens "
                 "counts it; measure len(tokenizer) after adding")
        if new_len == facts["old_len"]:
            fail(f"new_len = {new_len} is the size before adding",
                 "tokenizer.vocab_size ignores added tokens; len(tokenizer) counts them "
                 "(and add to a fresh tokenizer)")
        fail(f"new_len = {new_len} is not the length after adding {list(ADDED_WORDS)}",
             "load a fresh tokenizer, add the three words once, then take len(tokenizer)")
    if lakers_id != facts["lakers_id"]:
        if lakers_id == facts["vocab_lakers_id"]:
            fail(f"{lakers_id} is the id 'lakers' has in the original vocabulary",
                 "the added token 'Lakers' is lower-cased like the text and now wins; "
                 "call the tokenizer on the sentence rather than convert_tokens_to_ids")
        fail(f"lakers_id = {lakers_id} is not the id 'Lakers' gets in {PROBE!r}",
             f"look at tokenizer({PROBE!r})['input_ids'] on the extended tokenizer")
    return right(f"len(tokenizer) grew by {facts['new_len'] - facts['old_len']}, not "
                 f"{facts['returned']}: 'hello' was already a word; 'Lakers' got the new id "
                 f"{lakers_id} and now shadows the trained 'lakers' ({facts['vocab_lakers_id']})")


FAMILY_OPTIONS = ("WordPiece (BERT)", "byte-level BPE (GPT-2)", "unigram (T5)")
_FAMILY_WHY = {
    "WordPiece (BERT)": "WordPiece turns a character it has never seen into [UNK], and the "
                        "character is gone for good",
    "unigram (T5)": "T5's unigram vocabulary maps a character it has never seen to <unk>",
}


@guarded
def check_lossless_family(answer: Any) -> Feedback:
    """Question 4: which family can spell any text, so that decode gives it back exactly."""
    choice = match_choice(answer, FAMILY_OPTIONS)
    if choice in _FAMILY_WHY:
        fail(_FAMILY_WHY[choice], "which family falls back to the bytes of a character?")
    return right("byte-level BPE falls back to a character's UTF-8 bytes, so every text has a "
                 "spelling and decode returns it exactly")


__all__ = ["ROLES", "BATCH_SENTENCES", "BATCH_LENGTH", "SPAN_TEXTS", "ADDED_WORDS", "PROBE",
           "tokenizer_for", "explore_tokens", "reference_batch", "check_padded_batch",
           "check_token_span", "added_token_facts", "check_added_tokens", "FAMILY_OPTIONS",
           "check_lossless_family"]
