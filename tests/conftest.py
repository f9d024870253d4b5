"""Shared fixtures: the offline tier, and a fresh registry state per test."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _offline_and_fresh(monkeypatch):
    """Every test starts offline with no cached tier decision."""
    from course_utils import registry

    monkeypatch.setenv("COURSE_MODELS", "offline")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the caller's setting must not leak in
    registry.active_tier.cache_clear()
    registry.hub_reachable.cache_clear()
    yield


def lesson_notebooks() -> list[Path]:
    """Lesson notebooks in order."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def exercise_sources() -> list[Path]:
    """Exercise source notebooks (with solutions and hidden tests)."""
    return sorted((ROOT / "exercises" / "source").glob("lesson*/*.ipynb"))


def exercise_releases() -> list[Path]:
    """Generated student versions."""
    return sorted((ROOT / "exercises" / "release").glob("lesson*/*.ipynb"))


def load_standin(role: str, model_class: type) -> tuple:
    """The offline stand-in for `role`, as (model in eval mode, its tokenizer)."""
    from transformers import AutoTokenizer

    from course_utils import standins

    path = standins.build(role)
    return model_class.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
