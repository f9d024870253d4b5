"""kv_cache: the hand-written cached loop equals generate(), padded rows equal their prompts alone,
and the memory formula equals the cache's tensors."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from conftest import load_standin
from course_utils.exercises.l07_kv_cache_and_beam_search import left_padded
from course_utils.probes import forced_tokens
from course_utils.kv_cache import (cache_bytes_for_config, cache_nbytes, cache_shapes, greedy_generate,
                                   kv_cache_bytes, position_ids_from_mask)


@pytest.fixture(scope="module")
def gpt2():
    return load_standin("generation", AutoModelForCausalLM)


def reference(model, batch, n, **kwargs):
    out = model.generate(**batch, max_new_tokens=n, do_sample=False, output_logits=True,
                         return_dict_in_generate=True, pad_token_id=model.config.eos_token_id, **kwargs)
    return out.sequences[:, batch["input_ids"].shape[1]:], torch.stack(out.logits, dim=1)


def test_positions_count_real_tokens_only():
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1], [0, 1, 2, 3]]


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_equals_generate_on_a_padded_batch(gpt2, use_cache):
    model, tokenizer = gpt2
    batch = left_padded(tokenizer, ("Thanks", "After school the children went to"))
    mine = greedy_generate(model, batch["input_ids"], batch["attention_mask"], 7, use_cache=use_cache)
    tokens, logits = reference(model, batch, 7)
    assert torch.equal(mine.tokens, tokens)
    assert torch.allclose(mine.logits, logits, atol=1e-4)


def test_each_padded_row_equals_its_prompt_alone(gpt2):
    model, tokenizer = gpt2
    texts = ("Thanks", "After school the children went to")
    batch = left_padded(tokenizer, texts)
    together = greedy_generate(model, batch["input_ids"], batch["attention_mask"], 5, stop_at_eos=False)
    for row, text in enumerate(texts):
        alone = greedy_generate(model, tokenizer(text, return_tensors="pt")["input_ids"], None, 5,
                                stop_at_eos=False)
        assert torch.equal(together.tokens[row], alone.tokens[0])
        assert torch.allclose(together.logits[row], alone.logits[0], atol=1e-4)


def test_without_positions_the_padded_row_differs(gpt2):
    """The check above can fail: GPT-2's default positions count the pads."""
    model, tokenizer = gpt2
    batch = left_padded(tokenizer, ("Thanks", "After school the children went to"))
    with torch.no_grad():
        plain = model(**batch).logits[0, -1]
        alone = model(**tokenizer("Thanks", return_tensors="pt")).logits[0, -1]
    assert (plain - alone).abs().max() > 1e-3


def test_eos_stops_and_finished_rows_pad(gpt2):
    model, tokenizer = gpt2
    eos = model.config.eos_token_id
    batch = left_padded(tokenizer, ("Thanks", "After school the children went to"))
    with forced_tokens(model, {1: eos}):  # the second step ends every row
        mine = greedy_generate(model, batch["input_ids"], batch["attention_mask"], 6)
    assert mine.tokens.shape == (2, 2) and mine.tokens[:, 1].tolist() == [eos, eos]
    with forced_tokens(model, {1: eos}):
        tokens, _ = reference(model, batch, 6)
    assert torch.equal(mine.tokens, tokens)


def test_processors_are_applied_before_the_argmax(gpt2):
    model, tokenizer = gpt2
    ids = tokenizer("After school the children went to", return_tensors="pt")["input_ids"]
    ban_all_but_5 = lambda seq, scores: torch.full_like(scores, -1e9).index_fill(1, torch.tensor([5]), 0)  # noqa: E731
    mine = greedy_generate(model, ids, None, 3, processors=ban_all_but_5)
    assert mine.tokens.tolist() == [[5, 5, 5]]
    plain = greedy_generate(model, ids, None, 3)
    assert torch.equal(mine.logits[:, 0], plain.logits[:, 0])  # stored raw, as generate's output_logits
    assert mine.logits.min() > -1e3


def test_cache_grows_one_position_per_step_and_formula_matches(gpt2):
    model, tokenizer = gpt2
    cfg = model.config
    ids = tokenizer("After school the children went to", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        cache = model(ids, use_cache=True).past_key_values
        before = cache.get_seq_length()
        model(torch.tensor([[5]]), past_key_values=cache, use_cache=True)
    shapes = cache_shapes(cache)
    head_dim = cfg.n_embd // cfg.n_head
    assert len(shapes) == cfg.n_layer
    assert all(k == v == (1, cfg.n_head, before + 1, head_dim) for k, v in shapes)
    assert cache_nbytes(cache) == kv_cache_bytes(cfg.n_layer, cfg.n_head, head_dim, before + 1, 1, 4)
    assert cache_nbytes(cache) == cache_bytes_for_config(cfg, before + 1, 1, 4)


def test_seven_billion_parameter_cache_at_4k_tokens():
    llama2 = LlamaConfig(num_hidden_layers=32, num_attention_heads=32, hidden_size=4096)
    assert cache_bytes_for_config(llama2, 4096, 1, 2) == 2 * 2**30  # 2 GiB in float16
    gqa = LlamaConfig(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, hidden_size=4096)
    assert cache_bytes_for_config(gqa, 4096, 1, 2) == 2**29
    assert kv_cache_bytes(1, 1, 1, 1, 1, 1) == 2
