"""Reading a GPT-2 model's two ends: embeddings through lm_head, and the logit lens (lesson 04)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch


def top_tokens_by_dot(model: torch.nn.Module, tokenizer, token_ids: Sequence[int],
                      k: int = 10) -> pd.DataFrame:
    """Per token id: the k tokens (repr) whose lm_head row best matches (dot product) its embedding."""
    with torch.no_grad():
        ids = torch.as_tensor(list(token_ids), device=model.device)
        vectors = model.get_input_embeddings()(ids)
        scores = model.get_output_embeddings()(vectors)  # (n_tokens, vocab): one dot product per row
    top = scores.topk(k, dim=-1).indices
    rows = [[repr(tokenizer.decode([i])) for i in row] for row in top.tolist()]
    index = [repr(tokenizer.decode([i])) for i in token_ids]
    return pd.DataFrame(rows, index=index, columns=[f"#{r + 1}" for r in range(k)])


def state_labels(n_states: int) -> list[str]:
    """Names of the hidden states: 'embeddings', then 'layer 1' ... 'layer N'."""
    return ["embeddings"] + [f"layer {i}" for i in range(1, n_states)]


def lens_logits(model: torch.nn.Module, hidden_states: Sequence[torch.Tensor],
                row: int = 0) -> torch.Tensor:
    """Logit lens for one sequence: (n_states, seq_len, vocab); ln_f on every state but the last."""
    states = torch.stack([h[row] for h in hidden_states])  # (n_states, seq_len, hidden)
    with torch.no_grad():
        normed = torch.cat([model.transformer.ln_f(states[:-1]), states[-1:]])  # last: already normed
        return model.lm_head(normed)


def lens_tables(logits: torch.Tensor, tokenizer,
                positions: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Top token (repr) and its probability for every (hidden state, position) of lens_logits(...)."""
    probs, ids = logits.float().softmax(dim=-1).max(dim=-1)  # each (n_states, seq_len)
    rows = state_labels(logits.shape[0])
    tokens = pd.DataFrame([[repr(tokenizer.decode([i])) for i in r] for r in ids.tolist()],
                          index=rows, columns=list(positions))
    return tokens, pd.DataFrame(probs.cpu().numpy(), index=rows, columns=list(positions))


def plot_lens(tokens: pd.DataFrame, probs: pd.DataFrame, standin: bool = False, ax=None):
    """Heatmap of lens_tables(...) on a fixed 0-1 scale (so a stand-in's near-zero noise stays dark)."""
    from .display import STANDIN_NOTE, heatmap

    title = "logit lens: top next token per state (colour: its probability, fixed 0 to 1)"
    ax = heatmap(probs.values, probs.index, probs.columns, title=title,
                 cell_text=tokens.values.tolist(), ax=ax, vmin=0.0, vmax=1.0)
    ax.set_xlabel("input position and token (each column predicts the token after it)")
    ax.set_ylabel("hidden state read through ln_f and lm_head")
    if standin:
        note = f"{STANDIN_NOTE}: the largest top probability is {probs.values.max():.4f}"
        ax.annotate(f"{note}, so the map stays dark",
                    xy=(0, 0), xycoords="axes fraction", xytext=(0, -95), textcoords="offset points",
                    fontsize=9, style="italic", va="top")
    return ax
