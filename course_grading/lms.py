"""Gradebook files an LMS imports: a roster maps submissions to students, then Canvas or Moodle.

The roster (--roster roster.csv) has a header row; `submission` (the entry's name in the
submissions folder, e.g. `ann` for ann/ or ann.ipynb) and `name` are required, then the LMS's
identifiers: `email` and/or `idnumber` for Moodle, `id`, `sis_user_id`, `sis_login_id` and
`section` for Canvas. Every roster student gets a row (an empty grade without a submission);
submissions not on the roster go to OUT/not-on-roster.csv.

Formats followed (README, "For instructors", cites the pages):
- Canvas, "How do I import grades in the Gradebook?": the first columns are Student, ID,
  SIS User ID, SIS Login ID, Section (a student is matched by ID or SIS User ID or SIS Login ID),
  then one column per assignment (a new name creates the assignment); the optional second row
  "Points Possible" gives each assignment's maximum, as Canvas's own export writes it.
- Moodle, "Grade import" (CSV): the same columns as Moodle's grade export; at import the
  instructor maps "Email address" to useremail (or "ID number" to useridnumber) and the grade
  column to the grade item.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from .protocol import Result

COLUMNS = ("submission", "name", "email", "idnumber", "id", "sis_user_id", "sis_login_id",
           "section")
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MAX_ROSTER_BYTES = 20_000_000


@dataclass
class Student:
    """One roster row: who a submission belongs to, as the LMS knows them."""

    submission: str
    name: str
    email: str = ""
    idnumber: str = ""
    id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""


def read_roster(path: Path, lms: str = "") -> list[Student]:
    """The roster's students; SystemExit with one line naming the problem when it is unusable."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_ROSTER_BYTES:
            raise SystemExit(f"course grading: roster {path} is over {MAX_ROSTER_BYTES:,} bytes")
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise SystemExit(f"course grading: cannot read roster {path} "
                         f"({err.strerror or type(err).__name__})") from None
    except UnicodeDecodeError:
        raise SystemExit(f"course grading: roster {path} is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    rows = [r for r in reader if any(cell.strip() for cell in r)]
    if not rows:
        raise SystemExit(f"course grading: roster {path} is empty")
    header = [h.strip().lower().replace(" ", "_") for h in rows[0]]
    missing = [c for c in ("submission", "name") if c not in header]
    if missing:
        raise SystemExit(f"course grading: roster {path} has no {' or '.join(missing)} column "
                         f"(its header: {', '.join(rows[0])}; known: {', '.join(COLUMNS)})")
    students, seen, problems = [], set(), []
    for line, row in enumerate(rows[1:], start=2):
        data = {h: (row[j].strip() if j < len(row) else "") for j, h in enumerate(header)
                if h in COLUMNS}
        if not data.get("submission"):
            problems.append(f"line {line}: no submission name")
            continue
        if data["submission"] in seen:
            problems.append(f"line {line}: submission {data['submission']!r} listed twice")
            continue
        seen.add(data["submission"])
        student = Student(**data)
        if lms == "canvas" and not (student.id or student.sis_user_id or student.sis_login_id):
            problems.append(f"line {line}: Canvas needs id, sis_user_id or sis_login_id")
        if lms == "moodle" and not (student.email or student.idnumber):
            problems.append(f"line {line}: Moodle needs email or idnumber")
        students.append(student)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise SystemExit(f"course grading: roster {path}: {'; '.join(problems[:3])}{more}")
    return students


@dataclass
class Match:
    """Results against the roster: each student's chosen result, the rest."""

    rows: list[tuple[Student, Optional[Result]]]
    not_on_roster: list[Result]
    duplicates: dict[str, list[Result]]  # submission -> every result it matched (two or more)


def match(students: Sequence[Student], results: Sequence[Result]) -> Match:
    """Each student's result (by entry name, then case-insensitively); several: the highest."""
    exact = {s.submission: s for s in students}
    folded = {s.submission.casefold(): s for s in students}
    found: dict[str, list[Result]] = {}
    extra = []
    for r in results:
        names = [r.source, r.student, os.path.splitext(r.source)[0]]
        student = next((exact[n] for n in names if n in exact), None) or \
            next((folded[n.casefold()] for n in names if n.casefold() in folded), None)
        if student is None:
            extra.append(r)
        else:
            found.setdefault(student.submission, []).append(r)
    rows = [(s, max(found[s.submission], key=lambda r: (r.total, r.status == "ok"))
             if s.submission in found else None) for s in students]
    duplicates = {k: v for k, v in found.items() if len(v) > 1}
    return Match(rows, sorted(extra, key=lambda r: r.source), duplicates)


def _csv(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def canvas_rows(m: Match, title: str, max_total: float) -> list[list[Any]]:
    """Canvas's gradebook import layout: the five student columns, then the assignment."""
    rows: list[list[Any]] = [CANVAS_HEADER + [title],
                             ["Points Possible", "", "", "", "", f"{max_total:g}"]]
    for s, r in m.rows:
        rows.append([s.name, s.id, s.sis_user_id, s.sis_login_id, s.section,
                     "" if r is None else f"{r.total:g}"])
    return rows


def moodle_rows(m: Match, title: str) -> list[list[Any]]:
    """Moodle's grade import CSV: identifier columns as its export names them, then the grade."""
    has_email = any(s.email for s, _ in m.rows)
    has_idnumber = any(s.idnumber for s, _ in m.rows)
    header = (["Email address"] if has_email else []) + (["ID number"] if has_idnumber else [])
    rows: list[list[Any]] = [header + ["Full name", title]]
    for s, r in m.rows:
        ids = ([s.email] if has_email else []) + ([s.idnumber] if has_idnumber else [])
        rows.append(ids + [s.name, "" if r is None else f"{r.total:g}"])
    return rows


class Gradebook:
    """The roster of one batch and the LMS file it writes beside grades.csv."""

    def __init__(self, students: list[Student], lms: str, title: str, assignment: str,
                 max_scores: dict[str, float], out: Path):
        self.students, self.lms, self.title = students, lms, title
        self.assignment, self.max_total, self.out = assignment, sum(max_scores.values()), out

    @classmethod
    def from_settings(cls, settings: Any, assignment: str, max_scores: dict[str, float],
                      out: Path) -> Optional["Gradebook"]:
        """None without --roster."""
        if not settings.roster:
            return None
        lms = (settings.lms or "").lower()
        return cls(read_roster(Path(settings.roster), lms), lms,
                   settings.lms_assignment or assignment, assignment, max_scores, Path(out))

    @property
    def path(self) -> Optional[Path]:
        """OUT/<lms>-<assignment>.csv (None without --lms)."""
        return self.out / f"{self.lms}-{self.assignment}.csv" if self.lms else None

    def write(self, results: Sequence[Result]) -> Match:
        """Rewrite the LMS file and OUT/not-on-roster.csv from the results so far."""
        from .batch import _write_atomic

        m = match(self.students, results)
        self.out.mkdir(parents=True, exist_ok=True)
        if self.lms == "canvas":
            _write_atomic(self.path, _csv(canvas_rows(m, self.title, self.max_total)))
        elif self.lms == "moodle":
            _write_atomic(self.path, _csv(moodle_rows(m, self.title)))
        extra = [["source", "student", "total", "max", "status"]] + [
            [r.source, r.student, f"{r.total:g}", f"{r.max_total:g}", r.status]
            for r in m.not_on_roster]
        _write_atomic(self.out / "not-on-roster.csv", _csv(extra))
        return m

    def summary_line(self, results: Sequence[Result]) -> str:
        """One line: who is graded, who has no submission, what is not on the roster."""
        m = match(self.students, results)
        graded = sum(r is not None for _, r in m.rows)
        line = (f"roster: {graded} of {len(m.rows)} students graded, "
                f"{len(m.rows) - graded} without a submission (empty grade)")
        if m.not_on_roster:
            line += (f"; {len(m.not_on_roster)} submission(s) not on the roster "
                     f"({', '.join(r.source for r in m.not_on_roster[:5])}"
                     f"{', ...' if len(m.not_on_roster) > 5 else ''}; see "
                     f"{self.out / 'not-on-roster.csv'})")
        if m.duplicates:
            line += (f"; {len(m.duplicates)} student(s) with several submissions, the highest "
                     f"used: {', '.join(sorted(m.duplicates))}")
        if self.path is not None:
            line += f"; wrote {self.path}"
        return line
