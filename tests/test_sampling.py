"""Unit tests of course_utils.sampling (temperature, top-k, top-p, sampling)."""

import pytest
import torch
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from course_utils.sampling import (
    apply_temperature,
    next_token_probs,
    sample_next_token,
    top_k_filter,
    top_p_filter,
)


@pytest.fixture
def logits():
    return torch.randn(4, 300, generator=torch.Generator().manual_seed(1)) * 3


def test_temperature_scales_logits(logits):
    assert torch.equal(apply_temperature(logits, 1.0), logits)
    assert torch.allclose(apply_temperature(logits, 0.5), logits * 2)
    assert torch.allclose(apply_temperature(logits, 0.7), TemperatureLogitsWarper(0.7)(None, logits))


@pytest.mark.parametrize("bad", [0, -1.0])
def test_temperature_must_be_positive(logits, bad):
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(logits, bad)


def test_temperature_sharpens_and_flattens_without_reordering(logits):
    p = {t: next_token_probs(logits[0], t) for t in (0.5, 1.0, 2.0)}
    assert p[0.5].max() > p[1.0].max() > p[2.0].max()
    assert torch.equal(p[0.5].argsort(), p[2.0].argsort())


@pytest.mark.parametrize("k", [1, 5, 50])
def test_top_k_keeps_k_and_matches_transformers(logits, k):
    kept = top_k_filter(logits, k)
    assert (torch.isfinite(kept).sum(-1) == k).all()
    assert torch.equal(kept, TopKLogitsWarper(k)(None, logits))
    finite = torch.isfinite(kept)
    assert torch.equal(kept[finite], logits[finite])  # kept logits are unchanged


def test_top_k_keeps_ties_and_tolerates_large_k():
    row = torch.tensor([3.0, 1.0, 3.0, 0.0])
    assert torch.isfinite(top_k_filter(row, 1)).tolist() == [True, False, True, False]
    assert torch.equal(top_k_filter(row, 10), row)
    with pytest.raises(ValueError):
        top_k_filter(row, 0)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9, 0.99])
def test_top_p_matches_transformers(logits, p):
    assert torch.equal(top_p_filter(logits, p), TopPLogitsWarper(p)(None, logits))


@pytest.mark.parametrize("p", [0.2, 0.6, 0.95])
def test_top_p_keeps_the_smallest_set_reaching_p(logits, p):
    probs = logits.softmax(-1)
    for row in range(logits.shape[0]):
        kept = torch.isfinite(top_p_filter(logits[row], p))
        mass = probs[row][kept].sum().item()
        weakest = probs[row][kept].min().item()
        assert mass >= p - 1e-6, "the kept tokens must reach p"
        assert mass - weakest < p, "without its weakest token the set must fall short of p"
        assert probs[row][~kept].max() <= weakest  # only the most probable tokens are kept


def test_top_p_edge_cases():
    row = torch.tensor([5.0, 0.0, -1.0])
    assert torch.isfinite(top_p_filter(row, 1e-9)).tolist() == [True, False, False]  # top token stays
    assert torch.isfinite(top_p_filter(row, 1.0)).all()
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError):
            top_p_filter(row, bad)


def test_next_token_probs_is_a_distribution(logits):
    probs = next_token_probs(logits, temperature=0.8, top_k=20, top_p=0.7)
    assert torch.allclose(probs.sum(-1), torch.ones(logits.shape[0]))
    assert ((probs > 0).sum(-1) <= 20).all()
    assert torch.allclose(next_token_probs(logits), logits.softmax(-1))


def test_next_token_probs_applies_temperature_before_top_p():
    row = torch.tensor([2.0, 1.0, 0.0, -1.0])
    # at T=1 the top two tokens hold < 0.9 of the mass; at T=0.25 the top one alone holds > 0.9
    assert (next_token_probs(row, 1.0, top_p=0.9) > 0).sum() > 2
    assert (next_token_probs(row, 0.25, top_p=0.9) > 0).sum() == 1


def test_sampling_respects_the_filters_and_the_seed(logits):
    rows = logits[0].expand(500, -1)
    draws = sample_next_token(rows, top_k=3, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (500,)
    assert set(draws.tolist()) <= set(logits[0].topk(3).indices.tolist())
    again = sample_next_token(rows, top_k=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    assert (sample_next_token(logits, top_k=1) == logits.argmax(-1)).all()  # top-1 is greedy


def test_sampling_frequencies_follow_the_probabilities():
    row = torch.tensor([1.0, 0.0, -1.0]).log_softmax(-1)
    draws = sample_next_token(row.expand(20000, -1), generator=torch.Generator().manual_seed(3))
    freq = torch.bincount(draws, minlength=3).float() / draws.numel()
    assert torch.allclose(freq, row.softmax(-1), atol=0.015)
