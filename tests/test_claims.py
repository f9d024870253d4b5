"""Real-checkpoint claims (issue 20): `checks.claim`, and the lessons' claim cells against the loopback Hub.

The loopback Hub (tests/hub_server.py) serves the offline stand-ins under the registry's real repo
ids and commits. Their config.json carries the `course_standin` marker, so for the mechanism test the
served copy has it removed: the course then believes it holds the real checkpoint, runs the claims,
and the claims fail on random weights, each with a message naming the claim.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest
import torch
from conftest import ROOT
from hub_server import course_repos, serve_hub

from course_utils import checks, registry
from course_utils.checks import CheckFailed, at_least, claim, claims_summary, contains_any


class _Config:
    def __init__(self, standin: bool):
        if standin:
            self.course_standin = "random GPT2LMHeadModel (tiny), seed 0"

    def to_dict(self) -> dict:
        return dict(vars(self))


class _Model:
    def __init__(self, standin: bool):
        self.config = _Config(standin)


# ---------------------------------------------------------------- claim itself

def test_a_stand_in_skips_the_claim_with_exactly_one_line(capsys, tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv(checks.CLAIMS_LOG_ENV, str(log))
    called = []
    skipped = claim("xx: never evaluated", lambda: called.append(1), model_or_folder=_Model(standin=True))
    assert skipped is None
    assert called == []
    assert capsys.readouterr().out == ("real-checkpoint claim, checked when the Hub tier is active: "
                                       "xx: never evaluated\n")
    assert [json.loads(line)["outcome"] for line in log.read_text().splitlines()] == ["skipped"]


def test_a_real_checkpoint_runs_the_claim(capsys, tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv(checks.CLAIMS_LOG_ENV, str(log))
    assert claim("xx: holds", lambda: True, model_or_folder=_Model(standin=False)) is True
    assert capsys.readouterr().out == "✓ real-checkpoint claim: xx: holds\n"
    with pytest.raises(CheckFailed) as failed:
        claim("xx: the top 3 include 'learn'", lambda: contains_any(["run", "go"], ["learn"]),
              model_or_folder=_Model(standin=False), shows=lambda: ["run", "go"])
    assert str(failed.value) == ("✗ real-checkpoint claim did not hold: xx: the top 3 include 'learn'; "
                                 "observed: ['run', 'go']")
    outcomes = [json.loads(line) for line in log.read_text().splitlines()]
    assert [o["outcome"] for o in outcomes] == ["held", "failed"]
    assert outcomes[1]["detail"] == "observed: ['run', 'go']"


def test_a_claim_that_raises_fails_naming_the_claim(tmp_path, monkeypatch):
    monkeypatch.delenv(checks.CLAIMS_LOG_ENV, raising=False)
    with pytest.raises(CheckFailed, match=r"did not hold: xx: broken; evaluating it raised KeyError"):
        claim("xx: broken", lambda: {}["missing"], model_or_folder=_Model(standin=False))


def test_what_a_claim_is_about_is_read_from_models_pipelines_and_folders(tmp_path):
    class Pipeline:  # a pipeline has no config of its own, only its model's
        model = _Model(standin=True)

    assert claim("xx: pipeline", lambda: False, model_or_folder=Pipeline()) is None
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "course_standin": "random"}))
    assert claim("xx: stand-in folder", lambda: False, model_or_folder=str(folder)) is None
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CheckFailed):
        claim("xx: real folder", lambda: False, model_or_folder=folder)
    with pytest.raises(TypeError, match="cannot tell"):
        claim("xx: a tokenizer object", lambda: True, model_or_folder=object())
    with pytest.raises(TypeError, match="no config.json"):
        claim("xx: not a checkpoint", lambda: True, model_or_folder=tmp_path / "nowhere")


def test_hedged_predicates():
    assert contains_any([" learn", " read", " use"], ["learn", "understand"])
    assert not contains_any([" read", " use"], ["learn", "understand"])
    assert at_least(2, [True, False, True]) and not at_least(2, [True, False, False])


def test_the_summary_counts_and_lists_every_claim(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    assert "none recorded" in claims_summary(str(log))
    monkeypatch.setenv(checks.CLAIMS_LOG_ENV, str(log))
    claim("a: held", lambda: True, model_or_folder=_Model(standin=False))
    claim("b: skipped", lambda: True, model_or_folder=_Model(standin=True))
    with pytest.raises(CheckFailed):
        claim("c: failed", lambda: False, model_or_folder=_Model(standin=False), shows=lambda: 3)
    assert claims_summary(str(log)).splitlines() == [
        "real-checkpoint claims: 1 held, 1 failed, 1 skipped (stand-in loaded)",
        "held     a: held", "skipped  b: skipped", "failed   c: failed  (observed: 3)"]


# ---------------------------------------------------------------- the lessons' own claim cells

def claims_cell(number: str) -> str:
    """The source of a lesson's real-checkpoint claim cells (one claim each), in order, as one program."""
    notebook = next((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    cells = [c for c in nbformat.read(notebook, as_version=4).cells
             if c.cell_type == "code" and c.get("id", "").startswith(f"claims-{number}-checks-")]
    assert cells, f"{notebook.name} has no claim cells claims-{number}-checks-N"
    assert all(c.source.count("\nclaim(") + c.source.startswith("claim(") == 1 for c in cells), \
        "one claim per cell"
    return "\n".join(c.source for c in cells)


def real_looking_repos(roles: list[str]) -> list:
    """The loopback Hub's repos for `roles`, with the stand-in marker removed from every config.json."""
    repos = course_repos(roles, decoys=False)
    for repo in repos:
        for files in repo.commits.values():
            if "config.json" in files:
                config = json.loads(files["config.json"])
                config.pop("course_standin", None)
                files["config.json"] = json.dumps(config).encode()
    return repos


def lesson06_namespace(folder: str) -> dict:
    """What lesson 06's claims cell reads, computed as the lesson computes it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from course_utils.exercises import l06_attention as ex
    from course_utils.logit_lens import lens_logits

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    phrase = "After school the children went to the park, and the children played"
    labels, maps = ex.attention_maps(model, tokenizer, phrase)
    with torch.no_grad():
        out = model(tokenizer(phrase, return_tensors="pt")["input_ids"], output_hidden_states=True)
    last_top = lens_logits(model, out.hidden_states)[:, -1].argmax(-1).tolist()
    return {"torch": torch, "model": model, "tokenizer": tokenizer, "labels": labels,
            "scores": ex.head_scores(maps), "last_top": last_top, "out": out}


def lesson03_namespace(folder: str) -> dict:
    """What lesson 03's claims cell reads, computed as the lesson computes it."""
    import pandas as pd
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    classifier = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    sentences = ["I've been waiting for a course like this my whole life.",
                 "The second half of the film was a tedious mess.",
                 "Honestly, the soundtrack alone is worth the ticket."]
    with torch.no_grad():
        probs = classifier(**tokenizer(sentences, padding=True, return_tensors="pt")).logits.softmax(-1)
    labels = [classifier.config.id2label[i] for i in probs.argmax(-1).tolist()]
    return {"body": AutoModel.from_pretrained(folder), "classifier": classifier, "probs": probs,
            "by_hand": pd.DataFrame({"label": labels}),
            "one_d": torch.tensor(tokenizer(sentences[0])["input_ids"])}


LESSONS = {"06": ("generation", lesson06_namespace), "03": ("sentiment", lesson03_namespace)}


@pytest.mark.parametrize("number", sorted(LESSONS))
def test_offline_each_claim_prints_its_one_line_and_nothing_else(number, capsys, tmp_path, monkeypatch):
    role, namespace = LESSONS[number]
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv(checks.CLAIMS_LOG_ENV, str(log))
    env = namespace(registry.checkpoint(role, announce=False))
    capsys.readouterr()
    exec(claims_cell(number), env)
    printed = capsys.readouterr().out.splitlines()
    names = [json.loads(line)["claim"] for line in log.read_text().splitlines()]
    assert len(names) >= 2 and all(name.startswith(f"{number} ") for name in names)
    assert printed == [f"real-checkpoint claim, checked when the Hub tier is active: {n}" for n in names]


@pytest.mark.parametrize("number", sorted(LESSONS))
def test_against_the_loopback_hub_the_claims_run_and_fail_naming_the_claim(number, capsys, tmp_path,
                                                                           monkeypatch):
    role, namespace = LESSONS[number]
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv(checks.CLAIMS_LOG_ENV, str(log))
    monkeypatch.setenv("COURSE_MODELS", "hub")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("COURSE_HUB_DEADLINE_S", "30")
    with serve_hub(real_looking_repos([role])) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        folder = registry.checkpoint(role)
    assert f"{registry.REGISTRY[role].hub_id} (revision" in capsys.readouterr().out
    env = namespace(folder)
    assert checks._is_real(folder)  # the course believes it has the real checkpoint
    with pytest.raises(CheckFailed) as failed:
        exec(claims_cell(number), env)
    first = json.loads(log.read_text().splitlines()[-1])
    assert first["outcome"] == "failed" and first["claim"].startswith(f"{number} ")
    assert str(failed.value).startswith(f"✗ real-checkpoint claim did not hold: {first['claim']}; observed: ")
    assert "checked when the Hub tier is active" not in capsys.readouterr().out


def test_course_test_hub_runs_a_lesson_with_its_claims_and_prints_the_summary(tmp_path):
    """`./course test --hub` end to end on one lesson, against the loopback Hub (all roles served)."""
    import os
    import subprocess

    log = tmp_path / "claims.jsonl"
    with serve_hub(real_looking_repos(list(registry.REGISTRY))) as server:
        env = dict(os.environ, HF_ENDPOINT=server.url, HF_HOME=str(tmp_path / "hf"),
                   COURSE_HUB_DEADLINE_S="30", COURSE_CLAIMS_LOG=str(log))
        env.pop("COURSE_MODELS", None)  # the command sets it
        env.pop("PYTEST_XDIST_WORKER", None)
        command = [str(ROOT / "course"), "test", "--hub", "notebooks/06_attention.ipynb",
                   "-q", "-n", "0", "-p", "no:cacheprovider"]  # one process: no worker start-up
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    names = re.findall(r'^claim\("([^"]+)"', claims_cell("06"), flags=re.M)
    summary = run.stdout[run.stdout.index("real-checkpoint claims:"):]
    assert run.returncode != 0, run.stdout[-2000:]  # random weights: the claims cannot all hold
    assert "0 skipped" in summary.splitlines()[0]
    for name in names:  # every claim was evaluated, each under its own name
        assert f"held     {name}" in summary or f"failed   {name}" in summary, (name, summary)
    assert "failed   06 heads: some head puts more than half its weight on the previous token" in summary
    outcomes = [json.loads(line)["outcome"] for line in log.read_text().splitlines()]
    assert len(names) == len(outcomes) == 4 and "skipped" not in outcomes
