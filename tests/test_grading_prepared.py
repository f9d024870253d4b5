"""course_grading.prepared: the student version and the stand-ins, reused only while unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

import tiny_assignment as tiny
from course_grading import prepared
from course_utils import standins


@pytest.fixture
def grader_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "course_grading"


def test_the_student_version_is_generated_once_and_again_when_its_source_changes(
        tmp_path: Path, grader_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exercises = tiny.exercises(tmp_path)
    first = prepared.release_folder(exercises, tiny.ASSIGNMENT, tmp_path / "w1")
    student = nbformat.read(first / tiny.NAME, 4)
    assert "raise NotImplementedError()" in student.cells[2].source  # nbgrader's release
    assert list((grader_cache / "release").iterdir()), "nothing was cached"

    calls = []
    real = prepared.generate
    monkeypatch.setattr(prepared, "generate", lambda *a: calls.append(a) or real(*a))
    again = prepared.release_folder(exercises, tiny.ASSIGNMENT, tmp_path / "w2")
    assert calls == [] and nbformat.read(again / tiny.NAME, 4) == student

    source = exercises / "source" / tiny.ASSIGNMENT / tiny.NAME  # the instructor edits a test
    nb = nbformat.read(source, 4)
    nb.cells[3].source = "assert x == 2  # edited"
    nbformat.write(nb, source)
    edited = prepared.release_folder(exercises, tiny.ASSIGNMENT, tmp_path / "w3")
    assert len(calls) == 1, "a changed source reused the old student version"
    assert "# edited" in nbformat.read(edited / tiny.NAME, 4).cells[3].source
    (exercises / "nbgrader_config.py").write_text("c = get_config()\n")  # the config counts too
    prepared.release_folder(exercises, tiny.ASSIGNMENT, tmp_path / "w4")
    assert len(calls) == 2


def test_a_read_only_cache_costs_nothing_but_the_reuse(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # course_grading/ cannot be made here
    exercises = tiny.exercises(tmp_path)
    made = prepared.release_folder(exercises, tiny.ASSIGNMENT, tmp_path / "w")
    assert (made / tiny.NAME).exists()


def test_standins_are_built_then_stamped_and_built_again_when_one_is_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "course-cache"
    monkeypatch.setenv("COURSE_MODELS", "offline")
    monkeypatch.delenv("COURSE_STANDIN_SIZE", raising=False)
    # the roles of lesson 01, copied from this machine's cache (building them is not the test)
    monkeypatch.setenv("COURSE_CACHE", str(cache))
    for role in ("sentiment", "zero-shot", "generation"):
        monkeypatch.delenv("COURSE_CACHE")
        built = standins.build(role, "tiny")
        shutil.copytree(built, cache / "standins" / built.name)
        monkeypatch.setenv("COURSE_CACHE", str(cache))
    assert not prepared.standins_ready("lesson01", str(cache), "tiny")

    build = prepared.Prebuild("lesson01", str(cache))
    assert build.proc is not None
    build.finish(timeout=300)
    assert build.proc.returncode == 0
    stamps = list((cache / "standins").glob(".built-lesson01-*"))
    assert len(stamps) == 1
    folders = json.loads(stamps[0].read_text())
    assert {Path(f).name.split("-tiny")[0] for f in folders} >= {"sentiment", "zero-shot"}
    assert prepared.standins_ready("lesson01", str(cache), "tiny")
    assert prepared.Prebuild("lesson01", str(cache)).proc is None  # nothing to start

    shutil.rmtree(folders[0])  # the instructor cleared one stand-in
    assert not prepared.standins_ready("lesson01", str(cache), "tiny")
    again = prepared.Prebuild("lesson01", str(cache))
    assert again.proc is not None
    again.finish(timeout=300)
    assert (Path(folders[0]) / "model.safetensors").is_file()
    assert not prepared.standins_ready("lesson01", str(cache), "full")  # another size: no stamp


def test_a_stamp_from_another_course_utils_is_not_trusted(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "c"
    (cache / "standins").mkdir(parents=True)
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"x")
    key = prepared.standin_key("lesson01", "tiny")
    assert key is not None
    (cache / "standins" / f".built-lesson01-{key[:32]}").write_text(json.dumps([str(model)]))
    assert prepared.standins_ready("lesson01", str(cache), "tiny")
    monkeypatch.setattr(prepared, "STANDIN_SOURCES", ("standins.py", "lessons.py", "hub.py"))
    assert not prepared.standins_ready("lesson01", str(cache), "tiny")  # other bytes, other key

