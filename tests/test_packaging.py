"""The learner's wheel: every module and data file the notebooks need, and nothing of grading."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """File names inside the wheel `pip install course-utils @ git+...` builds in Colab."""
    out, tree = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md", "course_utils", "course_grading"):  # no stale build/
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, tree / name, *([shutil.ignore_patterns("__pycache__")] * (copy is shutil.copytree)))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(out), str(tree)], check=True, timeout=300,
                   capture_output=True)
    (wheel,) = out.glob("course_utils-*.whl")
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def test_wheel_holds_every_learner_module_and_data_file(wheel_names: set[str]) -> None:
    wanted = {str(p.relative_to(REPO)) for p in (REPO / "course_utils").rglob("*")
              if p.suffix in {".py", ".txt"} and "__pycache__" not in p.parts}
    missing = sorted(wanted - wheel_names)
    assert not missing, f"the learner's wheel lacks {missing} (pyproject.toml [tool.setuptools])"


def test_wheel_holds_nothing_of_grading(wheel_names: set[str]) -> None:
    grading = sorted(n for n in wheel_names if n.startswith("course_grading/"))
    assert not grading, f"the instructor's package ships to learners: {grading[:5]}"


def test_course_utils_imports_nothing_of_grading() -> None:
    found = []
    for path in sorted((REPO / "course_utils").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(REPO)}: {n}" for n in names
                      if n.split(".")[0] in {"course_grading", "nbgrader", "nbclient"}]
    assert not found, f"course_utils imports grading code: {found}"
