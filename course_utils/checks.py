"""The "what we verified" checks that close every lesson: one readable line per check."""

from __future__ import annotations

from typing import Any


class CheckFailed(AssertionError):
    """A closing check did not hold; the message says which and with what values."""


def check(description: str, condition: Any, detail: str = "") -> None:
    """Print '✓ description' when `condition` is true; raise CheckFailed otherwise."""
    if bool(condition):
        print(f"✓ {description}")
        return
    raise CheckFailed(f"✗ {description}" + (f": {detail}" if detail else ""))


def check_close(description: str, actual: Any, expected: Any, atol: float = 1e-5) -> None:
    """Check that two tensors or numbers agree within `atol`, showing the largest gap if not."""
    import torch

    a = torch.as_tensor(actual, dtype=torch.float64)
    b = torch.as_tensor(expected, dtype=torch.float64)
    if a.shape != b.shape:
        raise CheckFailed(f"✗ {description}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    gap = (a - b).abs().max().item() if a.numel() else 0.0
    check(description, gap <= atol, f"largest difference {gap:.3g} > {atol:g}")
