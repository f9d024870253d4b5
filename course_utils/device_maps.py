"""Device maps as a table and a picture: where each module of a model goes, and how much it weighs.

Taught in lesson 08 (notebooks/08_memory_and_precision.ipynb), whose `export` cells hold these
definitions. `sizes` is accelerate's `compute_module_sizes(model, dtype)`: bytes per module name.
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

# Okabe-Ito, a colour-blind-safe palette: one colour per place a module can live.
DEVICE_COLOURS = {"gpu": "#0072B2", "cpu": "#E69F00", "disk": "#CC79A7", "mps": "#009E73"}


def place(device: Any) -> str:
    """The kind of place a device-map value names: "gpu" (an int or "cuda:N"), "cpu", "disk", "mps"."""
    text = str(device)
    if isinstance(device, int) or text.isdigit() or text.startswith("cuda"):
        return "gpu"
    return text.split(":")[0]


def device_map_table(device_map: Mapping[str, Any], sizes: Mapping[str, int]) -> pd.DataFrame:
    """One row per device of `device_map`: its modules, their bytes and GB (10**9 bytes)."""
    rows: dict[str, dict[str, Any]] = {}
    for name, device in device_map.items():
        row = rows.setdefault(str(device), {"device": str(device), "modules": 0, "bytes": 0,
                                            "first": name, "last": name})
        row["modules"] += 1
        row["bytes"] += int(sizes.get(name, 0))
        row["last"] = name
    table = pd.DataFrame(list(rows.values()), columns=["device", "modules", "bytes", "first", "last"])
    table.insert(3, "GB", (table["bytes"] / 1e9).round(3))
    return table


def plot_device_map(device_map: Mapping[str, Any], sizes: Mapping[str, int], title: str) -> Any:
    """A bar per module of `device_map`, in model order, its height the module's GB, coloured by device."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    names = list(device_map)
    places = [place(device_map[n]) for n in names]
    heights = [sizes.get(n, 0) / 1e9 for n in names]
    fig, ax = plt.subplots(figsize=(9, 2.8))
    ax.bar(range(len(names)), heights, color=[DEVICE_COLOURS.get(p, "#999999") for p in places],
           edgecolor="black", linewidth=0.3)
    step = max(1, len(names) // 12)
    ticks = sorted(set(range(0, len(names), step)) | {len(names) - 1})
    ax.set_xticks(ticks, [names[i].rsplit(".", 1)[-1] for i in ticks], fontsize=8)
    ax.set_xlabel("module, in the order the model runs them (numbers are decoder layers)")
    ax.set_ylabel("weights (GB)")
    ax.set_title(title)
    used = [p for p in DEVICE_COLOURS if p in places]
    ax.legend(handles=[Patch(color=DEVICE_COLOURS[p], label=p) for p in used], loc="upper center",
              ncol=len(used), fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.32))
    fig.tight_layout()
    return fig
