"""Submitted notebooks: read them, repair what an editor broke, restore the course's cells."""

from __future__ import annotations

import copy
import re
from typing import Any


def nbgrader_meta(cell: Any) -> dict:
    """The cell's nbgrader metadata, or {} when it has none (or something that is not a dict)."""
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
    return meta if isinstance(meta, dict) else {}


def read_notebook(raw: bytes) -> tuple[Any, str]:
    """The notebook in these bytes as nbformat 4, or (None, why it is not a notebook)."""
    import nbformat

    if not raw.strip():
        return None, "empty file"
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except UnicodeDecodeError:
        return None, "not a notebook: binary data, not UTF-8 text"
    except Exception as err:  # NotJSONError, JSONDecodeError, an unreadable nbformat version
        kind = "invalid JSON" if "JSON" in type(err).__name__ else type(err).__name__
        return None, f"not a notebook ({kind})"
    if not isinstance(nb.get("cells"), list):
        return None, "not a notebook: no list of cells"
    for cell in nb.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw") \
                or not isinstance(cell.get("source", ""), str):
            return None, "not a notebook: a cell is malformed"
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
    return nb, ""


# Code in a learner's cells that could fool the grader: a custom exception handler swallows a
# failing assert; re-binding a checker makes every answer "correct". Flagged for a human.
SUSPICIOUS = re.compile(r"set_custom_exc|excepthook|__builtins__|\bbuiltins\b"
                        r"|^\s*(?:ex|cu|course_utils|feedback|checks)\.[\w.]+\s*=(?!=)", re.M)


def suspicious(nb: Any) -> list[str]:
    """grade_ids (or cell numbers) of editable cells whose code could fool the grader."""
    found = []
    for i, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code" and not meta.get("locked") and SUSPICIOUS.search(cell.source):
            found.append(meta.get("grade_id") or f"cell {i}")
    return found


def repair(nb: Any, release_nb: Any, source_nb: Any) -> list[str]:
    """Fix nbgrader metadata and restore deleted locked cells in place; say what was wrong.

    nbgrader itself restores edited locked cells, but fails a whole notebook on corrupted
    metadata, and its re-adding of deleted test cells fails when the cell before a test is not a
    graded cell (our self-check cells). Deleted answer cells stay deleted: that question scores 0.
    """
    rel = {nbgrader_meta(c)["grade_id"]: c for c in release_nb.cells
           if nbgrader_meta(c).get("grade_id")}
    src = {nbgrader_meta(c)["grade_id"]: c for c in source_nb.cells
           if nbgrader_meta(c).get("grade_id")}
    order = list(rel)
    reasons: list[str] = []
    seen: dict[str, Any] = {}
    for cell in nb.cells:  # the first cell of each known grade_id gets the course's metadata
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in rel and gid not in seen:
            seen[gid] = cell
            cell.metadata["nbgrader"] = copy.deepcopy(rel[gid].metadata["nbgrader"])
        else:  # unknown or duplicate: an ordinary cell of the student's
            cell.metadata.pop("nbgrader", None)
    recovered = _recover_by_content(nb, rel, order, seen)
    if recovered:
        reasons.append(f"nbgrader metadata was missing from {recovered} cell(s): matched to the "
                       "assignment by content and position")
    edited = [gid for gid, cell in seen.items()
              if nbgrader_meta(rel[gid]).get("locked") and rel[gid].cell_type == "code"
              and cell.source.strip() not in (rel[gid].source.strip(), src[gid].source.strip())]
    if edited:
        reasons.append(f"edited locked cell(s) restored from the source: {', '.join(edited)}")
    missing = [gid for gid in order if gid not in seen]
    answers = [gid for gid in missing if nbgrader_meta(rel[gid]).get("solution")]
    if answers:
        reasons.append(f"answer cell(s) deleted, their questions score zero: {', '.join(answers)}")
    restored = [gid for gid in missing if gid not in answers]
    for gid in restored:  # each deleted locked cell goes back after its nearest predecessor
        before = order[:order.index(gid)]
        anchor = next((seen[g] for g in reversed(before) if g in seen), None)
        at = next(i for i, c in enumerate(nb.cells) if c is anchor) + 1 if anchor is not None else 0
        cell = copy.deepcopy(rel[gid])
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        nb.cells.insert(at, cell)
        seen[gid] = cell
    shown = [gid for gid in restored if rel[gid].cell_type == "code"]
    if shown:
        reasons.append(f"deleted locked cell(s) restored from the source: {', '.join(shown)}")
    flagged = suspicious(nb)
    if flagged:
        reasons.append(f"check by hand: code that could fool the grader in {', '.join(flagged)}")
    _fix_cell_ids(nb)
    return reasons


