"""Generating with a decoder-only model by hand: the key/value cache, left padding, its memory (lesson 07)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from .decoding import eos_ids


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that count real tokens only (lesson 04): cumsum of the mask minus 1, pads at 0."""
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 0)


def cache_shapes(cache: Any) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Per layer, the shapes of the cached keys and values: (batch, heads, tokens, head_dim)."""
    return [(tuple(layer.keys.shape), tuple(layer.values.shape)) for layer in cache.layers]


def cache_nbytes(cache: Any) -> int:
    """Bytes held by a cache's key and value tensors, summed over its layers."""
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)


def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, tokens: int, batch: int = 1,
                   bytes_per_value: int = 2) -> int:
    """The cache's size by formula: 2 (keys, values) x layers x heads x head_dim x tokens x batch x bytes."""
    return 2 * layers * kv_heads * head_dim * tokens * batch * bytes_per_value


def cache_bytes_for_config(config: Any, tokens: int, batch: int = 1, bytes_per_value: int = 2) -> int:
    """kv_cache_bytes with the layers, key/value heads and head size read from a model's config."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads  # fewer with grouped-query attention
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return kv_cache_bytes(config.num_hidden_layers, kv_heads, head_dim, tokens, batch, bytes_per_value)


@dataclass
class Generated:
    """What a hand-written loop generated: new tokens (batch, steps), logits (batch, steps, vocab)."""

    tokens: torch.Tensor
    logits: torch.Tensor


@torch.no_grad()
def greedy_generate(model: Any, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                    max_new_tokens: int = 20, use_cache: bool = True, stop_at_eos: bool = True,
                    processors: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None
                    ) -> Generated:
    """Greedy decoding by hand for a (left-padded) batch: one prefill, then one cached step per token."""
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    stop = torch.tensor(sorted(eos_ids(model)) if stop_at_eos else [], dtype=torch.long,
                        device=input_ids.device)
    pad = model.generation_config.pad_token_id
    pad = int(stop[0]) if pad is None and len(stop) else (pad or 0)  # generate pads with EOS too
    sequence, mask, cache = input_ids, attention_mask, None
    new_input = input_ids  # the prefill reads the whole prompt; every later step one token per row
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    tokens, step_logits = [], []
    for _ in range(max_new_tokens):
        fed = new_input if use_cache else sequence
        positions = position_ids_from_mask(mask)[:, -fed.shape[1]:]  # continue from the mask, not 0
        out = model(input_ids=fed, attention_mask=mask, position_ids=positions, past_key_values=cache,
                    use_cache=use_cache, logits_to_keep=1)
        cache = out.past_key_values if use_cache else None
        logits = out.logits[:, -1].float()
        scores = processors(sequence, logits) if processors is not None else logits
        token = scores.argmax(-1).masked_fill(finished, pad)  # a finished row only pads, as generate does
        tokens.append(token)
        step_logits.append(logits)
        finished |= torch.isin(token, stop)
        sequence = torch.cat([sequence, token[:, None]], dim=1)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        new_input = token[:, None]
        if bool(finished.all()):
            break
    return Generated(tokens=torch.stack(tokens, dim=1), logits=torch.stack(step_logits, dim=1))
