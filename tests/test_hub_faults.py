"""The Hub path against a loopback Hub (tests/hub_server.py): each fault's outcome, its time
bound, and the lines the learner sees. Deadlines are shortened by COURSE_HUB_* variables."""

from __future__ import annotations

import _thread
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest
from hub_server import DECOYS, Faults, course_repos, serve_hub

from course_utils import hub, registry

ROLES = ["sentiment", "generation", "t5"]
ALLOWED = set(hub.REQUIRED_FILES + hub.OPTIONAL_FILES)


@pytest.fixture(scope="module")
def repos():
    """The served repositories (stand-ins built once, in the shared stand-in cache)."""
    return course_repos(ROLES)


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A fresh Hugging Face cache and short deadlines."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name, value in {"COURSE_HUB_CONNECT_S": "1", "COURSE_HUB_READ_S": "1",
                        "COURSE_HUB_PROBE_S": "1.5", "COURSE_HUB_GRACE_S": "0.5",
                        "COURSE_HUB_MIN_RATE": "20000", "COURSE_HUB_DEADLINE_S": "4"}.items():
        monkeypatch.setenv(name, value)
    registry.reset()
    yield tmp_path
    registry.reset()


def served(repos, faults=None):
    return serve_hub(repos, faults or Faults())


def start(monkeypatch, server, tier):
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("COURSE_MODELS", tier)
    return time.monotonic()


def lines(capsys):
    return [line for line in capsys.readouterr().out.splitlines() if line.strip()]


def is_standin(path: str) -> bool:
    return "standins" in path or path.endswith("model")


def test_healthy_download_fetches_only_needed_files_at_the_pinned_commit(env, repos, monkeypatch,
                                                                         capsys):
    with served(repos) as server:
        t0 = start(monkeypatch, server, "hub")
        paths = {role: registry.checkpoint(role) for role in ROLES}
        elapsed = time.monotonic() - t0
        fetched, requests = server.fetched(), list(server.requests)
    assert elapsed < 15, elapsed
    assert set(fetched) <= ALLOWED and not set(fetched) & set(DECOYS)
    assert fetched.count("model.safetensors") == len(ROLES)  # each once, nothing twice
    for role in ROLES:
        s = registry.REGISTRY[role]
        snapshot = Path(paths[role])
        assert snapshot.name == s.revision and snapshot.parent.parent.name.startswith("models--")
        assert (snapshot / "model.safetensors").is_symlink()
        assert not list((snapshot.parent.parent / "blobs").glob("*.incomplete"))
        assert not (snapshot / "onnx").exists() and not (snapshot / "pytorch_model.bin").exists()
    assert not any("/main" in path for _, path, _ in requests), "a moving ref was asked for"
    out = lines(capsys)
    assert out == [f"[course] {r}: {registry.REGISTRY[r].hub_id} (revision "
                   f"{registry.REGISTRY[r].revision[:10]}, Hub, verified)" for r in ROLES]
    from safetensors import safe_open

    with safe_open(str(Path(paths["generation"]) / "model.safetensors"), framework="np") as weights:
        assert len(list(weights.keys())) > 10  # real safetensors weights (the lesson test loads them)


def test_black_hole_auto_decides_offline_within_the_probe_deadline(env, repos, monkeypatch,
                                                                   capsys):
    with served(repos, Faults(black_hole=True)) as server:
        t0 = start(monkeypatch, server, "auto")
        assert registry.active_tier() == "offline"
        path = registry.checkpoint("sentiment")
        elapsed = time.monotonic() - t0
        probes = len(server.requests)
    assert elapsed < 1.5 + 1.5, elapsed  # the probe's 1.5 s, then no more waiting
    assert is_standin(path) and probes == 1
    out = lines(capsys)
    assert out[0].startswith("[course] Hub not reachable:") and "did not answer in time" in out[0]
    assert "offline tier" in out[1] and len(out) == 2


def test_black_hole_hub_mode_is_one_error_within_the_read_timeout(env, repos, monkeypatch):
    with served(repos, Faults(black_hole=True)) as server:
        t0 = start(monkeypatch, server, "hub")
        with pytest.raises(registry.CourseModelError) as info:
            registry.checkpoint("generation")
        elapsed = time.monotonic() - t0
    assert elapsed < 1 + 1.5, elapsed
    message = str(info.value)
    assert "did not answer in time" in message and "proxy" in message and "\n" not in message


