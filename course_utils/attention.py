"""GPT-2's attention and transformer block written out from the model's own weights (lesson 06).

Every function here is taught in notebooks/06_attention.ipynb, in a cell tagged `export`; the lesson
checks each one against the library's modules number for number. GPT-2 stores its projections as
`Conv1D` layers whose weight is (in_features, out_features), so a projection is `x @ W + b`.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch


def relative_gap(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest absolute difference, divided by the largest |expected| when that exceeds 1."""
    actual, expected = actual.detach().double(), expected.detach().double()
    return (actual - expected).abs().max().item() / max(1.0, expected.abs().max().item())


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(batch, tokens, n_head * head_dim) -> (batch, n_head, tokens, head_dim)."""
    batch, tokens, width = x.shape
    return x.view(batch, tokens, n_head, width // n_head).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, n_head, tokens, head_dim) -> (batch, tokens, n_head * head_dim), heads side by side."""
    batch, n_head, tokens, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, tokens, n_head * head_dim)


def causal_mask(n_tokens: int, dtype: torch.dtype = torch.float32,
                device: Optional[torch.device] = None) -> torch.Tensor:
    """Additive (n_tokens, n_tokens) mask: 0 where query i may see key j (j <= i), else dtype's min."""
    allowed = torch.tril(torch.ones(n_tokens, n_tokens, dtype=torch.bool, device=device))
    mask = torch.zeros(n_tokens, n_tokens, dtype=dtype, device=device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)


def attention_bias(attention_mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive (batch, 1, tokens, tokens) mask from a (batch, tokens) 0/1 mask: causal and no pads."""
    tokens = attention_mask.shape[-1]
    causal = torch.tril(torch.ones(tokens, tokens, dtype=torch.bool, device=attention_mask.device))
    allowed = causal[None, None] & attention_mask.bool()[:, None, None, :]  # key j is a real token
    bias = torch.zeros(allowed.shape, dtype=dtype, device=attention_mask.device)
    return bias.masked_fill(~allowed, torch.finfo(dtype).min)


def self_attention(attn: Any, x: torch.Tensor,
                   bias: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """GPT-2 attention from its weights: (output (batch, tokens, width), weights (batch, heads, q, k))."""
    width, n_head = x.shape[-1], attn.num_heads
    head_dim = width // n_head
    qkv = x @ attn.c_attn.weight + attn.c_attn.bias  # Conv1D: weight is (in, out) = (width, 3 width)
    q, k, v = (split_heads(part, n_head) for part in qkv.split(width, dim=-1))
    scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)  # (batch, heads, queries, keys)
    if bias is None:
        bias = causal_mask(x.shape[1], scores.dtype, scores.device)
    weights = torch.softmax(scores + bias, dim=-1)  # the mask goes in before the softmax
    mixed = merge_heads(weights @ v)
    return mixed @ attn.c_proj.weight + attn.c_proj.bias, weights


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's activation: the tanh approximation of GELU."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def feed_forward(mlp: Any, x: torch.Tensor) -> torch.Tensor:
    """GPT-2's MLP from its weights: c_fc, gelu_new, c_proj (both Conv1D, weights (in, out))."""
    hidden = gelu_new(x @ mlp.c_fc.weight + mlp.c_fc.bias)
    return hidden @ mlp.c_proj.weight + mlp.c_proj.bias


def block_forward(block: Any, x: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One GPT-2 block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""
    attended, _ = self_attention(block.attn, block.ln_1(x), bias)
    x = x + attended
    return x + feed_forward(block.mlp, block.ln_2(x))


def forward_by_hand(model: Any, input_ids: torch.Tensor,
                    attention_mask: Optional[torch.Tensor] = None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """GPT-2 end to end by hand: (the n_layer + 1 hidden states as the model reports them, logits)."""
    body = model.transformer
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # lesson 04: count real tokens only
    x = body.wte(input_ids) + body.wpe(positions)
    bias = attention_bias(attention_mask, x.dtype)
    states = [x]
    for block in body.h:
        x = block_forward(block, x, bias)
        states.append(x)
    states[-1] = body.ln_f(x)  # the model reports its last hidden state after ln_f
    return states, states[-1] @ body.wte.weight.T  # lm_head is tied to wte


def block_parameter_counts(config: Any) -> dict[str, int]:
    """Parameters of one GPT-2 block from its config: attention, MLP, layer norms (weights + biases)."""
    width = config.n_embd
    inner = config.n_inner if config.n_inner is not None else 4 * width
    return {
        "attention": (width * 3 * width + 3 * width) + (width * width + width),  # c_attn, c_proj
        "mlp": (width * inner + inner) + (inner * width + width),  # c_fc, c_proj
        "layer norms": 2 * (width + width),  # ln_1, ln_2: a scale and a shift each
    }
