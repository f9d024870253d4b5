"""Unit tests of course_utils.spans: the best answer span and its characters (lesson 03)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from course_utils import standins
from course_utils.spans import best_span, char_span


def loop_best(start: list[float], end: list[float], allowed: list[bool], max_tokens: int):
    """The same search, pair by pair (an independent reference): (score, start, end)."""
    pairs = [(start[s] + end[e], s, e) for s in range(len(start)) for e in range(s, len(end))
             if allowed[s] and allowed[e] and e - s + 1 <= max_tokens]
    return max(pairs)


@pytest.mark.parametrize("seed", range(20))
def test_equals_the_pair_by_pair_search(seed):
    gen = torch.Generator().manual_seed(seed)
    n = 12
    start, end = torch.randn(n, generator=gen), torch.randn(n, generator=gen)
    allowed = torch.rand(n, generator=gen) > 0.3
    allowed[5] = True
    max_tokens = int(torch.randint(1, 6, (1,), generator=gen))
    s, e, score = best_span(start, end, allowed, max_tokens=max_tokens)
    ref_score, ref_s, ref_e = loop_best(start.tolist(), end.tolist(), allowed.tolist(), max_tokens)
    assert (s, e) == (ref_s, ref_e)
    assert score == pytest.approx(ref_score)


def test_end_never_before_start():
    # The best start (position 3) lies after the best end (position 1): the span must not cross.
    start = torch.tensor([0.0, 0.0, 0.0, 9.0, 0.0])
    end = torch.tensor([0.0, 9.0, 0.0, 0.0, 1.0])
    s, e, _ = best_span(start, end, torch.ones(5, dtype=torch.bool))
    assert s <= e and (s, e) == (3, 4)


def test_only_allowed_tokens_and_at_most_max_tokens():
    start = torch.tensor([10.0, 0.0, 4.0, 0.0, 0.0, 0.0])  # position 0 ([CLS]) is not allowed
    end = torch.tensor([10.0, 0.0, 0.0, 2.0, 0.0, 5.0])
    allowed = torch.tensor([False, True, True, True, True, True])
    assert best_span(start, end, allowed)[:2] == (2, 5)
    assert best_span(start, end, allowed, max_tokens=2)[:2] == (2, 3)


def test_accepts_a_batch_of_one_and_int_masks():
    start, end = torch.tensor([[0.0, 3.0, 1.0]]), torch.tensor([[0.0, 1.0, 4.0]])
    assert best_span(start, end, torch.tensor([[0, 1, 1]]))[:2] == (1, 2)


def test_no_allowed_token_is_a_clear_error():
    with pytest.raises(ValueError, match="no allowed token"):
        best_span(torch.zeros(3), torch.zeros(3), torch.zeros(3, dtype=torch.bool))


def test_char_span_cuts_the_words_out_of_the_context():
    tokenizer = AutoTokenizer.from_pretrained(standins.minilm_dir(), trust_remote_code=False)
    question, context = "When?", "It was finished in 1889 for the fair."
    enc = tokenizer(question, context, return_offsets_mapping=True)
    sequence = enc.sequence_ids()
    tokens = enc.tokens()
    first = next(i for i, t in enumerate(tokens) if t == "1889" and sequence[i] == 1)
    last = next(i for i, t in enumerate(tokens) if t == "fair" and sequence[i] == 1)
    a, b = char_span(enc["offset_mapping"], first, last)
    assert context[a:b] == "1889 for the fair"  # offsets are into the context, not the pair
