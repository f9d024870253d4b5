"""The lesson manifest (course_utils/lessons.py) agrees with the files and with what notebooks load."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys

import nbformat
import pytest

from conftest import ROOT, lesson_notebooks
from course_utils import lessons
from course_utils.lessons import LESSONS


def checkpoint_roles(path) -> set[str]:
    """The roles a notebook's code cells pass to checkpoint(...); a non-literal role fails."""
    roles = set()
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        source = "\n".join(line[:len(line) - len(line.lstrip())] + "pass"  # an IPython magic
                           if line.lstrip().startswith(("%", "!")) else line
                           for line in cell.source.splitlines())
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr",
                                                      getattr(node.func, "id", None)) == "checkpoint":
                arg = node.args[0] if node.args else None
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
                    f"{path.name} cell {i}: write the role as a literal, checkpoint(\"role\"), so "
                    "the manifest test can read it")
                roles.add(arg.value)
    return roles


@pytest.mark.parametrize("lesson", LESSONS, ids=[entry.slug for entry in LESSONS])
def test_manifest_roles_are_what_the_lesson_and_its_exercises_load(lesson):
    loaded = checkpoint_roles(ROOT / lesson.notebook)
    source = ROOT / "exercises" / "source" / lesson.assignment / lesson.exercise_notebook
    loaded |= checkpoint_roles(source)
    assert loaded == set(lesson.roles), (
        f"lesson {lesson.number}: its notebooks call cu.checkpoint on {sorted(loaded)}, the manifest "
        f"(course_utils/lessons.py) says {sorted(lesson.roles)}")


def test_the_role_reader_sees_every_call(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('%pip install x\nckpt = cu.checkpoint("t5")'),
        nbformat.v4.new_code_cell('from course_utils import checkpoint\n'
                                  'p = checkpoint("features", announce=False)'),
        nbformat.v4.new_markdown_cell('cu.checkpoint("sentiment") in prose does not count')])
    nbformat.write(nb, tmp_path / "a.ipynb")
    assert checkpoint_roles(tmp_path / "a.ipynb") == {"t5", "features"}
    nb.cells.append(nbformat.v4.new_code_cell("role = 'x'\ncu.checkpoint(role)"))
    nbformat.write(nb, tmp_path / "b.ipynb")
    with pytest.raises(AssertionError, match="literal"):
        checkpoint_roles(tmp_path / "b.ipynb")


def test_every_lesson_notebook_is_in_the_manifest():
    assert [p.stem for p in lesson_notebooks()] == [entry.slug for entry in LESSONS]


@pytest.mark.parametrize("lesson", LESSONS, ids=[entry.slug for entry in LESSONS])
def test_each_lesson_has_its_files_named_after_its_slug(lesson):
    topic = lesson.slug.split("_", 1)[1]
    assert lesson.slug[:2] == lesson.number and lesson.exercises == f"l{lesson.number}_{topic}"
    importlib.import_module(f"course_utils.exercises.{lesson.exercises}")
    for path in [lesson.notebook, f"exercises/source/{lesson.assignment}/{lesson.exercise_notebook}",
                 f"exercises/release/{lesson.assignment}/{lesson.exercise_notebook}",
                 f"tests/test_{lesson.exercises}.py"]:
        assert (ROOT / path).is_file(), f"lesson {lesson.number}: {path} is missing"


def test_manifest_numbers_are_unique_and_roles_exist():
    from course_utils.registry import REGISTRY

    assert len({entry.number for entry in LESSONS}) == len(LESSONS)
    for entry in LESSONS:
        assert set(entry.roles) <= set(REGISTRY), entry.number
    assert lessons.lesson("05").slug == "05_t5_decoding"
    assert lessons.lessons_using("t5") == ("01", "02", "05")
    with pytest.raises(KeyError, match="no lesson '42'"):
        lessons.lesson("42")


def test_the_benchmark_lists_the_manifests_lessons():
    spec = importlib.util.spec_from_file_location("bench_for_manifest", ROOT / "tools" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert module.LESSONS == [entry.slug for entry in LESSONS]
    finally:
        sys.modules.pop(spec.name, None)
