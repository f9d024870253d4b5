"""Run notebooks offline and keep only the outputs nbval compares.

    python tools/store_outputs.py notebooks/01_pipelines.ipynb [...]

Executes each notebook in a fresh kernel with COURSE_MODELS=offline, then stores outputs only on
cells tagged `nbval-check-output` (whose output must be the same online and offline). Those cells
keep an execution count (nbval skips a cell without one); every other count is cleared, as the
hygiene test requires.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CHECKED = "nbval-check-output"


def store_outputs(path: Path) -> int:
    """Execute `path` offline and rewrite it with outputs on checked cells only; count them."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(path.parent)}}).execute()
    kept = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        cell.metadata.pop("execution", None)
        if CHECKED in cell.metadata.get("tags", []):
            kept += 1
            cell.execution_count = kept
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = kept
        else:
            cell.outputs = []
    nb.metadata.pop("widgets", None)  # widget state is per session, not part of the lesson
    nbformat.write(nb, path)
    return kept


def main(paths: list[str]) -> None:
    """Store checked outputs for each notebook given on the command line."""
    os.environ["COURSE_MODELS"] = "offline"
    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in paths:
        print(f"{name}: kept outputs of {store_outputs(Path(name))} checked cells")


if __name__ == "__main__":
    main(sys.argv[1:])
