"""course_utils.memory: parameters by hand equal a meta-device model's, bytes equal accelerate's."""

from __future__ import annotations

import pytest
import torch
from accelerate import init_empty_weights
from accelerate.utils import compute_module_sizes
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

from course_utils import memory

CONFIGS = {
    "gpt2-tied": GPT2Config(n_embd=64, n_layer=2, n_head=2, vocab_size=300, n_positions=32,
                            bos_token_id=0, eos_token_id=0),
    "gpt2-untied-inner": GPT2Config(n_embd=48, n_layer=3, n_head=4, n_inner=100, vocab_size=211,
                                    n_positions=16, tie_word_embeddings=False, bos_token_id=0,
                                    eos_token_id=0),
    "llama": LlamaConfig(hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, vocab_size=128,
                         tie_word_embeddings=False, bos_token_id=0, eos_token_id=0),
    "llama-gqa-bias-tied": LlamaConfig(hidden_size=64, intermediate_size=100, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, vocab_size=99,
                                       attention_bias=True, mlp_bias=True, tie_word_embeddings=True,
                                       bos_token_id=0, eos_token_id=0),
}


def meta_model(config):
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    model.tie_weights()
    return model


@pytest.mark.parametrize("name", CONFIGS)
def test_count_parameters_equals_the_meta_model(name):
    config = CONFIGS[name]
    assert memory.count_parameters(config) == meta_model(config).num_parameters()


def test_an_untied_count_would_differ_by_the_embedding():
    config = CONFIGS["gpt2-tied"]
    with init_empty_weights():
        untied = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    assert untied.num_parameters() - memory.count_parameters(config) == 300 * 64


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.int8])
def test_weight_bytes_equal_accelerate_for_gpt2(dtype):
    config = CONFIGS["gpt2-tied"]  # GPT-2 has no buffers in transformers 5
    expected = compute_module_sizes(meta_model(config), dtype=dtype)[""]
    assert memory.weight_bytes(memory.count_parameters(config), dtype) == expected


def test_bytes_per_value_is_bits_over_8():
    assert [memory.bytes_per_value(d) for d in (torch.float32, torch.bfloat16, torch.float16,
                                                torch.int8, torch.int64)] == [4, 2, 2, 1, 8]


def test_unknown_architecture_is_refused():
    from transformers import BertConfig

    with pytest.raises(ValueError, match="gpt2 and llama"):
        memory.count_parameters(BertConfig())


def test_will_it_fit_rules_of_thumb():
    report = memory.will_it_fit(10**9, torch.float16, 2_400_000_000)
    assert (report.weights, report.needed, report.fits) == (2 * 10**9, 2_400_000_000, True)
    assert not memory.will_it_fit(10**9, torch.float16, 2_399_999_999).fits
    train = memory.will_it_fit(10**9, torch.float32, 16 * 10**9, purpose="training")
    assert train.needed == 16 * 10**9 and train.fits
    assert "does NOT fit" in str(memory.will_it_fit(7 * 10**9, torch.float16, memory.T4_BYTES))
    with pytest.raises(ValueError):
        memory.will_it_fit(1, torch.float32, 1, purpose="fine-tuning")


def test_format_bytes_shows_both_units():
    assert memory.format_bytes(13.48e9) == "13.48 GB (12.55 GiB)"
    assert memory.format_bytes(2 * 2**20) == "2.10 MB (2.00 MiB)"


def test_free_memory_on_cpu_is_psutil_available(monkeypatch):
    import psutil

    class Fake:
        available = 123_456

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Fake())
    assert memory.free_memory("cpu") == 123_456
