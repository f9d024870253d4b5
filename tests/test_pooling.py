"""Unit tests of course_utils.pooling.masked_mean_pool: shape, padding invariance, the real MiniLM."""

from __future__ import annotations

import pytest
import torch

from course_utils import standins
from course_utils.pooling import masked_mean_pool


def loop_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The same quantity, one sequence at a time (an independent reference)."""
    rows = []
    for vectors, keep in zip(hidden, mask):
        real = vectors[keep.bool()]
        rows.append(real.mean(dim=0) if len(real) else torch.zeros(hidden.shape[-1]))
    return torch.stack(rows)


@pytest.fixture
def case():
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(4, 7, 5, generator=gen)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] + [0] * 6, [1] * 6 + [0]])
    return hidden, mask


def test_shape_is_batch_by_hidden(case):
    hidden, mask = case
    assert masked_mean_pool(hidden, mask).shape == (4, 5)


def test_equals_the_mean_over_real_tokens(case):
    hidden, mask = case
    torch.testing.assert_close(masked_mean_pool(hidden, mask), loop_mean(hidden, mask))


def test_no_padding_is_the_plain_mean(case):
    hidden, _ = case
    ones = torch.ones(hidden.shape[:2], dtype=torch.long)
    torch.testing.assert_close(masked_mean_pool(hidden, ones), hidden.mean(dim=1))


def test_padding_values_do_not_matter(case):
    hidden, mask = case
    noisy = hidden.clone()
    noisy[mask == 0] = 1e4
    torch.testing.assert_close(masked_mean_pool(noisy, mask), masked_mean_pool(hidden, mask))


def test_alone_equals_padded(case):
    hidden, mask = case
    alone = masked_mean_pool(hidden[1:2, :4], mask[1:2, :4])
    torch.testing.assert_close(alone[0], masked_mean_pool(hidden, mask)[1])


def test_float_and_bool_masks_agree_with_integer_mask(case):
    hidden, mask = case
    expected = masked_mean_pool(hidden, mask)
    torch.testing.assert_close(masked_mean_pool(hidden, mask.float()), expected)
    torch.testing.assert_close(masked_mean_pool(hidden, mask.bool()), expected)


def test_all_padding_row_gives_zeros_not_nan(case):
    hidden, mask = case
    mask = mask.clone()
    mask[2] = 0
    out = masked_mean_pool(hidden, mask)
    assert torch.isfinite(out).all() and torch.equal(out[2], torch.zeros(5))


def test_inputs_are_not_modified(case):
    hidden, mask = case
    before = hidden.clone(), mask.clone()
    masked_mean_pool(hidden, mask)
    assert torch.equal(hidden, before[0]) and torch.equal(mask, before[1])


def test_keeps_half_precision(case):
    hidden, mask = case
    assert masked_mean_pool(hidden.half(), mask).dtype == torch.float16


@pytest.fixture(scope="module")
def minilm():
    from transformers import AutoModel, AutoTokenizer

    path = standins.minilm_dir()
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path), path


SENTENCES = ["A man is playing a guitar.", "Someone is strumming a guitar.",
             "The stock market fell sharply today, and investors were worried about the future."]


def test_real_minilm_sentence_alone_equals_padded(minilm):
    model, tokenizer, _ = minilm
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    alone = tokenizer(SENTENCES[:1], return_tensors="pt")
    assert alone["input_ids"].shape[1] < batch["input_ids"].shape[1]  # the first one is padded
    with torch.no_grad():
        padded = masked_mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])
        single = masked_mean_pool(model(**alone).last_hidden_state, alone["attention_mask"])
        naive = model(**batch).last_hidden_state.mean(dim=1)
    torch.testing.assert_close(padded[0], single[0], atol=1e-5, rtol=0)
    assert not torch.allclose(naive[0], single[0], atol=1e-3)  # the plain mean does depend on it


def test_real_minilm_matches_sentence_transformers(minilm):
    # Pinned in requirements.txt: a missing package is an error here, never a silent skip.
    import sentence_transformers as st
    model, tokenizer, path = minilm
    batch = tokenizer(SENTENCES, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        ours = masked_mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])
    reference = st.SentenceTransformer(str(path), device="cpu").encode(SENTENCES,
                                                                       convert_to_tensor=True)
    torch.testing.assert_close(torch.nn.functional.normalize(ours, dim=-1), reference.cpu(),
                               atol=1e-5, rtol=0)
