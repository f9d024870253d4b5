"""Lesson 06's explorer functions and checkers: right answers pass, each named mistake is recognised."""

from __future__ import annotations

import math
import sys

import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, GPT2LMHeadModel
from transformers.models.gpt2.modeling_gpt2 import GPT2Block

from course_utils import standins
from course_utils import attention as course_attention
from course_utils.exercises import l06_attention as ex
from course_utils.feedback import Feedback


@pytest.fixture(scope="module")
def gpt2():
    path = standins.build("generation")
    model = GPT2LMHeadModel.from_pretrained(path, attn_implementation="eager", trust_remote_code=False).eval()
    return model, AutoTokenizer.from_pretrained(path, trust_remote_code=False)


def verdict(outcome: Feedback) -> bool:
    assert isinstance(outcome, Feedback), outcome
    return outcome.correct


def wrong_with(outcome: Feedback, *words: str) -> None:
    text = f"{outcome.message} {outcome.hint}"
    assert not verdict(outcome), outcome
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"


# ---- the explorer ----------------------------------------------------------------------------

def test_head_pattern_table_is_a_causal_probability_table(gpt2):
    model, tokenizer = gpt2
    table = ex.head_pattern_table(model, tokenizer, "The cat sat on the mat", layer=1, head=1)
    n = len(tokenizer("The cat sat on the mat")["input_ids"])
    assert isinstance(table, pd.DataFrame) and table.shape == (n, n)
    assert list(table.index) == list(table.columns) and table.index[0].startswith("0: ")
    values = torch.tensor(table.to_numpy())
    assert torch.allclose(values.sum(-1), torch.ones(n, dtype=values.dtype), atol=5e-3)  # rounded to 3 places
    assert bool((values[torch.triu(torch.ones(n, n, dtype=torch.bool), 1)] == 0).all())


def test_head_pattern_table_matches_output_attentions(gpt2):
    model, tokenizer = gpt2
    enc = tokenizer(ex.TEXT, return_tensors="pt")
    with torch.no_grad():
        weights = model(**enc, output_attentions=True).attentions[2][0, 1]
    table = ex.head_pattern_table(model, tokenizer, ex.TEXT, layer=2, head=1)
    assert torch.allclose(torch.tensor(table.to_numpy()).float(), weights, atol=6e-4)


@pytest.mark.parametrize("layer,head", [(-1, 0), (6, 0), (0, 2)])
def test_head_pattern_table_rejects_out_of_range(gpt2, layer, head):
    model, tokenizer = gpt2
    with pytest.raises(ValueError, match="layer must be in 0..5 and head in 0..1"):
        ex.head_pattern_table(model, tokenizer, "hello", layer=layer, head=head)


def test_empty_text_and_sdpa_model_give_clear_errors(gpt2):
    model, tokenizer = gpt2
    with pytest.raises(ValueError, match="empty"):
        ex.attention_maps(model, tokenizer, "")
    sdpa = GPT2LMHeadModel.from_pretrained(standins.build("generation"), trust_remote_code=False).eval()
    with pytest.raises(ValueError, match="attn_implementation='eager'"):
        ex.attention_maps(sdpa, tokenizer, "hello there")


def test_head_scores_find_a_previous_token_and_a_first_token_head():
    n = 5
    previous = torch.zeros(n, n)
    previous[0, 0] = 1
    previous[torch.arange(1, n), torch.arange(n - 1)] = 1
    first = torch.zeros(n, n)
    first[:, 0] = 1
    scores = ex.head_scores((torch.stack([previous, first]),))
    assert scores.loc[0, "previous token"] == 1.0 and scores.loc[0, "first token"] == 0.25
    assert scores.loc[1, "first token"] == 1.0 and scores.loc[1, "head"] == 1


def test_plot_and_explorer_text_fallback(gpt2, monkeypatch, capsys):
    import functools

    import ipywidgets as w
    import matplotlib

    matplotlib.use("Agg")
    model, tokenizer = gpt2
    table = ex.head_pattern_table(model, tokenizer, "The cat sat")
    fig = ex.plot_head_pattern(table)
    assert fig.axes[0].get_xlabel().startswith("key") and len(fig.axes) == 2  # the heatmap and its colour bar
    monkeypatch.setenv("COURSE_WIDGETS", "text")
    from course_utils import widgets

    widgets.explorer(functools.partial(ex.head_pattern_table, model, tokenizer),
                     {"text": w.Text(value="The cat sat"), "layer": w.IntSlider(value=0),
                      "head": w.IntSlider(value=9)})
    assert "head in 0..1" in capsys.readouterr().out  # a bad head is one line, not a traceback