def test_trickled_api_answer_stops_at_the_metadata_deadline(env, repos, monkeypatch):
    with served(repos, Faults(trickle=0.05)) as server:  # a byte every 50 ms: never a read timeout
        t0 = start(monkeypatch, server, "hub")
        with pytest.raises(registry.CourseModelError, match="did not answer in time: the file list"):
            registry.checkpoint("t5")
        elapsed = time.monotonic() - t0
    assert 3.5 <= elapsed < 3.5 + 1, elapsed  # COURSE_HUB_PROBE_S + 2 x COURSE_HUB_READ_S


def test_trickled_weights_stop_below_the_minimum_rate(env, repos, monkeypatch, capsys):
    with served(repos, Faults(trickle=0.001, trickle_files_only=True)) as server:
        t0 = start(monkeypatch, server, "auto")
        assert registry.active_tier() == "hub"  # the API itself answers at full speed
        path = registry.checkpoint("generation")
        elapsed = time.monotonic() - t0
    assert elapsed < 0.5 + 2, elapsed  # the 0.5 s grace, then the rate check
    assert is_standin(path)
    out = lines(capsys)
    assert "kB/s, below 20 kB/s" in out[0] and out[0].endswith("using its offline stand-in.")


def test_http_500_falls_back_once_for_every_role(env, repos, monkeypatch, capsys):
    with served(repos, Faults(status=500)) as server:
        t0 = start(monkeypatch, server, "auto")
        paths = [registry.checkpoint(role) for role in ROLES]
        elapsed = time.monotonic() - t0
        asked = len(server.requests)
    assert elapsed < 3, elapsed
    assert all(is_standin(p) for p in paths) and asked == 1  # one question, then no retries
    out = lines(capsys)
    assert "HTTP 500" in out[0] and "Hub not reachable" in out[0]
    assert len(out) == 1 + len(ROLES)


def test_http_500_hub_mode_names_the_status(env, repos, monkeypatch):
    with served(repos, Faults(status=500)) as server:
        start(monkeypatch, server, "hub")
        with pytest.raises(registry.CourseModelError, match="HTTP 500.*Hub's side"):
            registry.checkpoint("sentiment")


def test_429_says_wait_or_offline_without_sleeping(env, repos, monkeypatch, capsys):
    with served(repos, Faults(status=429, retry_after=120)) as server:
        t0 = start(monkeypatch, server, "auto")
        paths = [registry.checkpoint(role) for role in ROLES]
        elapsed = time.monotonic() - t0
        start(monkeypatch, server, "hub")
        registry.reset()
        with pytest.raises(registry.CourseModelError) as info:
            registry.checkpoint("sentiment")
    assert elapsed < 3, elapsed  # Retry-After is reported, not slept through
    assert all(is_standin(p) for p in paths)
    assert "HTTP 429, retry after 120 s" in lines(capsys)[0]
    assert "wait and re-run" in str(info.value) and "COURSE_MODELS=offline" in str(info.value)


def test_gated_repo_says_how_to_log_in_and_other_roles_still_download(env, repos, monkeypatch,
                                                                      capsys):
    gated = registry.REGISTRY["generation"].hub_id
    with served(repos, Faults(gated=(gated,))) as server:
        t0 = start(monkeypatch, server, "auto")
        generation = registry.checkpoint("generation")
        t5 = registry.checkpoint("t5")
        elapsed = time.monotonic() - t0
        start(monkeypatch, server, "hub")
        with pytest.raises(registry.CourseModelError) as info:
            registry.checkpoint("generation")
    assert elapsed < 5, elapsed
    assert is_standin(generation) and Path(t5).name == registry.REGISTRY["t5"].revision
    out = lines(capsys)
    assert "is gated (HTTP 401)" in out[0] and "login()" in out[0] and "HF_TOKEN" in out[0]
    assert "gated" in str(info.value) and "\n" not in str(info.value)


