"""A tiny nbgrader assignment (two questions, no model) for tests of the batch machinery.

Its kernel starts and runs in about a second, so tests of Dask, rosters and summaries can grade a
dozen submissions quickly; the scores are known: the source earns 3 of 3, the student version 0,
`half` answers only q1 (1 of 3).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NAME = "98_tiny_exercises.ipynb"
ASSIGNMENT = "lesson98"


def _cell(kind: Any, text: str, gid: str, **flags: Any) -> Any:
    meta = {"grade": False, "solution": False, "locked": True, "schema_version": 3,
            "grade_id": gid, **flags}
    return kind(text, metadata={"nbgrader": meta})


def versions() -> dict[str, Any]:
    """{"source": with solutions, "student": unanswered, "half": q1 answered only}."""
    cells = [_cell(new_markdown_cell, "# Tiny exercises", "intro"),
             _cell(new_code_cell, "import math", "setup"),
             _cell(new_code_cell, "### BEGIN SOLUTION\nx = 2\n### END SOLUTION", "q1_answer",
                   solution=True, locked=False),
             _cell(new_code_cell, "assert x == 2", "q1_test", grade=True, points=1),
             _cell(new_code_cell, "### BEGIN SOLUTION\ny = math.sqrt(16)\n### END SOLUTION",
                   "q2_answer", solution=True, locked=False),
             _cell(new_code_cell, "assert y == 4\n### BEGIN HIDDEN TESTS\nassert y > 0\n"
                   "### END HIDDEN TESTS", "q2_test", grade=True, points=2)]
    source = new_notebook(cells=cells)
    student = copy.deepcopy(source)
    for i in (2, 4):
        student.cells[i].source = "# YOUR CODE HERE\nraise NotImplementedError()"
    student.cells[5].source = "assert y == 4"
    half = copy.deepcopy(student)
    half.cells[2].source = "x = 1 + 1"
    return {"source": source, "student": student, "half": half}


SCORES = {"source": 3.0, "student": 0.0, "half": 1.0}


def exercises(root: Path) -> Path:
    """An exercises folder holding only the tiny assignment's source."""
    folder = root / "exercises"
    (folder / "source" / ASSIGNMENT).mkdir(parents=True, exist_ok=True)
    nbformat.write(versions()["source"], folder / "source" / ASSIGNMENT / NAME)
    return folder


def submissions(folder: Path, kinds: list[str]) -> dict[str, str]:
    """One entry per kind (student s00, s01, ...); {entry: kind}."""
    made, nbs = {}, versions()
    for n, kind in enumerate(kinds):
        entry = f"s{n:02d}"
        (folder / entry).mkdir(parents=True)
        nbformat.write(nbs[kind], folder / entry / NAME)
        made[entry] = kind
    return made
