"""Offline stand-ins: deterministic, right architecture and head, real BERT ids."""

from __future__ import annotations

import hashlib
import json

import pytest
import transformers
from transformers import AutoConfig, AutoTokenizer

from course_utils import registry, standins

SEED_IDS = [101, 1045, 1005, 2310, 2042, 3403, 2005, 1037, 17662, 12172, 2607, 2026, 2878, 2166,
            1012, 102]
ROLES = sorted(standins.RECIPES)


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("cache")
    old = os.environ.get("COURSE_CACHE")
    os.environ["COURSE_CACHE"] = str(root)
    try:
        yield {role: standins.build(role) for role in ROLES}
    finally:
        if old is None:
            os.environ.pop("COURSE_CACHE")
        else:
            os.environ["COURSE_CACHE"] = old


@pytest.mark.parametrize("role", ROLES)
def test_same_architecture_class_as_the_real_checkpoint(built, role):
    config = AutoConfig.from_pretrained(built[role])
    assert config.architectures == [registry.REGISTRY[role].architecture]
    assert config.course_standin.startswith("random ")


@pytest.mark.parametrize("role", ROLES)
def test_build_is_deterministic(built, role, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    again = standins.build(role)
    assert again != built[role]
    assert digest(again) == digest(built[role])


def test_second_build_reuses_the_cache(built, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("rebuilt")

    monkeypatch.setitem(standins.RECIPES, "sentiment", boom)
    assert standins.build("sentiment") == built["sentiment"]


@pytest.mark.parametrize("role", ["sentiment", "zero-shot"])
def test_bert_vocabulary_roles_give_the_real_ids(built, role):
    tokenizer = AutoTokenizer.from_pretrained(built[role])
    ids = tokenizer("I've been waiting for a HuggingFace course my whole life.")["input_ids"]
    assert ids == SEED_IDS


def test_label_names(built):
    sentiment = AutoConfig.from_pretrained(built["sentiment"])
    assert sentiment.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    nli = AutoConfig.from_pretrained(built["zero-shot"])
    assert any(label.lower().startswith("entail") for label in nli.label2id)


@pytest.mark.parametrize("role,family", [("generation", "GPT2Tokenizer"),
                                         ("fill-mask", "RobertaTokenizer"),
                                         ("t5", "T5Tokenizer")])
def test_tokenizer_family(built, role, family):
    tokenizer = AutoTokenizer.from_pretrained(built[role])
    assert type(tokenizer).__name__ == family
    text = "The cat sat on the mat."
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text


def test_special_tokens_of_each_family(built):
    gpt2 = AutoTokenizer.from_pretrained(built["generation"])
    assert gpt2.eos_token == "<|endoftext|>" and gpt2.pad_token is None
    roberta = AutoTokenizer.from_pretrained(built["fill-mask"])
    ids = roberta("hello")["input_ids"]
    assert roberta.mask_token == "<mask>" and ids[0] == roberta.bos_token_id
    assert ids[-1] == roberta.eos_token_id
    t5 = AutoTokenizer.from_pretrained(built["t5"])
    assert t5("hello")["input_ids"][-1] == t5.eos_token_id == 1 and t5.pad_token_id == 0


@pytest.mark.parametrize("role,layers", [("generation", "n_layer"), ("t5", "num_layers"),
                                         ("sentiment", "n_layers"), ("qa", "n_layers"),
                                         ("fill-mask", "num_hidden_layers")])
def test_six_layers_like_the_real_checkpoints(built, role, layers):
    assert getattr(AutoConfig.from_pretrained(built[role]), layers) == 6


def test_t5_and_gpt2_tie_input_and_output_embeddings(built):
    for role, cls in [("generation", transformers.GPT2LMHeadModel),
                      ("t5", transformers.T5ForConditionalGeneration)]:
        model = cls.from_pretrained(built[role])
        assert model.get_input_embeddings().weight is model.get_output_embeddings().weight


def test_features_role_is_the_real_minilm():
    folder = standins.build("features")
    config = json.loads((folder / "config.json").read_text())
    assert config["hidden_size"] == 384 and config["num_hidden_layers"] == 6


def test_unknown_role_and_size_are_clear_errors():
    with pytest.raises(KeyError, match="no stand-in for role"):
        standins.build("translation")
    with pytest.raises(ValueError, match="size must be one of"):
        standins.build("t5", size="huge")


def test_qa_standin_gives_start_and_end_logits_and_offsets_into_the_context(built):
    import torch

    model = transformers.AutoModelForQuestionAnswering.from_pretrained(built["qa"])
    tokenizer = AutoTokenizer.from_pretrained(built["qa"])
    assert type(model).__name__ == "DistilBertForQuestionAnswering" and model.qa_outputs.out_features == 2
    context = "It was finished in 1889."
    enc = tokenizer("When?", context, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    with torch.no_grad():
        out = model(**enc)
    assert out.start_logits.shape == out.end_logits.shape == enc["input_ids"].shape
    year = enc.sequence_ids(0).index(1) + 4  # it, was, finished, in, 1889
    assert context[offsets[year][0]:offsets[year][1]] == "1889"
