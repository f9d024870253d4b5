"""Beam search by hand for a decoder-only model, ranked as generate(num_beams=...) ranks (lesson 07)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import pandas as pd
import torch

from .decoding import eos_ids

Processor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
STATUS_STYLE = {"kept": ("#0072B2", "o"), "finished": ("#009E73", "s"), "dropped": ("#999999", "x")}


def beam_step(beam_scores: torch.Tensor, log_probs: torch.Tensor, k: int, length: int,
              length_penalty: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k best continuations of all beams: summed log-probs, parent beams, tokens, finished scores."""
    vocab = log_probs.shape[-1]
    totals = (beam_scores[:, None] + log_probs).reshape(-1)  # chain rule: log-probabilities add up
    scores, flat = totals.topk(k)
    finished_scores = scores / length ** length_penalty  # only a beam that ends here is normalised
    return scores, flat // vocab, flat % vocab, finished_scores


@dataclass
class Hypothesis:
    """A finished beam: its new tokens, their summed log-probability, and its length-penalised score."""

    tokens: list[int]
    log_prob: float
    score: float


@dataclass
class BeamSearchResult:
    """Finished beams, best first, and every candidate the search considered (the beam tree)."""

    finished: list[Hypothesis]
    tree: pd.DataFrame  # step, rank, parent (rank at the step before), token, log_prob, total, status


