"""The registry and its one switch: hub, offline, auto."""

from __future__ import annotations

import dataclasses
import re

import pytest

from course_utils import registry


def test_every_role_has_a_hub_checkpoint_size_and_standin():
    assert set(registry.REGISTRY) == {"sentiment", "zero-shot", "generation", "fill-mask",
                                      "features", "t5", "qa"}
    for spec in registry.REGISTRY.values():
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", spec.hub_id)
        assert spec.download_mb > 0 and spec.offline


def test_revisions_are_full_commits_or_hub_refs():
    for spec in registry.REGISTRY.values():
        assert spec.revision is None or re.fullmatch(r"[0-9a-f]{40}|refs/pr/\d+", spec.revision)


def test_course_download_within_goal(monkeypatch):
    # Issue 2 set 1.6 GB for six roles; issue 14 adds lesson 03's extractive-QA model (261 MB).
    assert registry.total_download_mb() <= 1850
    # Against independent numbers: a registry of two roles of 300 MB and 23 MB weighs 323 MB.
    base = next(iter(registry.REGISTRY.values()))
    fake = {"a": dataclasses.replace(base, role="a", download_mb=300),
            "b": dataclasses.replace(base, role="b", download_mb=23)}
    monkeypatch.setattr(registry, "REGISTRY", fake)
    assert registry.total_download_mb() == 323


def test_only_safetensors_weights_are_downloaded():
    from fnmatch import fnmatch

    def allowed(name):
        return any(fnmatch(name, pattern) for pattern in registry.ALLOW_PATTERNS)

    assert allowed("model.safetensors") and allowed("tokenizer.json") and allowed("spiece.model")
    for pickled in ["pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "model.ckpt.index"]:
        assert not allowed(pickled), pickled


def test_invalid_switch_value_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_MODELS", "online")
    with pytest.raises(registry.CourseModelError, match="COURSE_MODELS must be one of"):
        registry.requested_tier()


def test_unknown_role_names_the_roles():
    with pytest.raises(registry.CourseModelError, match="roles: sentiment"):
        registry.spec("translation")


def test_hf_hub_offline_means_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert registry.hub_reachable() == (False, "HF_HUB_OFFLINE is set")


def test_probe_asks_the_hubs_api_about_a_pinned_commit(monkeypatch):
    seen = {}

    def fake_probe(repo_id, revision):
        seen["args"] = (repo_id, revision)
        return False, "no answer"

    monkeypatch.setattr(registry.hub, "probe", fake_probe)
    assert registry.hub_reachable() == (False, "no answer")
    probe_spec = registry.REGISTRY[registry.PROBE_ROLE]
    assert seen["args"] == (probe_spec.hub_id, probe_spec.revision) and probe_spec.pinned
    assert registry.HUB_TIMEOUT_S <= 5


@pytest.mark.parametrize("name,value", [("HF_HUB_OFFLINE", "ON"), ("HF_HUB_OFFLINE", "true"),
                                        ("TRANSFORMERS_OFFLINE", "1"), ("HF_HUB_OFFLINE", "YES")])
def test_every_offline_switch_of_huggingface_hub_is_honoured(monkeypatch, name, value):
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv(name, value)
    assert registry.hub_reachable() == (False, f"{name} is set")


def test_auto_falls_back_to_offline_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_MODELS", "auto")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert registry.active_tier() == "offline"
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("[course] Hub not reachable")


def test_auto_uses_hub_when_reachable(monkeypatch):
    monkeypatch.setenv("COURSE_MODELS", "auto")
    monkeypatch.setattr(registry, "hub_reachable", lambda: (True, "reachable"))
    assert registry.active_tier() == "hub"


def test_hub_mode_download_failure_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_MODELS", "hub")

    def fail(spec):
        raise OSError("We couldn't connect to 'https://huggingface.co'\nlong details")

    monkeypatch.setattr(registry, "_download", fail)
    with pytest.raises(registry.CourseModelError) as info:
        registry.checkpoint("sentiment")
    message = str(info.value)
    assert "COURSE_MODELS=offline" in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_auto_mode_download_failure_falls_back(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("COURSE_MODELS", "auto")
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    monkeypatch.setattr(registry, "hub_reachable", lambda: (True, "reachable"))
    monkeypatch.setattr(registry, "_download", lambda spec: (_ for _ in ()).throw(OSError("boom")))
    path = registry.checkpoint("features")
    out = capsys.readouterr().out
    assert "download failed (OSError: boom)" in out and "offline tier" in out
    assert path.endswith("model")


def test_offline_checkpoint_announces_standins(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    registry.checkpoint("sentiment")
    registry.checkpoint("features")
    out = capsys.readouterr().out
    assert "sentiment: offline tier" in out and "STAND-IN, predictions mean nothing" in out
    assert "features: offline tier" in out and "(real model)" in out


def test_hub_checkpoint_passes_the_pinned_revision(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_MODELS", "hub")
    calls = []

    def fake_fetch(repo_id, revision, tokenizer, size_hint, label):
        calls.append((repo_id, revision, tokenizer))
        return "/tmp/snapshot", revision, True

    monkeypatch.setattr(registry.hub, "fetch", fake_fetch)
    assert registry.checkpoint("fill-mask") == "/tmp/snapshot"
    spec = registry.REGISTRY["fill-mask"]
    assert calls == [(spec.hub_id, spec.revision, "bpe")]
    assert "revision fb53ab8802" in capsys.readouterr().out


def test_every_role_is_pinned_to_a_full_commit_with_its_source():
    for spec in registry.REGISTRY.values():
        assert spec.pin_source
        assert spec.tokenizer in registry.hub.TOKENIZER_FILES
        assert spec.pinned, spec.role


def test_registry_table_lists_lessons_from_the_manifest():
    from course_utils.lessons import lessons_using

    table = registry.registry_table()
    assert table.loc["t5", "lessons"] == ", ".join(lessons_using("t5"))
    assert not hasattr(registry.REGISTRY["t5"], "lessons")
