"""The probes checkers and tests use to enforce "do not call ..." and to script a model's choices."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2LMHeadModel, T5ForConditionalGeneration

from conftest import load_standin
from course_utils import probes


@pytest.fixture(scope="module")
def gpt2():
    return load_standin("generation", GPT2LMHeadModel)


@pytest.fixture(scope="module")
def t5():
    return load_standin("t5", T5ForConditionalGeneration)


def test_count_calls_sees_forward_submodules_and_generate(gpt2):
    model, tokenizer = gpt2
    ids = tokenizer("The cat", return_tensors="pt")
    with probes.count_calls(model, first_block=model.transformer.h[0]) as calls, torch.no_grad():
        model(**ids)
    assert (calls.forward, calls.generate, calls.modules) == (1, 0, {"first_block": 1})
    with probes.count_calls(model) as calls:
        model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert calls.generate == 1 and calls.forward == 3  # one forward per new token


def test_count_calls_leaves_the_model_as_it_was(gpt2):
    model, tokenizer = gpt2
    hooks_before = len(model._forward_pre_hooks)
    with pytest.raises(RuntimeError), probes.count_calls(model):
        raise RuntimeError("learner code failed")
    assert "generate" not in vars(model) and len(model._forward_pre_hooks) == hooks_before
    with probes.count_calls(model) as calls:
        pass
    model.generate(**tokenizer("x", return_tensors="pt"), max_new_tokens=1, pad_token_id=0)
    assert calls.generate == 0 and calls.forward == 0  # nothing counted after the block


def test_watch_encoder_decoder_counts_encoder_runs_and_decoder_tokens(t5):
    model, tokenizer = t5
    enc = tokenizer("translate English to German: Hello", return_tensors="pt")
    with probes.watch_encoder_decoder(model) as calls, torch.no_grad():
        model.generate(**enc, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert calls.encoder_runs == 1 and calls.decoder_tokens == [1, 1, 1]  # the cache is used
    start = torch.zeros((1, 2), dtype=torch.long)
    with probes.watch_encoder_decoder(model) as calls, torch.no_grad():
        model(**enc, decoder_input_ids=start)
        model(**enc, decoder_input_ids=start)
    assert calls.encoder_runs == 2 and calls.decoder_tokens == [2, 2]


def test_forced_tokens_scripts_lm_head_calls_by_number(t5):
    model, tokenizer = t5
    enc = tokenizer("summarize: a b c", return_tensors="pt")
    with probes.forced_tokens(model, {0: 9, 2: 21}), torch.no_grad():
        out = model.generate(**enc, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert out[0, 1] == 9 and out[0, 3] == 21
    assert not model.lm_head._forward_hooks  # removed after the block
