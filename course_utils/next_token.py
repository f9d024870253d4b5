"""Next-token helpers: the logits after a prompt, a table and chart of the likeliest next tokens,
the log-probability of a continuation, and a logit lens at the last position (taught in lesson 04).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from .display import prob_bar_chart, topk_table
from .logit_lens import lens_logits
from .sampling import next_token_probs


def last_logits(model: torch.nn.Module, tokenizer, text: str) -> torch.Tensor:
    """Next-token logits after `text` alone (no padding), as a 1-D float tensor."""
    ids = tokenizer(text, return_tensors="pt").to(model.device)
    with torch.no_grad():
        return model(**ids).logits[0, -1].float().cpu()


def next_token_table(model: torch.nn.Module, tokenizer, prompt: str, temperature: float = 1.0,
                     k: int = 10) -> pd.DataFrame:
    """The k most probable next tokens after `prompt` at `temperature`, with their probability at T=1."""
    logits = last_logits(model, tokenizer, prompt)
    table = topk_table(next_token_probs(logits, temperature), tokenizer, k=k)
    table["at T=1"] = [round(p, 4) for p in next_token_probs(logits)[table["id"].tolist()].tolist()]
    return table


def plot_next_token_table(table: pd.DataFrame) -> Any:
    """Bar chart of a next_token_table(...): one bar per token."""
    return prob_bar_chart(table["token"].tolist(), table["probability"].tolist(),
                          title="next-token probability")


def continuation_logprob(model: torch.nn.Module, tokenizer, prompt: str, continuation: str,
                         shift: int = 1) -> torch.Tensor:
    """Per-token natural-log probabilities of `continuation` after `prompt` (shift=0: off by one)."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    cont_ids = tokenizer(continuation)["input_ids"]
    ids = torch.tensor([prompt_ids + cont_ids], device=model.device)
    with torch.no_grad():
        logprobs = model(input_ids=ids).logits[0].float().log_softmax(dim=-1).cpu()
    where = torch.arange(len(prompt_ids), ids.shape[1]) - shift  # logits at i predict token i + 1
    return logprobs[where, torch.tensor(cont_ids)]


def last_position_lens(model: torch.nn.Module, tokenizer, text: str, ln_f: bool = True) -> torch.Tensor:
    """Logit lens at the last position of `text`: (n_layer + 1, vocab); ln_f=False: raw projection."""
    ids = tokenizer(text, return_tensors="pt").to(model.device)
    with torch.no_grad():
        states = model(**ids, output_hidden_states=True).hidden_states
        if ln_f:
            return lens_logits(model, states)[:, -1].float().cpu()
        return model.lm_head(torch.stack([h[0, -1] for h in states])).float().cpu()
