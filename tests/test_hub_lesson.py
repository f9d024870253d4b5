"""One lesson end to end in hub mode, against the loopback Hub (tests/hub_server.py)."""

from __future__ import annotations

import time

import nbformat
from conftest import ROOT
from hub_server import DECOYS, course_repos, serve_hub
from nbclient import NotebookClient

from course_utils import hub, registry
from course_utils.lessons import lesson

LESSON = lesson("04")  # loads one role; the Hub path is the same for every lesson


def test_lesson_runs_in_hub_mode_against_the_loopback_hub(monkeypatch, tmp_path):
    repos = course_repos(list(LESSON.roles))
    monkeypatch.setenv("COURSE_MODELS", "hub")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("COURSE_HUB_DEADLINE_S", "30")
    nb = nbformat.read(ROOT / LESSON.notebook, as_version=4)
    with serve_hub(repos) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        t0 = time.monotonic()
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
        elapsed = time.monotonic() - t0
        fetched = server.fetched()
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []) if out.get("name") == "stdout")
    s = registry.REGISTRY["generation"]
    assert "models: hub tier" in printed
    assert f"[course] generation: {s.hub_id} (revision {s.revision[:10]}, Hub, verified)" in printed
    assert "STAND-IN" not in printed and "offline tier" not in printed
    assert fetched.count("model.safetensors") == 1 and not set(fetched) & set(DECOYS)
    assert set(fetched) <= set(hub.REQUIRED_FILES + hub.OPTIONAL_FILES)
    assert (tmp_path / "hf" / "hub" / f"models--{s.hub_id.replace('/', '--')}" / "snapshots"
            / s.revision / "model.safetensors").exists()
    assert elapsed < 90, elapsed
