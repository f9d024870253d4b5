"""From next-token logits to a distribution: temperature, top-k, top-p, sampling (lesson 04)."""

from __future__ import annotations

from typing import Optional

import torch


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide logits by `temperature` (> 0): below 1 sharpens the distribution, above 1 flattens it."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; for greedy use argmax")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (and ties with the k-th); set the others to -inf."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, logits.shape[-1])
    kth_largest = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the fewest most-probable tokens whose probabilities reach `p`; set the others to -inf."""
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    sorted_probs = sorted_logits.softmax(dim=-1)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # probability of the better tokens
    drop_sorted = mass_before >= p  # the better tokens already reach p: this one is not needed
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: Optional[int] = None,
                     top_p: Optional[float] = None) -> torch.Tensor:
    """Probabilities for the next token: temperature, then top-k, then top-p, then softmax."""
    scores = apply_temperature(logits.float(), temperature)
    if top_k is not None:
        scores = top_k_filter(scores, top_k)
    if top_p is not None:
        scores = top_p_filter(scores, top_p)
    return scores.softmax(dim=-1)


def sample_next_token(logits: torch.Tensor, temperature: float = 1.0, top_k: Optional[int] = None,
                      top_p: Optional[float] = None,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Draw one token id per row of `logits` from next_token_probs(...)."""
    probs = next_token_probs(logits, temperature, top_k, top_p)
    return torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator).reshape(
        probs.shape[:-1])
