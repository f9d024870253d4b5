"""README's generated tables (tools/readme_tables.py): up to date, and built from the manifest."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from conftest import ROOT
from course_utils.lessons import LESSONS


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "tools" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_readme_tables_are_up_to_date(tables):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert tables.generated(readme) == readme, (
        "README.md's lesson or model table is stale: run .venv/bin/python tools/readme_tables.py")


def test_lesson_table_has_one_row_per_manifest_entry_with_both_badges(tables):
    rows = tables.lesson_table().splitlines()[2:]
    assert len(rows) == len(LESSONS)
    for row, lesson in zip(rows, LESSONS):
        assert row.startswith(f"| {lesson.number} | [{lesson.title}]({lesson.notebook}) ")
        assert f"blob/main/{lesson.notebook})" in row and f"| {lesson.minutes} min |" in row
        assert f"blob/main/exercises/release/lesson{lesson.number}/{lesson.slug}_exercises.ipynb)" in row


def test_model_table_lessons_column_comes_from_the_manifest(tables, monkeypatch):
    import course_utils.lessons as manifest

    row = next(r for r in tables.model_table().splitlines() if r.startswith("| t5 |"))
    assert "| 01, 02, 05 |" in row  # lesson 01 loads t5 too (its cell with cu.checkpoint("t5"))
    extra = manifest.Lesson("99", "99_extra", "Extra", "x", 1, ("zero-shot",), "l99_extra")
    monkeypatch.setattr(manifest, "LESSONS", (*manifest.LESSONS, extra))
    row = next(r for r in tables.model_table().splitlines() if r.startswith("| zero-shot |"))
    assert "| 01, 99 |" in row


def test_revisions_read_as_pinned_or_main(tables):
    assert tables.revision_text("714eb0fa89d2f80546fda750413ed43d93601a13") == "`714eb0fa89d2` (pinned)"
    assert tables.revision_text("refs/pr/3") == "`refs/pr/3` (a moving ref, not a pin)"
    assert tables.revision_text(None) == "main (not pinned)"


def test_a_table_replaces_only_its_marked_block(tables):
    readme = "intro\n<!-- lessons:start -->\nold\n<!-- lessons:end -->\nafter\n"
    assert tables.with_table(readme, "lessons", "| new |") == (
        "intro\n<!-- lessons:start -->\n| new |\n<!-- lessons:end -->\nafter\n")
    with pytest.raises(ValueError, match="lessons:start"):
        tables.with_table("no markers", "lessons", "x")