def test_missing_revision_names_the_pin(env, repos, monkeypatch):
    s = registry.REGISTRY["generation"]
    with served(repos, Faults(missing_revision=(s.hub_id,))) as server:
        t0 = start(monkeypatch, server, "hub")
        with pytest.raises(registry.CourseModelError) as info:
            registry.checkpoint("generation")
        elapsed = time.monotonic() - t0
    assert elapsed < 2, elapsed
    assert f"revision {s.revision} not found in {s.hub_id}" in str(info.value)
    assert "course_utils/registry.py" in str(info.value)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_truncated_body_is_resumed_with_range_and_verified(env, repos, monkeypatch, capsys):
    faults = Faults(truncate=1, only_paths=("model.safetensors",))
    with served(repos, faults) as server:
        t0 = start(monkeypatch, server, "hub")
        path = Path(registry.checkpoint("generation"))
        elapsed = time.monotonic() - t0
        ranges = [r for _, p, r in server.requests if p.startswith("/cdn/") and r]
    assert elapsed < 5, elapsed
    assert len(ranges) == 1 and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"
    weights = path / "model.safetensors"
    assert weights.resolve().name == _sha256(weights)  # the blob is its checksum
    assert lines(capsys)[-1].endswith("Hub, verified)")


def test_truncated_twice_falls_back_under_auto(env, repos, monkeypatch, capsys):
    faults = Faults(truncate=2, only_paths=("model.safetensors",))
    with served(repos, faults) as server:
        t0 = start(monkeypatch, server, "auto")
        path = registry.checkpoint("generation")
        elapsed = time.monotonic() - t0
    out = lines(capsys)
    assert elapsed < 5 and is_standin(path)
    assert "stopped at" in out[0] and "twice" in out[0] and "using its offline stand-in" in out[0]


def test_corrupt_body_of_the_right_size_is_deleted_and_downloaded_again(env, repos, monkeypatch,
                                                                        capsys):
    faults = Faults(corrupt=1, only_paths=("model.safetensors",))
    with served(repos, faults) as server:
        t0 = start(monkeypatch, server, "hub")
        path = Path(registry.checkpoint("generation"))
        elapsed = time.monotonic() - t0
        fetched = server.fetched()
    assert elapsed < 5, elapsed
    assert fetched.count("model.safetensors") == 2
    assert (path / "model.safetensors").resolve().name == _sha256(path / "model.safetensors")
    out = lines(capsys)
    assert "model.safetensors of distilbert/distilgpt2 failed its checksum" in out[0]
    assert "downloading it again" in out[0] and out[1].endswith("Hub, verified)")


def test_corrupt_twice_is_never_used(env, repos, monkeypatch, capsys):
    faults = Faults(corrupt=2, only_paths=("model.safetensors",))
    s = registry.REGISTRY["generation"]
    with served(repos, faults) as server:
        start(monkeypatch, server, "hub")
        with pytest.raises(registry.CourseModelError, match="failed its checksum twice"):
            registry.checkpoint("generation")
    root = hub.repo_dir(s.hub_id)
    assert not (root / "snapshots" / s.revision).exists()
    assert not [p for p in (root / "blobs").iterdir() if p.stat().st_size > 100_000]


def test_proxy_ignoring_range_restarts_the_file_once(env, repos, monkeypatch):
    faults = Faults(truncate=1, ignore_range=True, only_paths=("model.safetensors",))
    with served(repos, faults) as server:
        t0 = start(monkeypatch, server, "hub")
        path = Path(registry.checkpoint("generation"))
        elapsed = time.monotonic() - t0
        weights_requests = [r for _, p, r in server.requests if p.startswith("/cdn/")]
    assert elapsed < 5, elapsed
    assert len(weights_requests) == 2 and weights_requests[1].startswith("bytes=")
    assert (path / "model.safetensors").resolve().name == _sha256(path / "model.safetensors")


def test_ref_moved_to_a_commit_without_weights_is_not_loaded(env, repos, monkeypatch, capsys):
    s = registry.REGISTRY["generation"]
    monkeypatch.setitem(registry.REGISTRY, "generation",
                        registry.ModelSpec(**{**s.__dict__, "revision": "main"}))
    with served(repos) as server:
        t0 = start(monkeypatch, server, "auto")
        path = registry.checkpoint("generation")
        elapsed = time.monotonic() - t0
        start(monkeypatch, server, "hub")
        with pytest.raises(registry.CourseModelError) as info:
            registry.checkpoint("generation")
        fetched = server.fetched()
    assert elapsed < 3 and is_standin(path) and fetched == []
    out = lines(capsys)
    assert "lacks model.safetensors" in out[0] and "pytorch_model.bin" in out[0]
    assert "not loaded" in str(info.value)


