"""Display helpers: top-k tables, probability bar charts and heatmaps, and whether a model is a stand-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

if TYPE_CHECKING:  # annotations only: importing torch here would slow the first import
    import torch

STANDIN_NOTE = "offline stand-in: random weights, these values are noise"


def is_standin(model_or_folder: Any) -> bool:
    """Whether a model, its config or a checkpoint folder is one of the course's random stand-ins."""
    if isinstance(model_or_folder, (str, Path)):
        config_file = Path(model_or_folder) / "config.json"
        if not config_file.is_file():
            return False
        return "course_standin" in json.loads(config_file.read_text())
    config = getattr(model_or_folder, "config", model_or_folder)
    return bool(getattr(config, "course_standin", None))


def readable_token(text: str) -> str:
    """A token as it can be read in a table or chart: quoted when blank or not printable."""
    return text if text.strip() and text.isprintable() else repr(text)


def topk_table(probs: torch.Tensor, tokenizer, k: int = 10) -> pd.DataFrame:
    """The k most probable tokens of a 1-D probability vector as a DataFrame."""
    if probs.dim() != 1:
        raise ValueError(f"expected one probability vector (1-D), got shape {tuple(probs.shape)}")
    values, ids = probs.topk(k)
    return pd.DataFrame({
        "token": [repr(tokenizer.decode([i])) for i in ids.tolist()],
        "id": ids.tolist(),
        "probability": [round(v, 4) for v in values.tolist()],
    })


def prob_bar_chart(labels: Sequence[str], probs: Sequence[float], title: str = "", ax=None,
                   standin: bool = False):
    """A horizontal bar chart of probabilities, highest on top; returns the matplotlib Axes.

    The axis always runs from 0 to 1, so a flat distribution looks flat: small bars are not stretched
    into apparent preferences. Each bar carries its value; the axis label says when every bar is small
    and, with `standin`, that the values are a random stand-in's noise.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.35 * len(labels) + 1))
    order = sorted(range(len(labels)), key=lambda i: probs[i])
    values = [float(probs[i]) for i in order]
    bars = ax.barh([readable_token(str(labels[i])) for i in order], values, color="#0072B2")  # Okabe-Ito blue
    ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], padding=3, fontsize=8)
    top = max(values, default=0.0)
    ax.set_xlim(0, 1)
    notes = []
    if 0 < top < 0.1:
        notes.append("every bar below 0.1: read the numbers")
    if standin:
        notes.append(STANDIN_NOTE)
    ax.set_xlabel("probability (0 to 1" + "".join(f"; {n}" for n in notes) + ")")
    ax.set_title(title)
    return ax


def heatmap(values, row_labels: Sequence[str], col_labels: Sequence[str], title: str = "",
            cell_text: Sequence[Sequence[str]] | None = None, ax=None,
            vmin: float | None = None, vmax: float | None = None):
    """A heatmap of a 2-D array with labelled axes and optional text in each cell."""
    import matplotlib.pyplot as plt
    import numpy as np

    values = np.asarray(values, dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * len(col_labels) + 2, 0.5 * len(row_labels) + 1.5))
    image = ax.imshow(values, cmap="viridis", aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(col_labels)), [str(c) for c in col_labels], rotation=30, ha="right")
    ax.set_yticks(range(len(row_labels)), [str(r) for r in row_labels])
    if cell_text is not None:
        low = values.min() if vmin is None else vmin
        high = values.max() if vmax is None else vmax
        for r, row in enumerate(cell_text):
            for c, text in enumerate(row):
                light = values[r, c] < low + 0.6 * (high - low)  # dark cells get white text
                ax.text(c, r, text, ha="center", va="center", fontsize=8,
                        color="white" if light else "black")
    ax.figure.colorbar(image, ax=ax)
    ax.set_title(title)
    return ax
