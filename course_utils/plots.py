"""Figures of lessons 01-05: model families, token spans, padding grids, temperature, decoding steps.

Every figure uses the Okabe-Ito colour-blind-safe palette, labels its axes with units, and puts
probabilities on a fixed scale (0 to 1, or 0 to log2 of the vocabulary size for entropy), so that a
random stand-in's flat distribution looks flat instead of being stretched into false structure. The
data behind each figure comes from a plain function that returns numbers or a DataFrame (tested in
tests/test_plots.py); the plotting function only draws it.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import pandas as pd
import torch

from .display import STANDIN_NOTE, readable_token

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = {
    "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7", "grey": "#999999",
}
PALETTE = list(OKABE_ITO.values())


def _axes(ax, figsize: tuple[float, float]):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def caption(ax, text: str) -> None:
    """Write a one-line reading under an Axes (the figure's 'what to see')."""
    ax.annotate(text, xy=(0, 0), xycoords="axes fraction", xytext=(0, -62), textcoords="offset points",
                fontsize=9, style="italic", va="top", ha="left", wrap=True)


# ---------------------------------------------------------------- lesson 01: the three families
def attention_visibility(family: str, n_input: int = 5, n_output: int = 4) -> torch.Tensor:
    """Which position may attend to which (1 = may): rows are queries, columns keys.

    encoder: every input token sees every input token; decoder: each token sees itself and earlier
    tokens (causal); encoder-decoder: inputs first, then outputs, which see every input (cross-attention)
    and earlier outputs, while inputs never see outputs.
    """
    if family == "encoder":
        return torch.ones(n_input, n_input)
    if family == "decoder":
        return torch.tril(torch.ones(n_input, n_input))
    if family == "encoder-decoder":
        n = n_input + n_output
        grid = torch.zeros(n, n)
        grid[:n_input, :n_input] = 1  # encoder self-attention: bidirectional
        grid[n_input:, :n_input] = 1  # cross-attention: every output reads every input
        grid[n_input:, n_input:] = torch.tril(torch.ones(n_output, n_output))  # causal decoder
        return grid
    raise ValueError(f"family must be 'encoder', 'decoder' or 'encoder-decoder', not {family!r}")


FAMILIES = {
    "encoder": ("encoder-only: BERT, DistilBERT, RoBERTa, MiniLM",
                "classification, tagging, fill-mask, embeddings"),
    "decoder": ("decoder-only: GPT-2", "text generation, one token after another"),
    "encoder-decoder": ("encoder-decoder: T5", "text to text: translation, summaries"),
}


def plot_model_families(n_input: int = 5, n_output: int = 4):
    """Three panels, one per family: who may attend to whom. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), gridspec_kw={"width_ratios": [5, 5, 9]})
    cmap = ListedColormap(["#FFFFFF", OKABE_ITO["blue"]])
    for ax, (family, (title, use)) in zip(axes, FAMILIES.items()):
        grid = attention_visibility(family, n_input, n_output)
        names = [f"in{i + 1}" for i in range(n_input)]
        if family == "encoder-decoder":
            names += [f"out{i + 1}" for i in range(n_output)]
        ax.imshow(grid.numpy(), cmap=cmap, vmin=0, vmax=1)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xticks([x - 0.5 for x in range(len(names) + 1)], minor=True)
        ax.set_yticks([y - 0.5 for y in range(len(names) + 1)], minor=True)
        ax.grid(which="minor", color=OKABE_ITO["grey"], linewidth=0.5)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel("token attended to (key position)")
        ax.set_ylabel("token being updated (query position)")
        ax.set_title(f"{title}\n{use}", fontsize=9)
        if family == "encoder-decoder":
            ax.axhline(n_input - 0.5, color=OKABE_ITO["vermillion"], linewidth=1.5)
            ax.axvline(n_input - 0.5, color=OKABE_ITO["vermillion"], linewidth=1.5)
            ax.text(n_input / 2 - 0.5, n_input + n_output / 2 - 0.5, "cross-\nattention", ha="center",
                    va="center", color="white", fontsize=8)
    fig.suptitle("Blue: the row's token may attend to the column's token", fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- lesson 02: spans and pieces
def token_spans(tokenizer, text: str) -> pd.DataFrame:
    """The tokens of `text` that cover characters: token, start, end (special tokens dropped)."""
    encoding = tokenizer(text, return_offsets_mapping=True)
    rows = [{"token": token, "start": start, "end": end}
            for token, (start, end) in zip(encoding.tokens(), encoding["offset_mapping"]) if end > start]
    return pd.DataFrame(rows, columns=["token", "start", "end"])


def plot_token_spans(tokenizers: dict, text: str, ax=None):
    """One row per tokenizer: the text's characters, each token's span shaded in turn, its name below."""
    from matplotlib.patches import Rectangle

    ax = _axes(ax, (max(8.0, 0.22 * len(text) + 2), 1.4 * len(tokenizers) + 0.8))
    for row, (name, tok) in enumerate(tokenizers.items()):
        y = -2.0 * row  # each row: the characters on shaded spans, the token names on two lines below
        spans = token_spans(tok, text)
        for i, span in enumerate(spans.itertuples()):
            ax.add_patch(Rectangle((span.start, y), span.end - span.start, 0.9,
                                   facecolor=PALETTE[1 if i % 2 else 0], alpha=0.55, edgecolor="black",
                                   linewidth=0.6))
            ax.text((span.start + span.end) / 2, y - 0.15 - 0.4 * (i % 2), readable_token(span.token),
                    ha="center", va="top", fontsize=7)
        for c, char in enumerate(text):
            ax.text(c + 0.5, y + 0.45, char, ha="center", va="center", family="monospace", fontsize=10)
        ax.text(-0.5, y + 0.45, f"{name}\n{len(spans)} tokens", ha="right", va="center", fontsize=9)
    ax.set_xlim(-0.5, len(text) + 0.5)
    ax.set_ylim(-2.0 * len(tokenizers) + 0.7, 1.1)
    ax.set_yticks([])
    ax.set_xlabel("character position in the text (offset_mapping's start and end)")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return ax


def tokens_per_word(tokenizers: dict, text: str) -> pd.DataFrame:
    """How many tokens each whitespace-separated word of `text` becomes, per tokenizer (from offsets)."""
    words, starts, position = text.split(), [], 0
    for word in words:
        position = text.index(word, position)
        starts.append((position, position + len(word)))
        position += len(word)
    counts = {}
    for name, tok in tokenizers.items():
        per_word = [0] * len(words)
        for span in token_spans(tok, text).itertuples():
            last_char = span.end - 1  # a byte-level BPE span may begin with the space before its word
            for w, (start, end) in enumerate(starts):
                if start <= last_char < end:
                    per_word[w] += 1
                    break
        counts[name] = per_word
    return pd.DataFrame(counts, index=pd.Index(words, name="word"))


def plot_tokens_per_word(table: pd.DataFrame, ax=None):
    """Grouped bars of tokens_per_word(...): one group per word, one bar per tokenizer."""
    ax = _axes(ax, (max(7.0, 0.9 * len(table)), 3.5))
    width = 0.8 / len(table.columns)
    for j, name in enumerate(table.columns):
        ax.bar([i + (j - (len(table.columns) - 1) / 2) * width for i in range(len(table))],
               table[name], width=width, label=name, color=PALETTE[j])
    ax.set_xticks(range(len(table)), table.index, rotation=30, ha="right")
    ax.set_ylabel("tokens per word (count)")
    ax.set_xlabel("word of the sentence")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------- lesson 04: padding, temperature
def plot_padding_grid(tokens: Sequence[Sequence[str]], attention_mask: torch.Tensor,
                      position_ids: torch.Tensor, title: str = "", ax=None):
    """A batch as a grid: one cell per (row, column), pads shaded, each cell's token and position id."""
    import matplotlib.pyplot as plt  # noqa: F401  (registers the colormaps)
    from matplotlib.colors import ListedColormap

    mask = attention_mask.cpu()
    ax = _axes(ax, (1.25 * mask.shape[1] + 1, 0.8 * mask.shape[0] + 1.2))
    ax.imshow(mask.numpy(), cmap=ListedColormap([OKABE_ITO["grey"], OKABE_ITO["sky blue"]]),
              vmin=0, vmax=1, aspect="auto")
    for r in range(mask.shape[0]):
        for c in range(mask.shape[1]):
            label = "pad" if mask[r, c] == 0 else readable_token(tokens[r][c])
            ax.text(c, r, f"{label}\npos {int(position_ids[r, c])}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(mask.shape[1]))
    ax.set_yticks(range(mask.shape[0]), [f"row {r}" for r in range(mask.shape[0])])
    ax.set_xlabel("column of the batch tensor (index)")
    ax.set_title(title, fontsize=10)
    return ax


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of each distribution along the last axis (0 log 0 counts as 0)."""
    probs = probs.float()
    return -(probs * probs.clamp_min(1e-30).log2()).sum(-1)


def temperature_sweep(logits: torch.Tensor, temperatures: Sequence[float]) -> pd.DataFrame:
    """For 1-D logits: entropy (bits) and top-1 probability of softmax(logits / T) at each T."""
    if logits.dim() != 1:
        raise ValueError(f"expected 1-D logits, got shape {tuple(logits.shape)}")
    rows = []
    for t in temperatures:
        if t <= 0:
            raise ValueError(f"temperature must be > 0, got {t}")
        probs = (logits.float() / t).softmax(-1)
        rows.append({"temperature": t, "entropy (bits)": entropy_bits(probs).item(),
                     "top-1 probability": probs.max().item()})
    return pd.DataFrame(rows)


def plot_temperature(logits: torch.Tensor, tokenizer, temperatures: Sequence[float] = (0.5, 1.0, 2.0),
                     k: int = 10, standin: bool = False):
    """Left: the top-k tokens' probabilities at a few temperatures; right: entropy against temperature."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    order = logits.float().topk(k).indices
    names = [readable_token(tokenizer.decode([i])) for i in order.tolist()]
    width = 0.8 / len(temperatures)
    for j, t in enumerate(temperatures):
        probs = (logits.float() / t).softmax(-1)[order]
        left.bar([i + (j - (len(temperatures) - 1) / 2) * width for i in range(k)], probs.tolist(),
                 width=width, color=PALETTE[j], label=f"T = {t}")
    left.set_xticks(range(k), names, rotation=45, ha="right")
    left.set_ylim(0, 1)
    left.set_ylabel("probability (0 to 1)")
    left.set_xlabel("the T = 1 top tokens, best first")
    left.legend(fontsize=8)
    sweep = temperature_sweep(logits, [0.05 * 1.25 ** i for i in range(25)])
    maximum = math.log2(logits.numel())
    right.plot(sweep["temperature"], sweep["entropy (bits)"], color=PALETTE[4], marker=".")
    right.axhline(maximum, color=PALETTE[5], linestyle="--", label=f"uniform: {maximum:.1f} bits")
    right.set_xscale("log")
    right.set_ylim(0, maximum * 1.05)
    right.set_xlabel("temperature T (log scale)")
    right.set_ylabel("entropy of the next-token distribution (bits)")
    right.legend(fontsize=8)
    fig.tight_layout()
    if standin:
        caption(left, STANDIN_NOTE)
    return fig


# ---------------------------------------------------------------- lesson 05: decoding steps, cache
def step_table(step_logits: torch.Tensor, tokens: Sequence[int], tokenizer) -> pd.DataFrame:
    """Per decoding step: the chosen token, its probability and the distribution's entropy in bits."""
    probs = step_logits.float().softmax(-1)
    if len(tokens) != probs.shape[0]:
        raise ValueError(f"{len(tokens)} tokens for {probs.shape[0]} steps of logits")
    return pd.DataFrame({
        "step": range(1, len(tokens) + 1),
        "token": [readable_token(tokenizer.decode([t])) for t in tokens],
        "p(chosen)": [probs[i, t].item() for i, t in enumerate(tokens)],
        "entropy (bits)": entropy_bits(probs).tolist(),
    })


def plot_steps(table: pd.DataFrame, vocab_size: int, standin: bool = False):
    """Two panels over the steps of step_table(...): p(chosen token) on 0-1, entropy on 0-log2(vocab)."""
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.0, 0.6 * len(table) + 2), 5), sharex=True)
    top.bar(table["step"], table["p(chosen)"], color=PALETTE[4])
    top.set_ylim(0, 1)
    top.set_ylabel("p(chosen token)\n(0 to 1)")
    maximum = math.log2(vocab_size)
    bottom.plot(table["step"], table["entropy (bits)"], color=PALETTE[5], marker="o")
    bottom.axhline(maximum, color=PALETTE[7], linestyle="--", label=f"uniform: {maximum:.1f} bits")
    bottom.set_ylim(0, maximum * 1.05)
    bottom.set_ylabel("entropy (bits)")
    bottom.set_xticks(list(table["step"]), [f"{s}\n{t}" for s, t in zip(table["step"], table["token"])],
                      fontsize=8)
    bottom.set_xlabel("decoding step and the token chosen")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    if standin:
        caption(bottom, STANDIN_NOTE)
    return fig