@torch.no_grad()
def beam_search(model: Any, input_ids: torch.Tensor, num_beams: int = 4, max_new_tokens: int = 10,
                length_penalty: float = 1.0, stop_at_eos: bool = True,
                processors: Optional[Processor] = None) -> BeamSearchResult:
    """Beam search by hand for one prompt with the cache, as generate(num_beams=..., early_stopping=False)."""
    if input_ids.shape[0] != 1:
        raise ValueError(f"beam_search handles one prompt, got a batch of {input_ids.shape[0]}")
    eos = eos_ids(model) if stop_at_eos else set()
    k = max(2, 1 + len(eos)) * num_beams  # as generate: enough candidates that num_beams stay open
    prompt = input_ids[0].tolist()
    beams: list[list[int]] = [[]]  # the new tokens of each open beam; one beam before the first step
    scores = torch.zeros(1, device=input_ids.device)  # summed log-probability of each open beam
    ranks = [0]  # each open beam's rank among the candidates of the step before (for the tree)
    finished: list[Hypothesis] = []
    rows, cache, new_input = [], None, input_ids
    for step in range(1, max_new_tokens + 1):
        out = model(input_ids=new_input, past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        log_probs = out.logits[:, -1].float().log_softmax(-1)
        if processors is not None:
            log_probs = processors(torch.tensor([prompt + b for b in beams], device=input_ids.device),
                                   log_probs)
        top, parents, tokens, ends_here = beam_step(scores, log_probs, k, step, length_penalty)
        keep = []
        for rank in range(k):
            parent, token = int(parents[rank]), int(tokens[rank])
            status = "dropped"
            if token in eos or step == max_new_tokens:  # this candidate ends: finished, if good enough
                if rank < num_beams:  # generate only finishes candidates among the top num_beams
                    finished.append(Hypothesis(beams[parent] + [token], float(top[rank]),
                                               float(ends_here[rank])))
                    status = "finished"
            elif len(keep) < num_beams:
                keep.append(rank)
                status = "kept"
            rows.append({"step": step, "rank": rank, "parent": ranks[parent], "token": token,
                         "log_prob": float(log_probs[parent, token]), "total": float(top[rank]),
                         "status": status})
        finished = sorted(finished, key=lambda h: h.score, reverse=True)[:num_beams]
        if step == max_new_tokens or not keep:
            break
        beams = [beams[int(parents[r])] + [int(tokens[r])] for r in keep]
        scores, ranks = top[keep], keep
        cache.reorder_cache(parents[keep])  # each kept beam continues from its parent's keys/values
        new_input = tokens[keep][:, None]
        # generate's stop (early_stopping=False): num_beams have finished and the best open beam,
        # scored at its current length, would not beat the worst of them
        if len(finished) == num_beams and float(scores[0]) / step ** length_penalty <= finished[-1].score:
            break
    return BeamSearchResult(finished=finished, tree=pd.DataFrame(rows))


def padded_sequences(hypotheses: list[Hypothesis], prompt: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """Prompt + each hypothesis's tokens, padded on the right to one length, as generate returns them."""
    width = max(len(h.tokens) for h in hypotheses)
    rows = [prompt.reshape(-1).tolist() + h.tokens + [pad_token_id] * (width - len(h.tokens))
            for h in hypotheses]
    return torch.tensor(rows, dtype=torch.long, device=prompt.device)


@torch.no_grad()
def continuation_log_prob(model: Any, prompt_ids: torch.Tensor, tokens: list[int]) -> float:
    """log P(tokens | prompt) by the chain rule: one forward pass, the sum of each token's log-prob."""
    full = torch.cat([prompt_ids.reshape(1, -1), prompt_ids.new_tensor([tokens])], dim=1)
    log_probs = model(input_ids=full).logits[0, :-1].float().log_softmax(-1)
    start = prompt_ids.numel() - 1  # the logits at position i predict token i + 1
    picked = log_probs[start:].gather(-1, full[0, start + 1:, None])
    return float(picked.sum())


def ban_repeated_ngrams(input_ids: torch.Tensor, scores: torch.Tensor, n: int) -> torch.Tensor:
    """no_repeat_ngram_size by hand: -inf for each token that would repeat an n-gram of its row."""
    banned = scores.clone()
    for row, ids in enumerate(input_ids.tolist()):
        prefix = ids[len(ids) - n + 1:] if n > 1 else []  # the n - 1 tokens a new n-gram starts with
        for start in range(len(ids) - n + 1):
            if ids[start:start + n - 1] == prefix:
                banned[row, ids[start + n - 1]] = float("-inf")
    return banned


def penalize_repeats(input_ids: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    """repetition_penalty by hand: each token already in the row, score / penalty if > 0, else x penalty."""
    out = scores.clone()
    for row, ids in enumerate(input_ids.tolist()):
        seen = torch.tensor(sorted(set(ids)), device=scores.device)
        old = out[row, seen]
        out[row, seen] = torch.where(old < 0, old * penalty, old / penalty)
    return out


def plot_beam_tree(tree: pd.DataFrame, ax: Any = None) -> Any:
    """Draw a beam tree: one column per step, candidates by rank, lines from parent to child."""
    import matplotlib.pyplot as plt

    if ax is None:
        steps = int(tree["step"].max()) if len(tree) else 1
        _, ax = plt.subplots(figsize=(1.6 + 1.5 * steps, 0.45 * (tree["rank"].max() + 2) + 1))
    labels = tree["text"] if "text" in tree else tree["token"].astype(str)
    for row, label in zip(tree.itertuples(), labels):
        colour, marker = STATUS_STYLE[row.status]
        faint = row.status == "dropped"
        ax.plot([row.step - 1, row.step], [row.parent, row.rank], color=colour, lw=0.8 if faint else 1.8,
                alpha=0.5 if faint else 1.0, zorder=1)
        ax.scatter([row.step], [row.rank], color=colour, marker=marker, s=28, zorder=2)
        ax.annotate(f"{label} {row.total:.1f}", (row.step, row.rank), xytext=(4, 3),
                    textcoords="offset points", fontsize=7, color="#333333" if not faint else "#888888")
    ax.scatter([0], [0], color="black", s=30, zorder=2)
    for status, (colour, marker) in STATUS_STYLE.items():
        ax.scatter([], [], color=colour, marker=marker, label=status)
    ax.set_xlabel("generated token (step)")
    ax.set_ylabel("rank among the step's candidates (0 = best)")
    ax.set_title("beam tree: label = token and summed log-probability")
    ax.invert_yaxis()
    last = int(tree["step"].max()) if len(tree) else 1
    ax.set_xticks(range(0, last + 1))
    ax.set_xlim(-0.2, last + 0.9)  # room for the last column's labels
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    return ax