# ---- the probe -------------------------------------------------------------------------------

def test_probe_records_python_and_builtin_calls_and_restores_the_profiler():
    def outer():
        return course_attention.causal_mask(2), torch.nn.functional.scaled_dot_product_attention
    marker = lambda *args: None  # noqa: E731
    sys.setprofile(marker)
    try:
        with ex.forbidden_calls(ex.block_watch()) as entered:
            outer()
            q = torch.zeros(1, 1, 2, 2)
            torch.nn.functional.scaled_dot_product_attention(q, q, q)
        assert sys.getprofile() is marker
    finally:
        sys.setprofile(None)
    assert entered == ["course_utils.attention.causal_mask", "scaled_dot_product_attention"]


# ---- question 1: the causal mask -------------------------------------------------------------

def good_mask(n):
    return torch.zeros(n, n).masked_fill(~torch.tril(torch.ones(n, n, dtype=torch.bool)), float("-inf"))


def test_mask_right_with_inf_or_min():
    assert verdict(ex.check_causal_mask(good_mask))
    assert verdict(ex.check_causal_mask(lambda n: good_mask(n).clamp(min=torch.finfo(torch.float32).min)))


@pytest.mark.parametrize("fn,words", [
    (lambda n: good_mask(n).T, ["transposed"]),
    (lambda n: torch.tril(torch.ones(n, n)), ["0s and 1s", "multiplicative"]),
    (lambda n: torch.tril(torch.ones(n, n, dtype=torch.bool)), ["boolean"]),
    (lambda n: torch.zeros(n, n).masked_fill(~torch.tril(torch.ones(n, n, dtype=torch.bool), -1),
                                             float("-inf")), ["diagonal"]),
    (lambda n: good_mask(n).clamp(min=-1.0), ["not negative enough"]),
    (lambda n: good_mask(n) + 0.5, ["not 0 on and below the diagonal", "torch.tril"]),
    (lambda n: good_mask(n)[None], ["shape"]),
    (lambda n: torch.tril(torch.ones(n, n, dtype=torch.long)), ["dtype"]),
    (lambda n: course_attention.causal_mask(n), ["causal_mask", "rules out"]),
    (lambda n: [[0.0]], ["list", "tensor"]),
    (None, ["None"]),
    (3, ["expected a function"]),
])
def test_mask_mistakes_are_named(fn, words):
    wrong_with(ex.check_causal_mask(fn), *words)


def test_mask_from_transformers_masking_utils_is_ruled_out():
    from transformers.masking_utils import causal_mask_function

    def via_transformers(n):
        fn = causal_mask_function
        allowed = torch.tensor([[fn(0, 0, q, k) for k in range(n)] for q in range(n)])
        return torch.zeros(n, n).masked_fill(~allowed, float("-inf"))

    wrong_with(ex.check_causal_mask(via_transformers), "masking_utils", "rules out")


# ---- question 2: one head's weights ----------------------------------------------------------

def make_head_weights(scale="sqrt", mask="before", layer_norm=True, swap=False, all_heads=False):
    def head_weights(block, x, head):
        width, n_head = x.shape[-1], block.attn.num_heads
        head_dim = width // n_head
        h = block.ln_1(x) if layer_norm else x
        qkv = h @ block.attn.c_attn.weight + block.attn.c_attn.bias
        q, k, _ = qkv.split(width, dim=-1)
        if all_heads:
            q = q.view(*q.shape[:2], n_head, head_dim).transpose(1, 2)
            k = k.view(*k.shape[:2], n_head, head_dim).transpose(1, 2)
        else:
            cols = slice(head * head_dim, (head + 1) * head_dim)
            q, k = q[..., cols], k[..., cols]
        if swap:
            q, k = k, q
        divisor = {"sqrt": math.sqrt(head_dim), "none": 1.0, "width": math.sqrt(width),
                   "dim": head_dim}[scale]
        scores = q @ k.transpose(-1, -2) / divisor
        m = good_mask(x.shape[1])
        if mask == "before":
            return torch.softmax(scores + m, -1)
        if mask == "zero after":
            return torch.softmax(scores, -1).masked_fill(m != 0, 0.0)
        if mask == "added after":
            return torch.softmax(scores, -1) + m
        return torch.softmax(scores, -1)
    return head_weights


