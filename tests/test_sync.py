"""Helpers written in a lesson (cells tagged `export`) match their copy in course_utils."""

from __future__ import annotations

import ast
import importlib
import re

import nbformat
import pytest

from conftest import ROOT, lesson_notebooks

HEADER = re.compile(r"#\s*exported to course_utils/(\w+)\.py")


def exported_cells():
    found = []
    for path in lesson_notebooks():
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if "export" in cell.metadata.get("tags", []):
                found.append(pytest.param(path, i, cell.source, id=f"{path.name}:cell{i}"))
    return found


def definitions(tree: ast.AST) -> dict[str, str]:
    return {node.name: ast.dump(node) for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def test_export_header_is_checked():
    assert HEADER.match("# exported to course_utils/pooling.py")
    assert not HEADER.match("# course_utils/pooling.py")


@pytest.mark.parametrize("path,index,source", exported_cells())
def test_exported_cell_matches_module(path, index, source):
    header = HEADER.match(source.strip())
    assert header, f"cell {index} of {path.name}: first line must be '# exported to course_utils/X.py'"
    module = importlib.import_module(f"course_utils.{header[1]}")
    in_module = definitions(ast.parse((ROOT / "course_utils" / f"{header[1]}.py").read_text()))
    in_cell = definitions(ast.parse(source))
    assert in_cell, f"cell {index} of {path.name} defines nothing"
    for name, dump in in_cell.items():
        assert hasattr(module, name), f"{name} is taught in {path.name} but missing from {module.__name__}"
        assert in_module.get(name) == dump, (
            f"{name} in {path.name} (cell {index}) differs from course_utils/{header[1]}.py")
