"""Notebooks are stored clean and share the course's opening cells."""

from __future__ import annotations

import re

import nbformat
import pytest

from conftest import ROOT, exercise_releases, exercise_sources, lesson_notebooks

CHECKED = "nbval-check-output"
SETUP = (ROOT / "CONTRIBUTING.md").read_text().split("Setup cell (verbatim):\n```python\n")[1]
SETUP = SETUP.split("```")[0].strip()
ALL = lesson_notebooks() + exercise_sources() + exercise_releases()
BADGE = re.compile(
    r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
    r"\(https://colab\.research\.google\.com/github/transformers-from-the-inside/course/blob/main/"
    r"(?P<path>[^)]+)\)"
)


def ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def test_there_are_lessons_and_exercises():
    assert len(lesson_notebooks()) >= 1 and len(exercise_sources()) >= 1


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_valid_nbformat_4_with_python3_kernel(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert "widgets" not in nb.metadata, "stored widget state: run tools/store_outputs.py"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_outputs_only_on_checked_cells(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        checked = CHECKED in cell.metadata.get("tags", [])
        if not checked:
            assert cell.execution_count is None, f"cell {i} has an execution count"
            assert cell.outputs == [], f"cell {i} stores outputs but is not tagged {CHECKED}"
        elif cell.outputs:
            assert cell.execution_count is not None, f"checked cell {i} needs its execution count"


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_opens_with_badge_to_itself_and_the_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    first, second = nb.cells[0], nb.cells[1]
    match = BADGE.search(first.source)
    assert first.cell_type == "markdown" and match, "first cell needs the Colab badge"
    expected = path.relative_to(ROOT)
    if "source" in expected.parts:  # a source's badge points at the student version
        expected = ROOT.joinpath(*["release" if p == "source" else p for p in expected.parts])
        expected = expected.relative_to(ROOT)
    assert match["path"] == str(expected)
    assert re.search(r"\b\d+ minutes\b", first.source), "say roughly how long it takes"
    assert second.cell_type == "code" and second.source.strip() == SETUP


@pytest.mark.parametrize("path", lesson_notebooks(), ids=ids(lesson_notebooks()))
def test_lesson_closes_with_what_we_verified(path):
    nb = nbformat.read(path, as_version=4)
    headings = [i for i, c in enumerate(nb.cells)
                if c.cell_type == "markdown" and c.source.startswith("## What we verified")]
    assert headings, "a lesson ends with a '## What we verified' section"
    closing = "\n".join(c.source for c in nb.cells[headings[-1]:] if c.cell_type == "code")
    assert len(re.findall(r"\bcheck(_close)?\(", closing)) >= 3


@pytest.mark.parametrize("path", exercise_sources(), ids=ids(exercise_sources()))
def test_exercise_source_is_nbgrader_format(path):
    nb = nbformat.read(path, as_version=4)
    grade_ids = []
    graded = 0
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        assert meta, f"cell {i} lacks nbgrader metadata"
        assert meta["schema_version"] == 3
        grade_ids.append(meta["grade_id"])
        if meta.get("solution"):
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
            assert not meta.get("locked"), f"answer cell {i} must not be locked"
        if meta.get("grade") and cell.cell_type == "code":
            graded += 1
            assert meta["points"] > 0 and meta.get("locked"), f"test cell {i}"
    assert len(grade_ids) == len(set(grade_ids)), "grade_ids must be unique"
    assert graded >= 3, "at least three graded questions"