def time_lengths(run: Callable[[int, bool], object], lengths: Sequence[int],
                 repeats: int = 3) -> pd.DataFrame:
    """Seconds of run(length, use_cache) for each length, with and without cache: median, min, max."""
    rows = []
    for length in lengths:
        for use_cache in (True, False):
            seconds = []
            for _ in range(repeats):
                began = time.perf_counter()
                run(length, use_cache)
                seconds.append(time.perf_counter() - began)
            seconds.sort()
            rows.append({"new tokens": length, "cache": use_cache, "median s": seconds[len(seconds) // 2],
                         "min s": seconds[0], "max s": seconds[-1]})
    return pd.DataFrame(rows)


def speedup_table(timings: pd.DataFrame) -> pd.DataFrame:
    """From time_lengths(...): per length, the median speed-up and its range (slowest/fastest ratio)."""
    cached = timings[timings["cache"]].set_index("new tokens")
    uncached = timings[~timings["cache"]].set_index("new tokens")
    return pd.DataFrame({
        "speed-up (median)": uncached["median s"] / cached["median s"],
        "lowest": uncached["min s"] / cached["max s"],
        "highest": uncached["max s"] / cached["min s"],
    })


def plot_speedup(timings: pd.DataFrame, ax=None):
    """Speed-up of the cache against output length, with the range over repeats as error bars."""
    table = speedup_table(timings)
    ax = _axes(ax, (6, 3.8))
    lengths = list(table.index)
    median = table["speed-up (median)"]
    ax.errorbar(lengths, median, yerr=[median - table["lowest"], table["highest"] - median],
                color=PALETTE[4], marker="o", capsize=4, label="median, bars: range over repeats")
    ax.axhline(1.0, color=PALETTE[7], linestyle="--", label="no speed-up")
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.set_ylim(0, max(2.0, float(table["highest"].max()) * 1.1))
    ax.set_xlabel("new tokens decoded (log scale)")
    ax.set_ylabel("time without cache / time with cache (×)")
    ax.legend(fontsize=8)
    return ax
