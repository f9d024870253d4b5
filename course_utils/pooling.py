"""Sentence vectors from token vectors: masked mean pooling (taught in lesson 03)."""

from __future__ import annotations

import torch


def masked_mean_pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average token vectors over real tokens only: (batch, seq, hidden) -> (batch, hidden)."""
    weights = attention_mask.unsqueeze(-1).to(hidden_states.dtype)  # (batch, seq, 1): 1 = real
    summed = (hidden_states * weights).sum(dim=1)  # padding positions contribute zero
    counts = weights.sum(dim=1).clamp(min=1.0)  # real tokens per sequence (at least 1: no 0/0)
    return summed / counts
