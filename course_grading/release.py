"""Student versions with nbgrader: GenerateAssignment in a temporary course folder."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from .config import EXERCISES, REPO, load_config

ASSIGNMENT = re.compile(r"lesson\d\d")


class ErrorLog(logging.Handler):
    """Collects nbgrader's error messages (its exceptions only say "see the log above")."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def summary(self) -> str:
        """The most telling error line."""
        text = "\n".join(self.lines)
        found = re.findall(r"^\s*((?:\w+\.)*\w*(?:Error|Exception)\b.*)$", text, re.M)
        return (found[-1] if found else (self.lines[0] if self.lines else "unknown error"))[:300]


def quiet_nbgrader(level: int = logging.WARNING) -> ErrorLog:
    """Route nbgrader's log (the "traitlets" logger) to an error collector."""
    logger = logging.getLogger("traitlets")
    logger.setLevel(level)
    logger.propagate = False
    errors = ErrorLog()
    logger.handlers = [errors]
    return errors


def nbgrader_config(exercises: Path, root: Path, db: Path, assignment: str) -> Any:
    """The course's config, redirected to a temporary course folder and gradebook."""
    config = load_config(exercises)
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{db}"
    config.CourseDirectory.assignment_id = assignment
    config.BaseConverter.force = True
    return config


def source_assignments(exercises: Path = EXERCISES) -> list[str]:
    """Assignments (lessonNN folders holding a notebook) under exercises/source, sorted."""
    root = Path(exercises) / "source"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and ASSIGNMENT.fullmatch(p.name) and any(p.glob("*.ipynb")))


def notebook_name(exercises: Path, assignment: str) -> str:
    """File name of the assignment's one exercise notebook."""
    notebooks = sorted((Path(exercises) / "source" / assignment).glob("*.ipynb"))
    if len(notebooks) != 1:
        raise SystemExit(f"exercises/source/{assignment} must hold exactly one notebook "
                         f"(found {len(notebooks)})")
    return notebooks[0].name


def _fast_alembic() -> None:
    """Read the gradebook schema version in-process (nbgrader runs the alembic CLI: seconds)."""
    import nbgrader.api
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    if getattr(nbgrader.api.get_alembic_version, "in_process", False):
        return
    config = Config()
    config.set_main_option("script_location", str(Path(nbgrader.api.__file__).parent / "alembic"))
    head = ScriptDirectory.from_config(config).get_current_head()

    def get_alembic_version() -> str:
        return head

    get_alembic_version.in_process = True  # type: ignore[attr-defined]
    nbgrader.api.get_alembic_version = get_alembic_version


def generate(exercises: Path, root: Path, assignment: str) -> Path:
    """Copy an assignment's source into `root`; run nbgrader GenerateAssignment there."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    src = Path(exercises) / "source" / assignment
    if not src.is_dir():
        raise SystemExit(f"no exercise source {src}")
    _fast_alembic()
    shutil.copytree(src, root / "source" / assignment,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc"))
    config = nbgrader_config(exercises, root, root / "gradebook.db", assignment)
    errors = quiet_nbgrader()
    try:
        GenerateAssignment(coursedir=CourseDirectory(config=config), config=config).start()
    except Exception as err:
        raise RuntimeError(f"nbgrader could not generate {assignment}: {errors.summary()}") from err
    return root / "release" / assignment


def release(assignments: Optional[list[str]] = None, exercises: Path = EXERCISES,
            dest: Optional[Path] = None) -> list[Path]:
    """Regenerate the student versions (release/lessonNN/) from the sources, deterministically."""
    exercises = Path(exercises)
    dest = Path(dest) if dest is not None else exercises / "release"
    names = assignments or source_assignments(exercises)
    written = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
            out = generate(exercises, Path(tmp), name)
            for nb in sorted(out.rglob("*.ipynb")):
                text = nb.read_text(encoding="utf-8")
                for local in {tmp, str(REPO), str(exercises.resolve())}:
                    if local in text:
                        raise RuntimeError(f"{name}/{nb.name}: the student version would contain "
                                           f"the local path {local}; remove it from the source")
            target = dest / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(out, target)
            for path in [target, *target.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            written += sorted(target.rglob("*.ipynb"))
    if not assignments and dest.is_dir():  # student versions whose source is gone
        for stale in sorted(dest.iterdir()):
            if stale.is_dir() and ASSIGNMENT.fullmatch(stale.name) and stale.name not in names:
                shutil.rmtree(stale)
    return written
