"""Greedy decoding by hand for T5-style encoder-decoder models, with the key/value cache (lesson 05)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import pandas as pd
import torch

from .display import topk_table


def decoder_start(model: Any, batch_size: int = 1) -> torch.Tensor:
    """A (batch_size, 1) tensor holding the decoder start token (for T5 the pad id, 0)."""
    start = model.config.decoder_start_token_id
    if start is None:
        raise ValueError("config.decoder_start_token_id is None: is this an encoder-decoder model?")
    return torch.full((batch_size, 1), start, dtype=torch.long, device=model.device)


def rescale_for_lm_head(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    """Multiply decoder output by d_model ** -0.5 when the T5 config asks for it, as the model does."""
    # transformers 5.23 keeps the decision in config.scale_decoder_outputs (False for flan-t5).
    scale = getattr(model.config, "scale_decoder_outputs", model.config.tie_word_embeddings)
    return hidden * model.config.d_model ** -0.5 if scale else hidden


@torch.no_grad()
def first_step_logits(model: Any, input_ids: torch.Tensor,
                      attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Logits (batch, vocab) for the first output token: no labels, just the start token."""
    start = decoder_start(model, input_ids.shape[0])
    out = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=start)
    return out.logits[:, -1, :]


def eos_ids(model: Any) -> set[int]:
    """The token ids that end generation for this model (generation config, else model config)."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = model.config.eos_token_id
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(e) for e in eos}


def candidate_table(logits: torch.Tensor, tokenizer: Any, k: int = 5) -> pd.DataFrame:
    """The k most probable next tokens for 1-D logits (softmax over the whole vocabulary)."""
    return topk_table(torch.softmax(logits.float(), dim=-1), tokenizer, k)


@dataclass
class GreedyResult:
    """What greedy decoding chose: the new token ids, and the logits of every step (steps, vocab)."""

    tokens: list[int]
    logits: torch.Tensor


@torch.no_grad()
def greedy_decode(model: Any, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                  max_new_tokens: int = 20, use_cache: bool = True,
                  stop_at_eos: bool = True) -> GreedyResult:
    """Greedy decoding by hand: run the encoder once, then one decoder step per new token."""
    if input_ids.shape[0] != 1:
        raise ValueError(f"greedy_decode handles one input at a time, got a batch of {input_ids.shape[0]}")
    encoder_outputs = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
    decoded = decoder_start(model)  # grows by one token per step
    cache = None  # the model creates an EncoderDecoderCache on the first cached call
    stop = eos_ids(model) if stop_at_eos else set()
    tokens, step_logits = [], []
    for _ in range(max_new_tokens):
        out = model(
            encoder_outputs=encoder_outputs,  # no input_ids: the encoder is not run again
            attention_mask=attention_mask,  # still needed: cross-attention must skip padding
            decoder_input_ids=decoded[:, -1:] if use_cache else decoded,
            past_key_values=cache,
            use_cache=use_cache,
        )
        cache = out.past_key_values if use_cache else None
        logits = out.logits[0, -1]  # the model applied the d_model ** -0.5 rescale and lm_head
        token = int(logits.argmax())
        tokens.append(token)
        step_logits.append(logits)
        decoded = torch.cat([decoded, decoded.new_tensor([[token]])], dim=1)
        if token in stop:
            break
    return GreedyResult(tokens=tokens, logits=torch.stack(step_logits))


class DecodingStepper:
    """Greedy decoding one token per `step()`, keeping the cache; shows the top-k candidates."""

    def __init__(self, model: Any, tokenizer: Any, text: str, k: int = 5, max_new_tokens: int = 20,
                 table_fn: Callable[..., pd.DataFrame] = candidate_table) -> None:
        self.model, self.tokenizer, self.text = model, tokenizer, text
        self.k, self.max_new_tokens, self.table_fn = k, max_new_tokens, table_fn
        self.reset()

    @torch.no_grad()
    def _decoder_step(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.model(encoder_outputs=self._encoder_outputs, attention_mask=self._mask,
                         decoder_input_ids=ids, past_key_values=self._cache, use_cache=True)
        self._cache = out.past_key_values
        return out.logits[0, -1]

    @torch.no_grad()
    def reset(self) -> None:
        """Start again from the decoder start token (the encoder runs once more)."""
        enc = self.tokenizer(self.text, return_tensors="pt").to(self.model.device)
        self._mask = enc["attention_mask"]
        self._encoder_outputs = self.model.get_encoder()(**enc)
        self._cache = None
        self.tokens: list[int] = []
        self.done = False
        self.next_logits = self._decoder_step(decoder_start(self.model))

    def candidates(self) -> pd.DataFrame:
        """The k most probable next tokens and their probabilities at the current step."""
        return self.table_fn(self.next_logits, self.tokenizer, self.k)

    def step(self) -> pd.DataFrame:
        """Append the most probable token; return the candidates it was chosen from."""
        if self.done:
            raise StopIteration("decoding has finished: call reset() to start again")
        table = self.candidates()
        token = int(self.next_logits.argmax())
        self.tokens.append(token)
        if token in eos_ids(self.model) or len(self.tokens) >= self.max_new_tokens:
            self.done = True
        else:
            self.next_logits = self._decoder_step(self.next_logits.new_tensor([[token]], dtype=torch.long))
        return table

    def output(self) -> str:
        """The text decoded so far (special tokens removed)."""
        return self.tokenizer.decode(self.tokens, skip_special_tokens=True)
