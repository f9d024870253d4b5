"""The messages between the batch (parent) and a submission's worker: one Job in, one Result out.

Both are plain dataclasses that travel as one JSON object each (the worker reads its Job on
stdin and writes its Result as the last line of stdout), so a Job can equally be handed to a
Dask task. Nothing in them comes from files a submission could write.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional


@dataclass
class Limits:
    """Resource limits of one sandboxed kernel."""

    memory_mb: int = 4096
    processes: int = 256
    file_size_mb: int = 256
    cpu_seconds: int = 900
    scratch_mb: int = 1024


@dataclass
class Job:
    """Everything a worker needs to grade one submission (the notebook already repaired)."""

    student: str
    source: str  # the entry in the submissions folder, relative to it
    assignment: str
    notebook_name: str
    notebook: dict  # nbformat 4 JSON: the student's cells, locked and test cells from the source
    max_scores: dict[str, float]  # grade_id -> points, from the source (never the submission)
    work: str  # a private folder of the grader's for this job (sockets, connection file)
    course_copy: str  # read-only copy of course_utils (a folder holding course_utils/)
    read_only: list[str] = field(default_factory=list)  # more folders mounted read-only
    env: dict[str, str] = field(default_factory=dict)  # the kernel's whole environment
    uid: Optional[int] = None  # run the kernel as this uid (when the grader is root)
    sandbox: bool = True
    limits: Limits = field(default_factory=Limits)
    cell_timeout: int = 120
    startup_timeout: int = 120
    interrupt_grace: int = 15
    submission_timeout: float = 900.0
    max_retries: int = 3
    max_output_chars: int = 20000
    locked: list[int] = field(default_factory=list)  # indices of cells the student cannot edit

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Job":
        """The Job a to_json line describes."""
        data = json.loads(text)
        data["limits"] = Limits(**data.get("limits", {}))
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class Result:
    """The grade of one submission: per-question scores, status (ok/partial/failed), reasons."""

    student: str
    scores: dict[str, float]
    max_scores: dict[str, float]
    status: str = "failed"
    reasons: list[str] = field(default_factory=list)  # the grader's own words only
    details: dict[str, str] = field(default_factory=dict)  # grade_id -> "passed" or the error
    flags: list[str] = field(default_factory=list)  # what the tamper detector saw
    seconds: float = 0.0
    source: str = ""
    kernel_pids: list[int] = field(default_factory=list)  # host pids of sandbox processes
    notebook: Optional[dict] = None  # the executed notebook as received over the kernel protocol

    @property
    def total(self) -> float:
        """Sum of the question scores."""
        return sum(self.scores.values())

    @property
    def max_total(self) -> float:
        """Maximum possible total."""
        return sum(self.max_scores.values())

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Result":
        """The Result a to_json line describes."""
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def blank_result(student: str, max_scores: dict[str, float], reasons: Any = (),
                 source: str = "") -> Result:
    """A Result with zero for every question."""
    return Result(student, {g: 0.0 for g in max_scores}, dict(max_scores),
                  reasons=list(reasons), source=source)