def _recover_by_content(nb: Any, rel: dict, order: list[str], seen: dict) -> int:
    """Give back metadata an editor stripped: locked cells by their source, answers by slot."""
    if len(seen) == len(rel):
        return 0
    recovered = 0
    by_source = {c.source.strip(): gid for gid, c in rel.items()
                 if nbgrader_meta(c).get("locked") and c.source.strip()}
    for cell in nb.cells:
        gid = by_source.get(cell.source.strip())
        if "nbgrader" not in cell.metadata and gid and gid not in seen:
            seen[gid] = cell
            cell.metadata["nbgrader"] = copy.deepcopy(rel[gid].metadata["nbgrader"])
            recovered += 1
    position = {id(c): i for i, c in enumerate(nb.cells)}
    for k, gid in enumerate(order):
        if gid in seen or not nbgrader_meta(rel[gid]).get("solution") or not 0 < k < len(order) - 1:
            continue
        prev, nxt = seen.get(order[k - 1]), seen.get(order[k + 1])
        if prev is None or nxt is None or position[id(prev)] > position[id(nxt)]:
            continue
        between = nb.cells[position[id(prev)] + 1:position[id(nxt)]]
        plain = [c for c in between if "nbgrader" not in c.metadata]
        if len(plain) == 1 and plain[0].cell_type == rel[gid].cell_type:
            seen[gid] = plain[0]
            plain[0].metadata["nbgrader"] = copy.deepcopy(rel[gid].metadata["nbgrader"])
            recovered += 1
    return recovered


def _fix_cell_ids(nb: Any) -> None:
    """Unique valid cell ids (nbformat 4.5+), or none at all (older minor versions)."""
    if nb.get("nbformat_minor", 0) < 5:
        for cell in nb.cells:
            cell.pop("id", None)
        return
    used: set[str] = set()
    for i, cell in enumerate(nb.cells):
        cid = cell.get("id")
        if not isinstance(cid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cid) or cid in used:
            cid = f"cell-{i}"
            while cid in used:
                cid += "x"
            cell["id"] = cid
        used.add(cid)


def restore_course_cells(nb: Any, release_nb: Any, source_nb: Any) -> list[int]:
    """Locked cells back to the course's text (tests with their hidden part); outputs cleared.

    Returns the indices of the cells the student cannot change (what nbgrader's OverwriteCells
    does from its gradebook, done here from the grader's own copy of the source).
    """
    rel = {nbgrader_meta(c)["grade_id"]: c for c in release_nb.cells
           if nbgrader_meta(c).get("grade_id")}
    src = {nbgrader_meta(c)["grade_id"]: c for c in source_nb.cells
           if nbgrader_meta(c).get("grade_id")}
    locked = []
    for i, cell in enumerate(nb.cells):
        gid = nbgrader_meta(cell).get("grade_id")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if gid not in rel or not nbgrader_meta(rel[gid]).get("locked"):
            continue
        course = src[gid] if nbgrader_meta(rel[gid]).get("grade") and gid in src else rel[gid]
        if course.cell_type != cell.cell_type:
            cell.cell_type = course.cell_type
            if course.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        cell.source = course.source
        locked.append(i)
    return locked
