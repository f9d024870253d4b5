"""Precision: which dtype a device should load models in (and why), and what a lower precision changes.

Taught in lesson 08 (notebooks/08_memory_and_precision.ipynb), whose `export` cells hold these
definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch


@dataclass(frozen=True)
class DtypeChoice:
    """A dtype and the reason it suits a device."""

    dtype: torch.dtype
    reason: str

    def __str__(self) -> str:
        return f"{str(self.dtype).removeprefix('torch.')} ({self.reason})"


def dtype_for(device_type: str, capability: Optional[tuple[int, int]] = None) -> DtypeChoice:
    """The dtype for a device type ("cuda" with its compute capability, "mps", "cpu"), and why."""
    if device_type == "cuda":
        if capability is None:
            raise ValueError("a cuda device needs its compute capability, e.g. (7, 5) for a T4")
        name = f"sm_{capability[0]}{capability[1]}"
        if tuple(capability) >= (8, 0):
            return DtypeChoice(torch.bfloat16, f"GPU {name} runs bf16 natively: fp32's range at "
                               "half the memory")
        return DtypeChoice(torch.float16, f"GPU {name} has no native bf16 (a T4 is sm_75); fp16 "
                           "halves the memory and runs on its tensor cores")
    if device_type == "mps":
        return DtypeChoice(torch.float16, "Apple GPU: fp16 halves the memory")
    return DtypeChoice(torch.float32, "CPU: half precision halves the memory but is not faster "
                       "on most CPUs (lesson 08 measures this one); fp32 is exact")


def pick_dtype(device: torch.device | str) -> DtypeChoice:
    """The dtype to load models in on `device` (asks the GPU for native bf16), and why."""
    device = torch.device(device)
    if device.type == "cuda":
        return dtype_for("cuda", torch.cuda.get_device_capability(device))
    return dtype_for(device.type)


def compare_logits(reference: torch.Tensor, other: torch.Tensor,
                   mask: Optional[torch.Tensor] = None) -> dict[str, float]:
    """Largest absolute logit difference and top-1 agreement of `other` against `reference`."""
    reference, other = reference.float(), other.float().to(reference.device)
    keep = (torch.ones(reference.shape[:-1], dtype=torch.bool, device=reference.device)
            if mask is None else mask.bool().to(reference.device))
    gap = (other - reference).abs()[keep]
    agree = (other.argmax(-1) == reference.argmax(-1))[keep]
    return {"max_abs_diff": float(gap.max()), "top1_agreement": float(agree.float().mean())}


def first_divergence(tokens: Sequence[int], reference: Sequence[int]) -> Optional[int]:
    """Index of the first token where two generated sequences differ; None if they never do."""
    for i, (a, b) in enumerate(zip(tokens, reference)):
        if int(a) != int(b):
            return i
    return None if len(tokens) == len(reference) else min(len(tokens), len(reference))