def test_warm_cache_is_used_when_the_hub_is_gone(env, repos, monkeypatch, capsys):
    with served(repos) as server:
        start(monkeypatch, server, "hub")
        first = registry.checkpoint("t5")
        url = server.url
    capsys.readouterr()
    registry.reset()
    monkeypatch.setenv("HF_ENDPOINT", url)  # nothing listens there any more
    monkeypatch.setenv("COURSE_MODELS", "auto")
    t0 = time.monotonic()
    assert registry.checkpoint("t5") == first
    elapsed = time.monotonic() - t0
    out = lines(capsys)
    assert elapsed < 2, elapsed
    assert out[0].startswith("[course] Hub not reachable")
    assert out[1].endswith("verified cached copy; Hub not used)")


@pytest.mark.parametrize("switch", [("HF_HUB_OFFLINE", "ON"), ("TRANSFORMERS_OFFLINE", "1"),
                                    ("HF_HUB_OFFLINE", "yes")])
def test_offline_switches_use_the_warm_cache_without_a_request(env, repos, monkeypatch, capsys,
                                                               switch):
    with served(repos) as server:
        start(monkeypatch, server, "hub")
        first = registry.checkpoint("t5")
        before = len(server.requests)
        registry.reset()
        monkeypatch.setenv(*switch)
        monkeypatch.setenv("COURSE_MODELS", "auto")
        assert registry.checkpoint("t5") == first
        assert is_standin(registry.checkpoint("sentiment"))  # not cached: its stand-in
        monkeypatch.setenv("COURSE_MODELS", "hub")
        assert registry.checkpoint("t5") == first
        with pytest.raises(registry.CourseModelError, match=f"{switch[0]} is set"):
            registry.checkpoint("generation")
        assert len(server.requests) == before
    assert f"{switch[0]} is set" in capsys.readouterr().out


def test_a_corrupted_cache_is_noticed_on_reuse(env, repos, monkeypatch, capsys):
    with served(repos) as server:
        start(monkeypatch, server, "hub")
        snapshot = Path(registry.checkpoint("t5"))
        blob = (snapshot / "model.safetensors").resolve()
        data = bytearray(blob.read_bytes())
        data[-1] ^= 0xFF  # same size, one wrong byte, a new modification time
        blob.write_bytes(bytes(data))
        capsys.readouterr()
        assert registry.checkpoint("t5") == str(snapshot)  # re-downloaded, verified
        assert server.fetched().count("model.safetensors") == 2
    out = lines(capsys)
    assert "cached model.safetensors of google-t5/t5-small failed its checksum" in out[0]
    assert _sha256(snapshot / "model.safetensors") == blob.name


def test_interrupted_download_can_be_rerun_or_the_tier_changed(env, repos, monkeypatch, capsys):
    s = registry.REGISTRY["generation"]
    faults = Faults(truncate=1, stall_after=1, only_paths=("model.safetensors",))
    monkeypatch.setenv("COURSE_HUB_READ_S", "30")  # only the learner's Ctrl-C ends this one
    monkeypatch.setenv("COURSE_HUB_DEADLINE_S", "60")
    with served(repos, faults) as server:
        start(monkeypatch, server, "hub")
        timer = threading.Timer(0.8, _thread.interrupt_main)  # Ctrl-C in the middle of the body
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            registry.checkpoint("generation")
        stopped = time.monotonic() - t0
        timer.join()
        assert stopped < 0.8 + 0.5, stopped  # Ctrl-C acts at once
        monkeypatch.setenv("COURSE_MODELS", "offline")  # the tier changed, no restart
        assert is_standin(registry.checkpoint("generation"))
        monkeypatch.setenv("COURSE_MODELS", "hub")  # and back: the same cell re-run
        t0 = time.monotonic()
        path = Path(registry.checkpoint("generation"))
        rerun = time.monotonic() - t0
    assert rerun < 5, rerun
    assert path.name == s.revision
    assert not list((hub.repo_dir(s.hub_id) / "blobs").glob("*.incomplete"))


