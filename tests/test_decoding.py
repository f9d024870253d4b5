"""Unit tests of course_utils.decoding: greedy decoding by hand == generate, with and without cache."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from conftest import load_standin
from course_utils.decoding import (DecodingStepper, GreedyResult, candidate_table, decoder_start,
                                   eos_ids, first_step_logits, greedy_decode, rescale_for_lm_head)
from course_utils.probes import forced_tokens

TEXT = "translate English to German: The house is wonderful."


@pytest.fixture(scope="module")
def t5():
    return load_standin("t5", T5ForConditionalGeneration)


@pytest.fixture(scope="module")
def flan_like():
    """A tiny random T5 configured like flan-t5: no decoder-output rescale."""
    torch.manual_seed(0)
    config = T5Config(tie_word_embeddings=False, d_model=32, d_kv=8, d_ff=64, num_heads=2, num_layers=2,
                      vocab_size=64, decoder_start_token_id=0)
    return T5ForConditionalGeneration(config).eval()


def encode(tokenizer, text=TEXT):
    return tokenizer(text, return_tensors="pt")


def reference(model, enc, max_new_tokens):
    out = model.generate(**enc, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                         return_dict_in_generate=True, output_logits=True, output_scores=True)
    return out.sequences[0, 1:].tolist(), torch.stack(out.logits)[:, 0], torch.stack(out.scores)[:, 0]


def test_decoder_start_is_the_config_start_token(t5):
    model, _ = t5
    start = decoder_start(model, batch_size=3)
    assert start.shape == (3, 1) and start.dtype == torch.long
    assert (start == model.config.decoder_start_token_id).all()


def test_decoder_start_needs_a_start_token(t5, monkeypatch):
    model, _ = t5
    monkeypatch.setattr(model.config, "decoder_start_token_id", None)
    with pytest.raises(ValueError, match="decoder_start_token_id"):
        decoder_start(model)


def test_rescale_follows_scale_decoder_outputs(t5, flan_like):
    model, _ = t5
    hidden = torch.randn(2, model.config.d_model)
    assert model.config.scale_decoder_outputs is True
    assert torch.allclose(rescale_for_lm_head(model, hidden), hidden * model.config.d_model ** -0.5)
    assert flan_like.config.scale_decoder_outputs is False
    small = torch.randn(2, 32)
    assert torch.equal(rescale_for_lm_head(flan_like, small), small)


def test_naive_lm_head_is_sqrt_d_model_too_large(t5):
    model, tokenizer = t5
    enc = encode(tokenizer)
    start = decoder_start(model)
    with torch.no_grad():
        out = model(**enc, decoder_input_ids=start, output_hidden_states=True)
        hidden = out.decoder_hidden_states[-1]
        naive = model.lm_head(hidden)
        fixed = model.lm_head(rescale_for_lm_head(model, hidden))
    assert torch.allclose(fixed, out.logits, atol=1e-5)
    assert torch.allclose(naive, out.logits * model.config.d_model ** 0.5, atol=1e-4)
    assert naive.argmax() == out.logits.argmax()


def test_first_step_logits_match_forward_with_start_token(t5):
    model, tokenizer = t5
    enc = tokenizer([TEXT, "summarize: a short one."], return_tensors="pt", padding=True)
    logits = first_step_logits(model, enc["input_ids"], enc["attention_mask"])
    assert logits.shape == (2, model.config.vocab_size)
    with torch.no_grad():
        single = model(**encode(tokenizer, "summarize: a short one."),
                       decoder_input_ids=decoder_start(model)).logits[:, -1]
    assert torch.allclose(logits[1:], single, atol=1e-5)  # padding is masked out
    assert not torch.allclose(logits[0], logits[1])


def test_eos_ids_reads_int_list_and_none(t5, monkeypatch):
    model, _ = t5
    assert eos_ids(model) == {1}
    monkeypatch.setattr(model.generation_config, "eos_token_id", [1, 5])
    assert eos_ids(model) == {1, 5}
    monkeypatch.setattr(model.generation_config, "eos_token_id", None)
    monkeypatch.setattr(model.config, "eos_token_id", None)
    assert eos_ids(model) == set()


def test_greedy_equals_generate_on_a_varied_path_with_eos(t5):
    model, tokenizer = t5
    enc = encode(tokenizer)
    script = {1: 7, 2: 30, 4: 1}  # varied tokens, then EOS at step 5
    with forced_tokens(model, script):
        want, want_logits, want_scores = reference(model, enc, 10)
    with forced_tokens(model, script):
        result = greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=10)
    assert isinstance(result, GreedyResult)
    assert want[1:3] == [7, 30] and want[-1] == 1 and len(want) == 5
    assert result.tokens == want
    assert result.logits.shape == (5, model.config.vocab_size)
    assert torch.allclose(result.logits, want_logits, atol=1e-4)
    assert torch.allclose(result.logits, want_scores, atol=1e-4)


def test_greedy_equals_generate_unforced(t5):
    model, tokenizer = t5
    enc = encode(tokenizer, "summarize: The meeting was moved to Friday.")
    want, want_logits, _ = reference(model, enc, 6)
    result = greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=6)
    assert result.tokens == want and torch.allclose(result.logits, want_logits, atol=1e-4)


def test_cache_and_no_cache_agree(t5):
    model, tokenizer = t5
    enc = encode(tokenizer)
    with forced_tokens(model, {0: 9, 2: 40}):
        cached = greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=6)
    with forced_tokens(model, {0: 9, 2: 40}):
        plain = greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=6,
                              use_cache=False)
    assert cached.tokens == plain.tokens
    assert torch.allclose(cached.logits, plain.logits, atol=1e-4)


def test_cached_steps_feed_one_token_and_the_encoder_runs_once(t5):
    model, tokenizer = t5
    enc = encode(tokenizer)
    lengths, encoder_calls = [], []
    hooks = [model.decoder.register_forward_pre_hook(
                 lambda m, a, k: lengths.append(k["input_ids"].shape[1]), with_kwargs=True),
             model.get_encoder().register_forward_pre_hook(lambda m, a: encoder_calls.append(1))]
    try:
        greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=5, stop_at_eos=False)
        cached = list(lengths)
        lengths.clear()
        greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=5, use_cache=False,
                      stop_at_eos=False)
    finally:
        for hook in hooks:
            hook.remove()
    assert cached == [1, 1, 1, 1, 1]
    assert lengths == [1, 2, 3, 4, 5]
    assert len(encoder_calls) == 2  # once per decoding run


def test_stop_at_eos_and_length_limit(t5):
    model, tokenizer = t5
    enc = encode(tokenizer)
    with forced_tokens(model, {1: 1}):
        stopped = greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=8)
    with forced_tokens(model, {1: 1}):
        running = greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=8,
                                stop_at_eos=False)
    assert len(stopped.tokens) == 2 and stopped.tokens[-1] == 1
    assert len(running.tokens) == 8 and running.tokens[1] == 1
    assert len(greedy_decode(model, enc["input_ids"], max_new_tokens=3).tokens) <= 3


def test_greedy_handles_one_input_at_a_time(t5):
    model, tokenizer = t5
    enc = tokenizer([TEXT, TEXT], return_tensors="pt")
    with pytest.raises(ValueError, match="one input"):
        greedy_decode(model, enc["input_ids"], enc["attention_mask"])


def test_greedy_on_a_model_without_rescale(flan_like):
    ids = torch.tensor([[5, 6, 7, 8, 1]])
    want = flan_like.generate(ids, do_sample=False, num_beams=1, max_new_tokens=5,
                              return_dict_in_generate=True, output_logits=True)
    result = greedy_decode(flan_like, ids, max_new_tokens=5)
    assert result.tokens == want.sequences[0, 1:].tolist()
    assert torch.allclose(result.logits, torch.stack(want.logits)[:, 0], atol=1e-5)


def test_candidate_table_is_full_softmax_top_k(t5):
    _, tokenizer = t5
    logits = torch.tensor([0.0, 3.0, 1.0, 2.0, -1.0])
    table = candidate_table(logits, tokenizer, k=3)
    assert isinstance(table, pd.DataFrame) and table["id"].tolist() == [1, 3, 2]
    expected = torch.softmax(logits, -1)[[1, 3, 2]]
    assert torch.allclose(torch.tensor(table["probability"].tolist()), expected, atol=1e-4)


def test_stepper_walks_the_greedy_path(t5):
    model, tokenizer = t5
    enc = encode(tokenizer)
    with forced_tokens(model, {1: 12, 3: 50}):
        want = greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=4)
    with forced_tokens(model, {1: 12, 3: 50}):
        stepper = DecodingStepper(model, tokenizer, TEXT, k=4, max_new_tokens=4)
        first = stepper.candidates()
        tables = [stepper.step() for _ in range(4)]
    assert stepper.tokens == want.tokens and stepper.done
    assert all(len(t) == 4 for t in tables)
    assert [t["id"].iloc[0] for t in tables] == want.tokens  # greedy: the top candidate is chosen
    start_logits = first_step_logits(model, enc["input_ids"], enc["attention_mask"])[0]
    assert first["id"].tolist() == candidate_table(start_logits, tokenizer, 4)["id"].tolist()
    assert stepper.output() == tokenizer.decode(want.tokens, skip_special_tokens=True)
    with pytest.raises(StopIteration):
        stepper.step()


def test_stepper_stops_at_eos_and_resets(t5):
    model, tokenizer = t5
    with forced_tokens(model, {1: 1}):  # lm_head call 0 happens when the stepper is built
        stepper = DecodingStepper(model, tokenizer, TEXT, k=2, max_new_tokens=10)
        stepper.step()
        assert not stepper.done
        stepper.step()
    assert stepper.done and stepper.tokens[-1] == 1 and len(stepper.tokens) == 2
    stepper.reset()
    assert stepper.tokens == [] and not stepper.done


def test_stepper_uses_a_custom_table(t5):
    model, tokenizer = t5
    seen = []

    def table_fn(logits, tok, k):
        seen.append(tuple(logits.shape))
        return pd.DataFrame({"id": logits.topk(k).indices.tolist()})

    stepper = DecodingStepper(model, tokenizer, TEXT, k=2, max_new_tokens=2, table_fn=table_fn)
    assert len(stepper.step()) == 2
    assert seen == [(model.config.vocab_size,)]
