"""Lesson 07's checkers and explorer: right answers pass, each typical mistake gets its own message."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM

from conftest import load_standin
from course_utils.exercises import l07_kv_cache_and_beam_search as ex


@pytest.fixture(scope="module")
def gpt2():
    return load_standin("generation", AutoModelForCausalLM)


# ------------------------------------------------------------------ question 1

def greedy(model, input_ids, attention_mask, max_new_tokens, *, cache=True, stop=True, generate=False):
    if generate:
        out = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                             do_sample=False, output_logits=True, return_dict_in_generate=True,
                             pad_token_id=model.config.eos_token_id)
        return out.sequences[0, input_ids.shape[1]:].tolist(), torch.stack(out.logits)[:, 0]
    ids, mask, past, new, tokens, logits = input_ids, attention_mask, None, input_ids, [], []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            out = model(input_ids=new if cache else ids, attention_mask=mask,
                        past_key_values=past, use_cache=cache)
            past = out.past_key_values if cache else None
            step = out.logits[0, -1]
            token = int(step.argmax())
            tokens.append(token)
            logits.append(step)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
            mask = torch.cat([mask, torch.ones(1, 1, dtype=mask.dtype)], dim=1)
            new = torch.tensor([[token]])
            if stop and token == model.config.eos_token_id:
                break
    return tokens, torch.stack(logits)


def test_greedy_right(gpt2):
    feedback = ex.check_cached_greedy(greedy, *gpt2)
    assert feedback.correct, feedback


@pytest.mark.parametrize("kwargs, words", [
    ({"cache": False}, "recompute the prefix"),
    ({"stop": False}, "stop right after EOS"),
    ({"generate": True}, "called model.generate()"),
])
def test_greedy_mistakes_named(gpt2, kwargs, words):
    feedback = ex.check_cached_greedy(lambda *a: greedy(*a, **kwargs), *gpt2)
    assert not feedback.correct and words in feedback.message, feedback


def test_greedy_bad_answers(gpt2):
    assert "expected a function" in ex.check_cached_greedy(None, *gpt2).message
    assert "expected a tuple" in ex.check_cached_greedy(lambda *a: [1, 2], *gpt2).message
    probs = lambda *a: (greedy(*a)[0], greedy(*a)[1].softmax(-1))  # noqa: E731
    assert "logits differ" in ex.check_cached_greedy(probs, *gpt2).message
    boom = ex.check_cached_greedy(lambda *a: 1 / 0, *gpt2)
    assert not boom.correct and "ZeroDivisionError" in boom.message


def test_probe_restores_generate(gpt2):
    model = gpt2[0]
    record = {"lengths": [], "generate": []}
    with ex.watched(model, record):
        assert "generate" in vars(model)
    assert "generate" not in vars(model) and not model._forward_pre_hooks and \
        not model.base_model._forward_pre_hooks


# ------------------------------------------------------------------ question 2

def memory(config, tokens, batch, bytes_per_value, *, factor=2, kv=True):
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads if kv else heads
    return factor * config.num_hidden_layers * kv_heads * (config.hidden_size // heads) * tokens * \
        batch * bytes_per_value


def test_memory_right(gpt2):
    feedback = ex.check_cache_memory(memory, *gpt2)
    assert feedback.correct and "GiB" in feedback.message, feedback


@pytest.mark.parametrize("answer, words", [
    (lambda *a: memory(*a, factor=1), "not both"),
    (lambda *a: memory(*a, kv=False), "num_key_value_heads"),
    (lambda *a: memory(*a) * 8, "bits"),
    (lambda c, t, b, n: memory(c, t, 1, n), "batch size"),
    (lambda *a: 12345, "2 x layers"),
    (lambda *a: None, "is None"),
])
def test_memory_mistakes_named(gpt2, answer, words):
    feedback = ex.check_cache_memory(answer, *gpt2)
    assert not feedback.correct and words in feedback.message + feedback.hint, feedback


# ------------------------------------------------------------------ question 3

def step(scores, log_probs, k, length, penalty, *, combine="add", normalise_running=False, twice=False):
    vocab = log_probs.shape[-1]
    totals = scores[:, None] * log_probs if combine == "mul" else scores[:, None] + log_probs
    top, flat = totals.reshape(-1).topk(k)
    if normalise_running:
        top = top / length ** penalty
    ends = top / length ** penalty
    if twice:
        ends = ends / length ** penalty
    return top, flat // vocab, flat % vocab, ends


def test_step_right():
    assert ex.check_beam_step(step).correct


@pytest.mark.parametrize("kwargs, words", [
    ({"combine": "mul"}, "multiplied"),
    ({"twice": True}, "twice"),
    ({"normalise_running": True}, "already divided"),
])
def test_step_mistakes_named(kwargs, words):
    feedback = ex.check_beam_step(lambda *a: step(*a, **kwargs))
    assert not feedback.correct and words in feedback.message, feedback


def test_step_flat_parents_and_shapes():
    flat = lambda s, lp, k, n, p: (lambda r: (r[0], r[1] * lp.shape[-1] + r[2], r[2], r[3]))(  # noqa: E731
        step(s, lp, k, n, p))
    assert "flattened" in ex.check_beam_step(flat).message
    short = lambda *a: tuple(t[:2] for t in step(*a))  # noqa: E731
    assert "expected (6,)" in ex.check_beam_step(short).message
    assert "four tensors" in ex.check_beam_step(lambda *a: step(*a)[:3]).message


# ------------------------------------------------------------------ question 4

def positions(mask, new):
    return (mask.cumsum(-1) - 1).clamp(min=0)[:, -new:]


def test_positions_right(gpt2):
    feedback = ex.check_positions(positions, *gpt2)
    assert feedback.correct, feedback


@pytest.mark.parametrize("answer, words", [
    (lambda m, n: (m[:, -n:].cumsum(-1) - 1).clamp(min=0), "restart at 0"),
    (lambda m, n: torch.arange(m.shape[1])[None, -n:].expand(m.shape[0], -1), "count the pads"),
    (lambda m, n: m.cumsum(-1)[:, -n:], "one too large"),
    (lambda m, n: positions(m, n)[:1], "expected (3,"),
])
def test_positions_mistakes_named(gpt2, answer, words):
    feedback = ex.check_positions(answer, *gpt2)
    assert not feedback.correct and words in feedback.message + feedback.hint, feedback


# ------------------------------------------------------------------ explorer

def test_beam_tree_table_and_text(gpt2):
    tree = ex.beam_tree_table(*gpt2, "After school the children went to", num_beams=3, steps=3)
    assert isinstance(tree, pd.DataFrame)
    assert list(tree.columns) == ["step", "rank", "parent", "token", "text", "log_prob", "total", "status"]
    assert len(tree) == 3 * 6  # 2 x num_beams candidates per step
    per_step = tree.groupby("step")["status"].apply(list)
    assert all(statuses.count("kept") == 3 for statuses in per_step.iloc[:-1])
    assert per_step.iloc[-1].count("finished") == 3  # the length limit ends the best num_beams
    assert (tree["total"] <= 0).all()
    text = ex.beam_tree_text(tree)
    assert text.count("step ") == 3 and "finished" in text
    with pytest.raises(ValueError, match="prompt"):
        ex.beam_tree_table(*gpt2, "   ")


def test_left_padded_ignores_tokenizer_settings(gpt2):
    tokenizer = gpt2[1]
    batch = ex.left_padded(tokenizer, ("Thanks", "After school the children went to"))
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][:, -1].tolist() == [1, 1]