def test_leftover_incomplete_files_are_cleaned(env, repos, monkeypatch):
    s = registry.REGISTRY["t5"]
    blobs = hub.repo_dir(s.hub_id) / "blobs"
    blobs.mkdir(parents=True)
    (blobs / ("f" * 64 + ".incomplete")).write_bytes(b"left by an old run")
    with served(repos) as server:
        start(monkeypatch, server, "hub")
        registry.checkpoint("t5")
    assert not list(blobs.glob("*.incomplete"))


def test_setup_bounds_huggingface_hubs_own_client(env, monkeypatch):
    from huggingface_hub.utils import _http

    hub.bound_huggingface_hub()
    try:
        session = _http.get_session()
        assert session.timeout.connect == 1 and session.timeout.read == 1
    finally:
        _http.set_client_factory(_http.default_client_factory)


def test_library_logs_go_to_a_file_not_the_cell(env, monkeypatch, tmp_path, capsys):
    import logging

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cc"))
    path = hub.send_library_logs_to_file()
    logging.getLogger("huggingface_hub").warning("Retrying in 8s [Retry 2/5].")
    for handler in logging.getLogger("huggingface_hub").handlers:
        handler.flush()
    captured = capsys.readouterr()
    assert "Retrying" not in captured.out + captured.err
    assert "Retrying in 8s" in path.read_text()


def test_the_server_is_reusable_and_documented():
    import hub_server

    assert "serve_hub" in hub_server.__doc__ and os.path.basename(hub_server.__file__) == "hub_server.py"


# ---------------------------------------------------------------- a model the learner chose

CHOSEN = "learner/nli-model"  # stands for the model id a learner types in lesson 01's exercise


@pytest.fixture(scope="module")
def chosen_repos():
    """A learner's zero-shot model on `main` (the zero-shot stand-in, with decoys), and the course's."""
    from hub_server import NO_WEIGHTS_COMMIT, Repo, role_files

    files = {**role_files("zero-shot"), **DECOYS}
    commit = hashlib.sha1(CHOSEN.encode()).hexdigest()
    moved = {p: c for p, c in files.items() if not p.endswith(".safetensors")}
    learner = Repo(CHOSEN, {commit: files, NO_WEIGHTS_COMMIT: moved}, {"main": commit})
    return [learner] + course_repos(["zero-shot"])


def exercise_cell(grade_id: str) -> str:
    """The code of one cell of lesson 01's exercise source, found by its nbgrader id."""
    import json

    from conftest import ROOT

    path = ROOT / "exercises" / "source" / "lesson01" / "01_pipelines_exercises.ipynb"
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            return "".join(cell["source"])
    raise KeyError(grade_id)


def run_comparison_cell(my_model_id: str) -> dict:
    """Run the exercise's comparison cell (q3_check) as the notebook does; return its namespace."""
    import pandas as pd
    from transformers import pipeline

    import course_utils as cu
    from course_utils.exercises import l01_pipelines as ex

    def compare_models(classifiers, texts, labels):  # the solution's
        return pd.DataFrame({name: [r["labels"][0] for r in c(list(texts), candidate_labels=list(labels))]
                             for name, c in classifiers.items()})

    zero_shot = pipeline("zero-shot-classification", model=cu.checkpoint("zero-shot", announce=False),
                         device="cpu", trust_remote_code=False)
    namespace = {"cu": cu, "ex": ex, "pipeline": pipeline, "device": "cpu", "zero_shot": zero_shot,
                 "my_model_id": my_model_id, "compare_models": compare_models,
                 "reviews": [("Gummy bears in a jar.", "candy"), ("Tuna bites for cats.", "pet food")]}
    code = exercise_cell("q3_check")
    *body, last = code.rstrip().splitlines()
    exec("\n".join(body) + f"\n_table = {last}", namespace)
    return namespace


