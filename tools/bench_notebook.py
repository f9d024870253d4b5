"""Run one notebook in a fresh kernel and report how it went (a child process of tools/benchmark.py).

    python tools/bench_notebook.py NOTEBOOK WORKDIR EXECUTED_OUT

Prints one line `RESULT {"status": "ok" | "error", "error": ..., "execute_s": ...}` and writes the
executed notebook to EXECUTED_OUT.
"""

from __future__ import annotations

import json
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def first_line(text: str) -> str:
    """The first line of an error's text, or nothing."""
    return text.splitlines()[0] if text else ""


def main(notebook: str, workdir: str, executed: str) -> None:
    """Execute `notebook` with `workdir` as its folder; print the RESULT line; save the output."""
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=600, startup_timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": workdir}})
    start = time.perf_counter()
    report = {"status": "ok"}
    try:
        client.execute()
    except CellExecutionError as err:
        report = {"status": "error", "error": f"{err.ename}: {first_line(str(err.evalue))}"}
    except Exception as err:
        report = {"status": "error", "error": f"{type(err).__name__}: {first_line(str(err))}"}
    report["execute_s"] = time.perf_counter() - start
    nbformat.write(nb, executed)
    print("RESULT " + json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:4])
