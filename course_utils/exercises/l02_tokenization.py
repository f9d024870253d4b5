"""Checkers and the token explorer of lesson 02 (tokenization).

Every checker computes its reference answer with the course's own sentiment tokenizer (the real
BERT-uncased vocabulary in both tiers), so the learner's variables cannot change what is expected.
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Mapping, Sequence
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
# the registry role whose tokenizer stands for each family
FAMILY_ROLE = {"WordPiece (BERT)": "sentiment", "byte-level BPE (GPT-2)": "generation",
               "unigram (T5)": "t5"}
# Question 4's evidence: the texts round_trip is checked on (the hidden test uses another one)
SPELL_TEXTS = ("snow ☃ and 🤗", "hello🤗world", "Naïve café, déjà vu")


def unseen_text(rng: random.Random | None = None) -> str:
    """A text made up at check time (a new word, an accent, an emoji), so a typed table cannot pass."""
    rng = rng or random.SystemRandom()
    word = "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))
    emoji = chr(rng.randrange(0x1F600, 0x1F640))
    return f"{word.capitalize()} {rng.choice('éüñç')}a {emoji}"


def round_trip_reference(tokenizer: Any, text: str) -> str:
    """decode(encode(text)) without special tokens: the text a tokenizer gives back."""
    return tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True)


def _round_trip_mistake(got: str, text: str, tokenizer: Any) -> str:
    """The hint for a round_trip result that is not the decoded ids."""
    ids = tokenizer(text)["input_ids"]
    if got == text:
        return ("you returned the text itself: encode it with the tokenizer, then decode the ids "
                "(do not assume the answer)")
    if got == tokenizer.decode(ids):
        return "drop the special tokens ([CLS], </s>, ...): decode(ids, skip_special_tokens=True)"
    if got == " ".join(tokenizer.tokenize(text)) or got == "".join(tokenizer.tokenize(text)):
        return "you joined the tokens; decode the ids instead: tokenizer.decode(ids, ...)"
    return "return tokenizer.decode(tokenizer(text)['input_ids'], skip_special_tokens=True)"


def check_round_trips(round_trip: Any, texts: Sequence[str] = SPELL_TEXTS) -> dict[str, bool]:
    """Question 4's evidence: round_trip(tokenizer, text) on every family and text, else fail.

    The texts are `texts` and one made up for this call (unseen_text). Returns, for each family,
    whether it gave every text back exactly (used inside checkers).
    """
    expect_callable(round_trip, "round_trip", "round_trip(tokenizer, text)")
    texts = (*texts, unseen_text())
    exact = {}
    for family, role in FAMILY_ROLE.items():
        tokenizer = tokenizer_for(role)
        exact[family] = True
        for text in texts:
            expected = round_trip_reference(tokenizer, text)
            where = f"round_trip(<{family} tokenizer>, {text!r})"
            try:
                got = round_trip(copy.deepcopy(tokenizer), text)
            except Exception as err:  # the learner's function failed on this case
                fail(f"{where} raised {describe_error(err)}",
                     "encode with tokenizer(text)['input_ids'], then tokenizer.decode(...)")
            if not isinstance(got, str):
                fail(f"{where} returned {a_type(got)}, expected a str",
                     "return the decoded text, tokenizer.decode(ids, skip_special_tokens=True)")
            if got != expected:
                fail(f"{where} returned {got!r}, but decoding its ids gives {expected!r}",
                     _round_trip_mistake(got, text, tokenizer))
            exact[family] = exact[family] and got == text
    return exact


@guarded
def check_round_trip(round_trip: Any) -> Feedback:
    """Question 4's evidence alone: round_trip is decode(encode(text)) for every family."""
    exact = check_round_trips(round_trip)
    return right(f"round_trip is right on {len(SPELL_TEXTS) + 1} texts (one made up for this check) "
                 "and 3 tokenizers "
                 f"({sum(exact.values())} of them gave every text back); now choose")


@guarded
def check_lossless_family(round_trip: Any, answer: Any) -> Feedback:
    """Question 4: the evidence (round_trip) first, then which family gets any text back exactly."""
    exact = check_round_trips(round_trip)  # nothing about the choice until the evidence is right
    choice = match_choice(answer, FAMILY_OPTIONS)
    lossless = [family for family, ok in exact.items() if ok]
    if choice not in lossless:
        text = next(t for t in SPELL_TEXTS
                    if round_trip_reference(tokenizer_for(FAMILY_ROLE[choice]), t) != t)
        fail(f"your round_trip is right, and it shows that {choice} does not give "
             f"{text!r} back; your choice does not follow from your evidence",
             f"pick the family whose round_trip returned every text unchanged: {' or '.join(lossless)}")
    return right(f"{choice}: your round_trip shows it is the only family that gives every text back; "
                 "byte-level BPE falls back to a character's UTF-8 bytes, so every text has a "
                 "spelling, while WordPiece turns a whole word with an unknown character into "
                 "[UNK] and unigram maps an unknown character to <unk>")


__all__ = ["ROLES", "BATCH_SENTENCES", "BATCH_LENGTH", "SPAN_TEXTS", "ADDED_WORDS", "PROBE",
           "tokenizer_for", "explore_tokens", "reference_batch", "check_padded_batch",
           "check_token_span", "added_token_facts", "check_added_tokens", "FAMILY_OPTIONS",
           "FAMILY_ROLE", "SPELL_TEXTS", "unseen_text", "round_trip_reference", "check_round_trips",
           "check_round_trip",
           "check_lossless_family"]