def test_chosen_model_loads_through_the_course_downloader(env, chosen_repos, monkeypatch, capsys):
    with served(chosen_repos) as server:
        start(monkeypatch, server, "hub")
        registry.checkpoint("zero-shot", announce=False)
        before = len(server.requests)
        t0 = time.monotonic()
        namespace = run_comparison_cell(CHOSEN)
        elapsed = time.monotonic() - t0
        requests = server.requests[before:]
        fetched = server.fetched()
    assert elapsed < 15, elapsed
    assert list(namespace["_table"].columns) == ["course model", CHOSEN]  # it loaded and ran
    out = [line for line in lines(capsys) if "your model" in line or "could not" in line]
    assert out == [f"[course] your model: {CHOSEN} (commit {hashlib.sha1(CHOSEN.encode()).hexdigest()[:10]} "
                   "of main, Hub, verified)"]
    assert set(fetched) <= ALLOWED and not set(fetched) & set(DECOYS)
    # only the course's own requests (huggingface_hub would ask for resolve/main/config.json)
    commit = hashlib.sha1(CHOSEN.encode()).hexdigest()
    for _, path, _ in requests:
        assert path.startswith((f"/api/models/{CHOSEN}/revision/main", f"/api/models/{CHOSEN}/tree/{commit}",
                                f"/{CHOSEN}/resolve/{commit}/", "/cdn/")), path
    snapshot = hub.repo_dir(CHOSEN) / "snapshots" / commit
    assert (snapshot / "model.safetensors").is_symlink() and not (snapshot / "modeling_custom.py").exists()


def test_chosen_model_again_is_the_verified_cache_without_a_download(env, chosen_repos, monkeypatch,
                                                                     capsys):
    with served(chosen_repos) as server:
        start(monkeypatch, server, "hub")
        first = registry.chosen_model(CHOSEN)
        sent = len(server.fetched())
        second = registry.chosen_model(CHOSEN)
        assert len(server.fetched()) == sent  # no file asked for again, only the commit of main
    assert first == second
    assert lines(capsys)[-1].endswith("of main, verified cached copy)")


def test_trickled_chosen_model_stops_at_its_total_deadline(env, chosen_repos, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_HUB_MIN_RATE", "0")  # slow but steady: only the total deadline acts
    monkeypatch.setenv("COURSE_HUB_DEADLINE_S", "2")
    with served(chosen_repos, Faults(trickle=0.02, trickle_files_only=True)) as server:
        start(monkeypatch, server, "hub")
        t0 = time.monotonic()
        with pytest.raises(registry.CourseModelError) as info:
            registry.chosen_model(CHOSEN)
        elapsed = time.monotonic() - t0
    assert 2 <= elapsed < 2 + 1, elapsed  # COURSE_HUB_DEADLINE_S, then at once
    message = str(info.value)
    assert message.startswith(f"{CHOSEN}: the download did not finish within 2 s")
    assert "COURSE_HUB_DEADLINE_S" in message and "\n" not in message


def test_trickled_chosen_model_in_the_exercise_cell_is_one_line(env, chosen_repos, monkeypatch,
                                                                capsys):
    monkeypatch.setenv("COURSE_HUB_MIN_RATE", "0")
    monkeypatch.setenv("COURSE_HUB_DEADLINE_S", "2")
    with served(chosen_repos) as server:  # the course's model is already in the cache
        start(monkeypatch, server, "hub")
        registry.checkpoint("zero-shot", announce=False)
    with served(chosen_repos, Faults(trickle=0.02, trickle_files_only=True)) as server:
        start(monkeypatch, server, "hub")
        t0 = time.monotonic()
        namespace = run_comparison_cell(CHOSEN)
        elapsed = time.monotonic() - t0
    assert elapsed < 2 + 3, elapsed  # the deadline, then the course model's comparison
    assert list(namespace["_table"].columns) == ["course model"]  # the cell went on without it
    out = [line for line in lines(capsys) if "your model" in line]
    assert len(out) == 1 and out[0].startswith("[course] could not load your model: ")
    assert f"could not load your model: {CHOSEN}: the download did not finish within 2 s" in out[0]


def test_chosen_model_too_big_or_misnamed_is_refused_before_any_download(env, chosen_repos,
                                                                         monkeypatch):
    monkeypatch.setenv("COURSE_HUB_MAX_MB", "0.01")
    with served(chosen_repos) as server:
        start(monkeypatch, server, "hub")
        with pytest.raises(registry.CourseModelError, match=r"over the 0.01 MB this course allows"):
            registry.chosen_model(CHOSEN)
        asked = len(server.requests)
        for name in ("learner/nli-model/extra", "https://example.com/x", "../../etc"):
            with pytest.raises(registry.CourseModelError, match="is not a Hub model name"):
                registry.chosen_model(name)
        assert len(server.requests) == asked and server.fetched() == []
