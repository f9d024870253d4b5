"""What a student gets back: a summary and a page naming each test, without the hidden tests."""

from __future__ import annotations

import html
from typing import Any

from .protocol import Result


def summary_text(r: Result, assignment: str, notebook: str) -> str:
    """The short per-student report: total, status, notes, one line per question."""
    lines = [f"{r.student}: {assignment} ({notebook})",
             f"score {r.total:g} / {r.max_total:g}   status: {r.status}"]
    lines += [f"note: {reason}" for reason in r.reasons]
    for gid, points in r.max_scores.items():
        detail = r.details.get(gid, "not graded" if r.status == "failed" else "")
        lines.append(f"  {gid:<24} {r.scores.get(gid, 0):g}/{points:g}  {detail}")
    return "\n".join(lines) + "\n"


def page(r: Result, assignment: str, notebook: str) -> str:
    """The default feedback page: per test, its score and message; no hidden test code."""
    rows = "\n".join(
        f"<tr><td>{html.escape(gid)}</td><td>{r.scores.get(gid, 0):g} / {points:g}</td>"
        f"<td>{html.escape(r.details.get(gid, 'not graded'))}</td></tr>"
        for gid, points in r.max_scores.items())
    notes = "".join(f"<li>{html.escape(reason)}</li>" for reason in r.reasons)
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(r.student)}"
            f" - {assignment}</title></head><body>\n<h1>{html.escape(r.student)}: {assignment}"
            f"</h1>\n<p>{html.escape(notebook)}: score <b>{r.total:g} / {r.max_total:g}</b>, "
            f"status {r.status}</p>\n" + (f"<ul>{notes}</ul>\n" if notes else "") +
            "<table border='1' cellpadding='4'><tr><th>test</th><th>score</th><th>result</th>"
            f"</tr>\n{rows}\n</table>\n</body></html>\n")


def full_page(nb: Any) -> str:
    """The whole executed notebook as HTML, hidden tests included (for instructors)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="classic").from_notebook_node(nbformat.from_dict(nb))
    return body