def test_head_weights_right(gpt2):
    model, tokenizer = gpt2
    assert verdict(ex.check_head_weights(make_head_weights(), model, tokenizer))
    assert verdict(ex.check_head_weights(ex.head_weights_reference, model, tokenizer))


@pytest.mark.parametrize("kwargs,words", [
    (dict(scale="none"), ["sqrt(head_dim)", "forgot"]),
    (dict(scale="width"), ["sqrt(n_embd)"]),
    (dict(scale="dim"), ["divided by head_dim"]),
    (dict(mask="zero after"), ["after the softmax", "sum to 1"]),
    (dict(mask="added after"), ["added the mask after the softmax"]),
    (dict(mask="none"), ["no causal mask"]),
    (dict(layer_norm=False), ["ln_1"]),
    (dict(swap=True), ["swapped"]),
    (dict(all_heads=True), ["every head"]),
])
def test_head_weights_mistakes_are_named(gpt2, kwargs, words):
    model, tokenizer = gpt2
    wrong_with(ex.check_head_weights(make_head_weights(**kwargs), model, tokenizer), *words)


def test_head_weights_forbidden_calls(gpt2):
    model, tokenizer = gpt2

    def via_module(block, x, head):
        return block.attn(block.ln_1(x), attention_mask=good_mask(x.shape[1])[None, None])[1][:, head]

    def via_conv1d(block, x, head):
        qkv = block.attn.c_attn(block.ln_1(x))
        return make_head_weights()(block, x, head) + 0 * qkv.sum()

    def via_course(block, x, head):
        return course_attention.self_attention(block.attn, block.ln_1(x))[1][:, head]

    wrong_with(ex.check_head_weights(via_module, model, tokenizer), "GPT2Attention.forward")
    wrong_with(ex.check_head_weights(via_conv1d, model, tokenizer), "Conv1D.forward")
    wrong_with(ex.check_head_weights(via_course, model, tokenizer), "course_utils.attention")


def test_head_weights_needs_eager(gpt2):
    _, tokenizer = gpt2
    sdpa = GPT2LMHeadModel.from_pretrained(standins.build("generation"), trust_remote_code=False).eval()
    wrong_with(ex.check_head_weights(make_head_weights(), sdpa, tokenizer), "eager")


def test_head_weights_errors_become_feedback(gpt2):
    model, tokenizer = gpt2

    def broken(block, x, head):
        raise IndexError("index 9 is out of bounds")

    wrong_with(ex.check_head_weights(broken, model, tokenizer), "IndexError")
    wrong_with(ex.check_head_weights(None, model, tokenizer), "None")


# ---- question 3: a whole block ---------------------------------------------------------------

def make_block(scale=True, transposed_proj=False, merge="right", mask="before"):
    """A learner's block, written independently of the checker's references, with one mistake."""
    def my_block(block, x):
        attn, mlp = block.attn, block.mlp
        batch, tokens, width = x.shape
        n_head = attn.num_heads
        head_dim = width // n_head
        qkv = block.ln_1(x) @ attn.c_attn.weight + attn.c_attn.bias
        q, k, v = (p.view(batch, tokens, n_head, head_dim).transpose(1, 2) for p in qkv.split(width, dim=-1))
        scores = q @ k.transpose(-1, -2) / (math.sqrt(head_dim) if scale else 1)
        if mask == "before":
            weights = torch.softmax(scores + good_mask(tokens), -1)
        elif mask == "after":
            weights = torch.softmax(scores, -1) * torch.tril(torch.ones(tokens, tokens))
        else:
            weights = torch.softmax(scores, -1)
        mixed = weights @ v
        merged = {"right": lambda: mixed.transpose(1, 2).reshape(batch, tokens, width),
                  "no transpose": lambda: mixed.reshape(batch, tokens, width),
                  "dim first": lambda: mixed.permute(0, 2, 3, 1).reshape(batch, tokens, width)}[merge]()
        proj = attn.c_proj.weight.T if transposed_proj else attn.c_proj.weight
        x = x + merged @ proj + attn.c_proj.bias
        inner = mlp.act(block.ln_2(x) @ mlp.c_fc.weight + mlp.c_fc.bias)
        return x + inner @ mlp.c_proj.weight + mlp.c_proj.bias
    return my_block


