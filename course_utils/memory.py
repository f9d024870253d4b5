"""Sizing a model before loading it: parameters from its config, bytes per dtype, "will it fit?".

Taught in lesson 08 (notebooks/08_memory_and_precision.ipynb), whose `export` cells hold these
definitions. Every size here is in bytes; GB means 10**9 bytes and GiB 2**30 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

GB = 10**9
GIB = 2**30
T4_BYTES = 15 * GIB  # a Colab T4: nvidia-smi shows 15,360 MiB
INFERENCE_OVERHEAD = 1.2  # inference: the weights plus roughly 20% (activations, KV cache, CUDA context)
ADAM_FACTOR = 4  # training with Adam: weights + gradients + Adam's two moments, plus activations


def bytes_per_value(dtype: torch.dtype) -> int:
    """Bytes one value of `dtype` takes: its number of bits divided by 8."""
    info = torch.finfo(dtype) if dtype.is_floating_point else torch.iinfo(dtype)
    return info.bits // 8


def count_parameters(config: Any) -> int:
    """Parameters of a GPT-2 or Llama-style causal LM, by hand from its config (a tied embedding once)."""
    if config.model_type == "gpt2":
        d, vocab = config.n_embd, config.vocab_size
        inner = config.n_inner or 4 * d
        block = (2 * d                  # ln_1: weight and bias
                 + d * 3 * d + 3 * d    # attn.c_attn: query, key and value in one matrix, with bias
                 + d * d + d            # attn.c_proj
                 + 2 * d                # ln_2
                 + d * inner + inner    # mlp.c_fc
                 + inner * d + d)       # mlp.c_proj
        body = vocab * d + config.n_positions * d + config.n_layer * block + 2 * d  # wte, wpe, h, ln_f
    elif config.model_type == "llama":
        d, vocab = config.hidden_size, config.vocab_size
        head = getattr(config, "head_dim", None) or d // config.num_attention_heads
        q, kv, inner = config.num_attention_heads * head, config.num_key_value_heads * head, \
            config.intermediate_size
        attention = d * q + 2 * d * kv + q * d + ((q + 2 * kv + d) if config.attention_bias else 0)
        mlp = 3 * d * inner + ((2 * inner + d) if config.mlp_bias else 0)  # gate, up, down
        body = vocab * d + config.num_hidden_layers * (attention + mlp + 2 * d) + d  # two RMSNorms
    else:
        raise ValueError(f"count_parameters knows gpt2 and llama configs, not {config.model_type!r}")
    lm_head = 0 if config.tie_word_embeddings else vocab * d  # a tied lm_head IS the embedding
    return body + lm_head


def weight_bytes(n_params: int, dtype: torch.dtype) -> int:
    """Bytes the weights take at `dtype`: parameters times bytes per value."""
    return n_params * bytes_per_value(dtype)


def format_bytes(n_bytes: float) -> str:
    """A size in GB (10**9 bytes) with GiB (2**30) beside it, '13.48 GB (12.55 GiB)'; MB below 0.1 GB."""
    if abs(n_bytes) < GB / 10:
        return f"{n_bytes / 10**6:,.2f} MB ({n_bytes / 2**20:,.2f} MiB)"
    return f"{n_bytes / GB:,.2f} GB ({n_bytes / GIB:,.2f} GiB)"


@dataclass(frozen=True)
class FitReport:
    """The answer to "will it fit?" and the numbers behind it, in bytes."""

    purpose: str  # "inference" or "training"
    weights: int
    needed: int
    available: int

    @property
    def fits(self) -> bool:
        """True when the rule of thumb's estimate is within the memory available."""
        return self.needed <= self.available

    def __str__(self) -> str:
        rule = ("weights x 1.2" if self.purpose == "inference"
                else "weights x 4 (weights, gradients, Adam's two moments), activations not counted")
        verdict = "fits" if self.fits else "does NOT fit"
        return (f"{self.purpose}: {verdict}: needs about {format_bytes(self.needed)} ({rule}; "
                f"weights {format_bytes(self.weights)}), {format_bytes(self.available)} available")


def will_it_fit(n_params: int, dtype: torch.dtype, available: int,
                purpose: str = "inference") -> FitReport:
    """Whether `n_params` at `dtype` fit in `available` bytes by the rule of thumb for `purpose`."""
    weights = weight_bytes(n_params, dtype)
    if purpose == "inference":
        needed = round(weights * INFERENCE_OVERHEAD)
    elif purpose == "training":
        needed = ADAM_FACTOR * weights
    else:
        raise ValueError(f"purpose is 'inference' or 'training', not {purpose!r}")
    return FitReport(purpose, weights, needed, int(available))


def free_memory(device: torch.device | str) -> int:
    """Bytes free now on `device`: torch.cuda.mem_get_info on a GPU, psutil's available RAM otherwise."""
    import psutil

    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)
