"""The submissions folder: one Submission per entry, whatever its name or kind; which lesson."""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

MAX_NOTEBOOK_BYTES = 50_000_000


@dataclass
class Submission:
    """One entry of the submissions folder (data None: nothing gradable, `note` says why)."""

    student: str
    source: str  # the entry's path relative to the submissions folder
    data: Optional[bytes] = None  # the notebook's bytes, read once by the grader
    note: str = ""
    graded_file: str = ""  # the notebook graded, relative to the folder


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _read(path: Path, root: Path, rel: str) -> tuple[Optional[bytes], str]:
    """The file's bytes, or why not: symlinks out of the folder, broken links, huge files."""
    if path.is_symlink():
        target = Path(os.path.realpath(path))
        if not target.exists():
            return None, f"broken symlink {rel}"
        if not _inside(target, root):
            return None, f"{rel} is a symlink to outside the submissions folder: refused"
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return None, f"{rel} is not a regular file"
        if info.st_size > MAX_NOTEBOOK_BYTES:
            return None, f"{rel} is {info.st_size:,} bytes (over {MAX_NOTEBOOK_BYTES:,}): not graded"
        with open(path, "rb") as f:
            return f.read(MAX_NOTEBOOK_BYTES + 1), ""
    except OSError as err:
        return None, f"{rel} cannot be read ({err.strerror or type(err).__name__})"


def _notebooks_in(folder: Path, root: Path) -> list[Path]:
    """Every .ipynb under `folder` (not through symlinked folders, not in checkpoints)."""
    found = []
    for base, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
        found += [Path(base) / name for name in sorted(files) if name.endswith(".ipynb")]
    return sorted(found, key=lambda p: (len(p.parts), str(p)))


def student_name(entry: str) -> str:
    """The student a folder or file stands for: the name without .ipynb (kept when nothing is left)."""
    stem = entry[:-len(".ipynb")] if entry.endswith(".ipynb") else entry
    return stem if stem.strip(".") else entry


def find_submissions(folder: Path, notebook: str, skip: tuple[Path, ...] = ()) -> list[Submission]:
    """One Submission per entry of `folder` (dot-files and odd names included), sorted by name."""
    root = Path(os.path.realpath(folder))
    skipped = {Path(os.path.realpath(p)) for p in skip}
    subs = []
    for entry in sorted(Path(folder).iterdir(), key=lambda p: p.name):
        if Path(os.path.realpath(entry)) in skipped and not entry.is_symlink():
            continue
        name, rel = student_name(entry.name), entry.name
        if entry.is_symlink() or entry.is_file():
            if entry.is_dir():  # a symlinked folder
                target = Path(os.path.realpath(entry))
                if not _inside(target, root):
                    subs.append(Submission(name, rel, note=f"{rel} is a symlink to outside the "
                                                           "submissions folder: refused"))
                    continue
            elif not entry.name.endswith(".ipynb"):
                data, why = _read(entry, root, rel)
                subs.append(Submission(name, rel, note=why or f"{rel} is not a notebook "
                                                               "(.ipynb) nor a folder"))
                continue
            else:
                data, why = _read(entry, root, rel)
                subs.append(Submission(name, rel, data, why, rel))
                continue
        if not entry.is_dir():
            subs.append(Submission(name, rel, note=f"{rel} is not a file or folder"))
            continue
        found = _notebooks_in(entry, root)
        exact = [p for p in found if p.name == notebook]
        pick, note = (exact[0], "") if exact else (found[0], "") if len(found) == 1 else (None, "")
        if pick is None:
            names = ", ".join(p.name for p in found[:5])
            note = (f"{len(found)} notebooks, none named {notebook}: {names}" if found
                    else "no .ipynb file in the folder")
            subs.append(Submission(name, rel, note=note))
            continue
        graded = str(pick.relative_to(folder))
        data, why = _read(pick, root, graded)
        if not why and pick.name != notebook:
            why = f"graded {pick.name} (expected name {notebook})"
            subs.append(Submission(name, rel, data, why, graded))
        else:
            subs.append(Submission(name, rel, data if not why else None, why, graded))
    return subs


def student_ids(subs: list[Submission]) -> list[str]:
    """Safe, unique ids (folder names) for the grader's own files, one per submission."""
    ids: list[str] = []
    for sub in subs:
        sid = re.sub(r"[^A-Za-z0-9_.@-]+", "_", sub.student).strip("._-") or "student"
        base, n = sid, 2
        while sid in ids:
            sid, n = f"{base}-{n}", n + 1
        ids.append(sid)
    return ids


def cell_texts(data: bytes | str) -> set[str]:
    """The non-empty cell sources of a notebook's JSON (empty set if it is not one)."""
    try:
        cells = json.loads(data).get("cells", [])
        return {"".join(c.get("source", "")).strip() for c in cells if isinstance(c, dict)} - {""}
    except Exception:  # not a notebook: reported when graded
        return set()


def lesson_of(texts: set[str], lessons: dict[str, set[str]]) -> Optional[str]:
    """The assignment whose cells the notebook shares most text with (None: none at all)."""
    counts = {a: len(texts & cells) for a, cells in lessons.items()}
    best = max(counts, key=lambda a: counts[a], default=None)
    return best if best is not None and counts[best] > 0 else None


def vote(subs: list[Submission], names: dict[str, str], lessons: dict[str, set[str]]
         ) -> Optional[str]:
    """The batch's assignment: each notebook votes by file name, else by content; the majority."""
    votes: dict[str, int] = {}
    by_name = {n: a for a, n in names.items()}
    for sub in subs:
        if sub.data is None:
            continue
        choice = by_name.get(Path(sub.graded_file).name) or lesson_of(cell_texts(sub.data), lessons)
        if choice:
            votes[choice] = votes.get(choice, 0) + 1
    return max(sorted(votes), key=lambda a: votes[a], default=None)
