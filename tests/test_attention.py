"""course_utils.attention against GPT-2's own modules: every helper equal to the library, number
for number."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel
from transformers.activations import NewGELUActivation
from transformers.models.gpt2.modeling_gpt2 import GPT2Block

from course_utils import standins
from course_utils.attention import (attention_bias, block_forward, block_parameter_counts, causal_mask,
                                    feed_forward, forward_by_hand, gelu_new, merge_heads, relative_gap,
                                    self_attention, split_heads)

TEXT = "After school the children went to the park"


@pytest.fixture(scope="module")
def gpt2():
    path = standins.build("generation")
    model = GPT2LMHeadModel.from_pretrained(path, attn_implementation="eager", trust_remote_code=False).eval()
    return model, AutoTokenizer.from_pretrained(path, trust_remote_code=False)


@pytest.fixture(scope="module")
def run(gpt2):
    model, tokenizer = gpt2
    ids = tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return ids, model(ids, output_attentions=True, output_hidden_states=True)


def test_split_and_merge_heads_put_head_zero_first():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    assert torch.equal(heads[0, 1, 2], x[0, 2, 2:4])  # head 1 owns columns 2..3
    assert torch.equal(merge_heads(heads), x)


def test_causal_mask_is_additive_lower_triangle():
    mask = causal_mask(4)
    assert mask.dtype == torch.float32 and mask.shape == (4, 4)
    assert torch.equal(mask == 0, torch.tril(torch.ones(4, 4, dtype=torch.bool)))
    assert mask[0, 1].item() == torch.finfo(torch.float32).min
    assert causal_mask(3, torch.float16)[0, 2].item() == torch.finfo(torch.float16).min


def test_causal_mask_matches_sdpa_is_causal():
    q, k, v = torch.randn(3, 1, 2, 5, 4).unbind(0)
    weights = torch.softmax(q @ k.transpose(-1, -2) / 2 + causal_mask(5), dim=-1)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(weights @ v, expected, atol=1e-6)


def test_attention_bias_hides_pads_and_the_future():
    bias = attention_bias(torch.tensor([[0, 1, 1], [1, 1, 1]]))
    allowed = bias == 0
    assert bias.shape == (2, 1, 3, 3)
    assert allowed[0, 0].tolist() == [[False, False, False], [False, True, False], [False, True, True]]
    assert torch.equal(allowed[1, 0], torch.tril(torch.ones(3, 3, dtype=torch.bool)))
    assert torch.isfinite(torch.softmax(bias[0, 0], -1)).all()  # a row with nothing to see: uniform, not NaN


def test_self_attention_equals_output_attentions_and_the_module(gpt2, run):
    model, _ = gpt2
    ids, out = run
    for layer in (0, model.config.n_layer - 1):
        block = model.transformer.h[layer]
        with torch.no_grad():
            h = block.ln_1(out.hidden_states[layer])
            mine, weights = self_attention(block.attn, h)
            theirs = block.attn(h, attention_mask=causal_mask(ids.shape[1])[None, None])[0]
        assert (weights - out.attentions[layer]).abs().max() < 1e-6
        assert (mine - theirs).abs().max() < 1e-6


def test_the_scale_matters_on_the_standin(gpt2, run):
    """The equality above is sharp: without 1/sqrt(head_dim) the weights move far beyond tolerance."""
    model, _ = gpt2
    _, out = run
    block = model.transformer.h[0]
    with torch.no_grad():
        h = block.ln_1(out.hidden_states[0])
        _, scaled = self_attention(block.attn, h)
        _, explicit = self_attention(block.attn, h, causal_mask(h.shape[1]))  # bias=None means this
        q, k, _ = (h @ block.attn.c_attn.weight + block.attn.c_attn.bias).split(h.shape[-1], -1)
        q, k = split_heads(q, block.attn.num_heads), split_heads(k, block.attn.num_heads)
        no_scale = torch.softmax(q @ k.transpose(-1, -2) + causal_mask(h.shape[1]), -1)
    assert torch.equal(scaled, explicit)
    assert (no_scale - out.attentions[0]).abs().max() > 1e-3


def test_gelu_new_and_feed_forward_equal_the_library(gpt2, run):
    model, _ = gpt2
    _, out = run
    x = torch.linspace(-6, 6, 241)
    assert torch.allclose(gelu_new(x), NewGELUActivation()(x), atol=1e-7)
    assert (gelu_new(x) - F.gelu(x)).abs().max() > 1e-4  # not the exact GELU
    block = model.transformer.h[1]
    with torch.no_grad():
        h = block.ln_2(out.hidden_states[1])
        assert (feed_forward(block.mlp, h) - block.mlp(h)).abs().max() < 1e-6


def test_every_block_equals_hidden_states(gpt2, run):
    model, _ = gpt2
    _, out = run
    with torch.no_grad():
        for i, block in enumerate(model.transformer.h):
            mine = block_forward(block, out.hidden_states[i])
            if i == model.config.n_layer - 1:
                assert relative_gap(mine, out.hidden_states[i + 1]) > 1e-2  # the last one is after ln_f
                mine = model.transformer.ln_f(mine)
            assert relative_gap(mine, out.hidden_states[i + 1]) < 1e-5, i


def test_forward_by_hand_equals_the_model(gpt2, run):
    model, _ = gpt2
    ids, out = run
    with torch.no_grad():
        states, logits = forward_by_hand(model, ids)
    assert len(states) == model.config.n_layer + 1
    assert all(relative_gap(a, b) < 1e-5 for a, b in zip(states, out.hidden_states))
    assert logits.dtype == torch.float32 and relative_gap(logits, out.logits) < 1e-5


def test_forward_by_hand_left_padded_equals_each_text_alone(gpt2):
    model, tokenizer = gpt2
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    texts = ["The children played", TEXT]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        _, logits = forward_by_hand(model, batch["input_ids"], batch["attention_mask"])
        positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        theirs = model(**batch, position_ids=positions).logits
        for row, text in enumerate(texts):
            alone = model(tokenizer(text, return_tensors="pt")["input_ids"]).logits[0]
            assert relative_gap(logits[row, -alone.shape[0]:], alone) < 1e-5
        unmasked = forward_by_hand(model, batch["input_ids"])[1]
    assert relative_gap(logits, theirs) < 1e-5
    # no mask: pads leak in (and positions shift)
    assert relative_gap(unmasked[0, -3:], logits[0, -3:]) > 1e-3


@pytest.mark.parametrize("n_embd,n_head,n_inner",
                         [(64, 2, None), (48, 4, None), (40, 5, 100), (768, 12, None)])
def test_block_parameter_counts_match_the_module(n_embd, n_head, n_inner):
    config = GPT2Config(n_embd=n_embd, n_head=n_head, n_inner=n_inner)
    block = GPT2Block(config)
    counts = block_parameter_counts(config)
    assert counts["attention"] == sum(p.numel() for p in block.attn.parameters())
    assert counts["mlp"] == sum(p.numel() for p in block.mlp.parameters())
    assert counts["layer norms"] == sum(p.numel() for m in (block.ln_1, block.ln_2) for p in m.parameters())


def test_distilgpt2_block_count():
    """The real distilgpt2's block: 7,087,872 parameters (12 x 64 heads, width 768)."""
    assert sum(block_parameter_counts(GPT2Config(n_embd=768, n_head=12)).values()) == 7_087_872


def test_relative_gap():
    assert relative_gap(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5])) == pytest.approx(0.2)
    assert relative_gap(torch.tensor([0.1]), torch.tensor([0.3])) == pytest.approx(0.2)
    assert math.isclose(relative_gap(torch.zeros(3), torch.zeros(3)), 0.0)
