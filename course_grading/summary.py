"""The instructor's summary of a batch: counts by status, each question's score distribution (a
small table and a histogram PNG), and the submissions to check by hand.

Written to OUT/summary.txt and OUT/scores.png after every batch, and printed.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Sequence

from .protocol import Result

STATUSES = ("ok", "partial", "failed")


def status_counts(results: Sequence[Result]) -> dict[str, int]:
    """How many results have each status (ok, partial, failed, then any other)."""
    counts = Counter(r.status for r in results)
    return {s: counts.get(s, 0) for s in STATUSES} | {s: n for s, n in counts.items()
                                                       if s not in STATUSES}


def question_table(results: Sequence[Result], max_scores: dict[str, float]) -> list[dict[str, Any]]:
    """Per question: its maximum, mean, and how many scored full, part and zero."""
    table = []
    for gid, top in max_scores.items():
        got = [float(r.scores.get(gid, 0)) for r in results]
        table.append({"question": gid, "max": top,
                      "mean": sum(got) / len(got) if got else math.nan,
                      "full": sum(g >= top > 0 for g in got),
                      "part": sum(0 < g < top for g in got),
                      "zero": sum(g <= 0 for g in got)})
    return table


def table_text(table: list[dict[str, Any]]) -> list[str]:
    """The table as aligned text lines."""
    width = max([len("question")] + [len(row["question"]) for row in table])
    lines = [f"{'question':<{width}}  {'max':>5}  {'mean':>5}  {'full':>5}  {'part':>5}  "
             f"{'zero':>5}"]
    for row in table:
        mean = "-" if math.isnan(row["mean"]) else f"{row['mean']:.2f}"
        lines.append(f"{row['question']:<{width}}  {row['max']:>5g}  {mean:>5}  "
                     f"{row['full']:>5}  {row['part']:>5}  {row['zero']:>5}")
    return lines


def check_by_hand(results: Sequence[Result]) -> list[str]:
    """'student (source): why' for every result the grader flagged for a look."""
    flagged = []
    for r in sorted(results, key=lambda r: (r.student, r.source)):
        why = [x for x in r.reasons if x.startswith("check by hand")]
        if r.flags and not why:
            why = ["check by hand: the tamper detector saw " + "; ".join(r.flags[:3])]
        if why:
            flagged.append(f"{r.student} ({r.source}): {'; '.join(why)}")
    return flagged


def import_plotting() -> None:
    """Import matplotlib's pyplot on the Agg backend (0.6 s: a batch does it early, in a thread,
    once its last submissions leave a core idle)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def histogram(results: Sequence[Result], max_scores: dict[str, float], path: Path,
              title: str = "") -> Optional[Path]:
    """One small histogram per question (points earned vs number of submissions), as a PNG."""
    if not max_scores:
        return None
    import_plotting()
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(max_scores)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    with plt.style.context("tableau-colorblind10"):
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False,
                                 constrained_layout=True)
        for ax, (gid, top) in zip(axes.flat, max_scores.items()):
            got = np.array([float(r.scores.get(gid, 0)) for r in results])
            if top == int(top) and top <= 20:  # one bar per whole point
                edges = np.arange(-0.5, top + 1.0, 1.0)
            else:
                edges = np.linspace(0, max(top, 1e-9), 11)
            ax.hist(got, bins=edges, color="C0", edgecolor="white")
            ax.set_title(gid, fontsize=9)
            ax.set_xlabel(f"points earned (of {top:g})")
            ax.set_ylabel("submissions")
            ax.yaxis.get_major_locator().set_params(integer=True)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        fig.suptitle(f"{title}: score per question, {len(results)} submissions" if title else
                     f"score per question, {len(results)} submissions", fontsize=10)
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return path


def summary_lines(results: Sequence[Result], max_scores: dict[str, float],
                  assignment: str = "", gradebook: Any = None) -> list[str]:
    """The summary as text lines (what summary.txt holds and the batch prints)."""
    counts = status_counts(results)
    lines = [f"{assignment}: {len(results)} graded: " +
             ", ".join(f"{n} {s}" for s, n in counts.items())]
    if results:
        totals = [r.total for r in results]
        top = sum(max_scores.values())
        lines.append(f"total: mean {sum(totals) / len(totals):.2f} of {top:g}, "
                     f"{sum(t >= top > 0 for t in totals)} full marks, "
                     f"{sum(t <= 0 for t in totals)} zero")
    lines += table_text(question_table(results, max_scores))
    flagged = check_by_hand(results)
    lines.append(f"check by hand: {len(flagged)}" + (":" if flagged else ""))
    lines += [f"  {line}" for line in flagged]
    if gradebook is not None:
        lines.append(gradebook.summary_line(results))
    return lines


def write_summary(results: Sequence[Result], max_scores: dict[str, float], out: Path,
                  assignment: str = "", gradebook: Any = None) -> list[str]:
    """Write OUT/summary.txt and OUT/scores.png; return the summary's lines."""
    from .batch import _write_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = summary_lines(results, max_scores, assignment, gradebook)
    png = histogram(results, max_scores, out / "scores.png", assignment) if results else None
    if png is not None:
        lines.append(f"score histogram: {png}")
    _write_atomic(out / "summary.txt", "\n".join(lines) + "\n")
    return lines
