"""Answer spans from a question-answering head: the best (start, end) pair and its characters (lesson 03)."""

from __future__ import annotations

from typing import Sequence

import torch


def best_span(start_logits: torch.Tensor, end_logits: torch.Tensor, allowed: torch.Tensor,
              max_tokens: int = 30) -> tuple[int, int, float]:
    """The token pair (start, end, score) maximising start + end logit, start <= end, both allowed."""
    n = start_logits.shape[-1]
    scores = start_logits.reshape(n, 1) + end_logits.reshape(1, n)  # row = start, column = end
    positions = torch.arange(n, device=scores.device)
    length = positions.reshape(1, n) - positions.reshape(n, 1) + 1  # tokens from start to end
    allowed = allowed.to(device=scores.device, dtype=torch.bool).reshape(n)
    valid = (length >= 1) & (length <= max_tokens) & allowed.reshape(n, 1) & allowed.reshape(1, n)
    if not bool(valid.any()):
        raise ValueError("no allowed token to answer from (is the context empty?)")
    best = int(scores.masked_fill(~valid, float("-inf")).argmax())
    start, end = divmod(best, n)
    return start, end, float(scores[start, end])


def char_span(offsets: Sequence[Sequence[int]], start: int, end: int) -> tuple[int, int]:
    """The characters tokens start..end cover in their text: (first, one past the last)."""
    return int(offsets[start][0]), int(offsets[end][1])