def test_block_right(gpt2):
    model, tokenizer = gpt2
    assert verdict(ex.check_block(make_block(), model, tokenizer))
    assert verdict(ex.check_block(lambda block, x: ex._block_variant(block, x), model, tokenizer))


@pytest.mark.parametrize("kwargs,words", [
    (dict(scale=False), ["sqrt(head_dim)"]),
    (dict(transposed_proj=True), ["transposed", "Conv1D", "(in, out)"]),
    (dict(merge="no transpose"), ["wrong order", "transpose(1, 2)"]),
    (dict(merge="dim first"), ["wrong order", "head_dim ended up before"]),
    (dict(mask="after"), ["after the softmax"]),
    (dict(mask="none"), ["no causal mask"]),
])
def test_block_mistakes_are_named(gpt2, kwargs, words):
    model, tokenizer = gpt2
    wrong_with(ex.check_block(make_block(**kwargs), model, tokenizer), *words)


def test_block_other_failures(gpt2):
    model, tokenizer = gpt2
    n = model.config.n_layer

    def huge(block, x):
        return make_block()(block, x) + torch.finfo(torch.float32).min * (x.shape[1] > 0)

    def last_with_ln_f(block, x):
        out = make_block()(block, x)
        return model.transformer.ln_f(out) if block is model.transformer.h[n - 1] else out

    def no_residual(block, x):
        return make_block()(block, x) - x

    wrong_with(ex.check_block(huge, model, tokenizer), "after the softmax")
    wrong_with(ex.check_block(last_with_ln_f, model, tokenizer), "applies ln_f")
    wrong_with(ex.check_block(no_residual, model, tokenizer), "differs from hidden_states[1]")
    wrong_with(ex.check_block(lambda block, x: x[0], model, tokenizer), "shape")


def test_block_forbidden_calls(gpt2):
    model, tokenizer = gpt2
    mask = lambda x: good_mask(x.shape[1])[None, None]  # noqa: E731
    wrong_with(ex.check_block(lambda block, x: block(x, attention_mask=mask(x)), model, tokenizer),
               "GPT2Block.forward")
    wrong_with(ex.check_block(lambda block, x: course_attention.block_forward(block, x), model, tokenizer),
               "course_utils.attention")

    def via_mlp(block, x):
        return make_block()(block, x) + 0 * block.mlp(block.ln_2(x))

    wrong_with(ex.check_block(via_mlp, model, tokenizer), "GPT2MLP.forward")


# ---- question 4: parameters from the config --------------------------------------------------

def good_count(config):
    d = config.n_embd
    inner = config.n_inner if config.n_inner is not None else 4 * d
    return 4 * d * d + 4 * d + 2 * d * inner + inner + d + 4 * d


def test_count_right_and_equal_to_the_module(gpt2):
    model, _ = gpt2
    assert verdict(ex.check_block_parameters(good_count, model.config))
    for config in ex.probe_configs(model.config):
        assert good_count(config) == ex.counted_block_parameters(config)


@pytest.mark.parametrize("fn,words", [
    (lambda c: 49_984 if c.n_embd == 64 else 7_087_872, ["typed, not computed"]),
    (lambda c: 4 * c.n_embd ** 2 + 8 * c.n_embd ** 2 + 4 * c.n_embd, ["biases"]),
    (lambda c: good_count(c) - 4 * c.n_embd, ["layer norms"]),
    (lambda c: good_count(c) - 2 * c.n_embd, ["weight AND a bias"]),
    (lambda c: good_count(c) - 2 * c.n_embd ** 2 - 2 * c.n_embd, ["Q, K and V"]),
    (lambda c: good_count(GPT2Block_config_without_inner(c)), ["n_inner"]),
    (lambda c: sum(p.numel() for p in GPT2Block(c).parameters()), ["Module.__init__", "rules out"]),
    (lambda c: sum(course_attention.block_parameter_counts(c).values()), ["block_parameter_counts"]),
    (lambda c: float(good_count(c)), ["float", "int"]),
    (lambda c: good_count(c) + 1, ["instead of"]),
])
def test_count_mistakes_are_named(gpt2, fn, words):
    model, _ = gpt2
    wrong_with(ex.check_block_parameters(fn, model.config), *words)


def GPT2Block_config_without_inner(config):  # noqa: N802 (a helper named for what it mimics)
    """A copy of `config` that forgets n_inner (the mistake: always 4 * n_embd)."""
    import copy

    forgetful = copy.copy(config)
    forgetful.n_inner = None
    return forgetful
