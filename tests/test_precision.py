"""course_utils.precision: the dtype rule, logit comparison and first divergence."""

from __future__ import annotations

import pytest
import torch

from course_utils import precision


@pytest.mark.parametrize("device_type, capability, expected", [
    ("cpu", None, torch.float32), ("cuda", (7, 5), torch.float16), ("cuda", (7, 0), torch.float16),
    ("cuda", (8, 0), torch.bfloat16), ("cuda", (9, 0), torch.bfloat16), ("mps", None, torch.float16),
])
def test_dtype_for(device_type, capability, expected):
    choice = precision.dtype_for(device_type, capability)
    assert choice.dtype == expected and choice.reason


def test_a_t4_is_told_why_not_bf16():
    assert "no native bf16" in str(precision.dtype_for("cuda", (7, 5)))


def test_cuda_without_capability_is_refused():
    with pytest.raises(ValueError, match="compute capability"):
        precision.dtype_for("cuda")


def test_pick_dtype_on_this_cpu():
    assert precision.pick_dtype("cpu").dtype == torch.float32


def test_pick_dtype_asks_the_gpu_for_its_capability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert precision.pick_dtype(torch.device("cuda", 0)).dtype == torch.float16


def test_compare_logits_masks_padding_and_counts_agreement():
    ref = torch.zeros(1, 3, 4)
    ref[0, :, 0] = 1.0
    other = ref.clone()
    other[0, 0] = torch.tensor([0.0, 9.0, 0.0, 0.0])  # a padded position: masked out
    other[0, 2, 1] = 2.0  # changes the argmax at position 2, by 2.0
    result = precision.compare_logits(ref, other, torch.tensor([[0, 1, 1]]))
    assert result == {"max_abs_diff": 2.0, "top1_agreement": 0.5}
    assert precision.compare_logits(ref, other)["max_abs_diff"] == 9.0


def test_first_divergence():
    assert precision.first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert precision.first_divergence([1, 5, 3], [1, 2, 3]) == 1
    assert precision.first_divergence([1, 2], [1, 2, 3]) == 2
