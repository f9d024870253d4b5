"""Unit tests of course_utils.logit_lens on the offline GPT-2 stand-in."""

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import load_standin
from course_utils import standins
from course_utils.logit_lens import lens_logits, lens_tables, state_labels, top_tokens_by_dot

TEXT = "After school the children went to"


@pytest.fixture(scope="module")
def lm():
    return load_standin("generation", AutoModelForCausalLM)


@pytest.fixture(scope="module")
def run(lm):
    model, tokenizer = lm
    ids = tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
    return ids, out


def test_top_tokens_by_dot_ranks_dot_products(lm):
    model, tokenizer = lm
    ids = tokenizer(TEXT)["input_ids"]
    table = top_tokens_by_dot(model, tokenizer, ids, k=4)
    assert table.shape == (len(ids), 4)
    assert list(table.columns) == ["#1", "#2", "#3", "#4"]
    assert list(table.index) == [repr(tokenizer.decode([i])) for i in ids]
    weight = model.transformer.wte.weight.detach()
    for row, token_id in enumerate(ids):
        best = (weight @ weight[token_id]).topk(4).indices.tolist()
        assert table.iloc[row].tolist() == [repr(tokenizer.decode([i])) for i in best]


def test_state_labels():
    assert state_labels(3) == ["embeddings", "layer 1", "layer 2"]
    assert len(state_labels(7)) == 7


def test_lens_last_row_is_the_models_output(lm, run):
    model, _ = lm
    ids, out = run
    lens = lens_logits(model, out.hidden_states)
    assert lens.shape == (model.config.n_layer + 1, ids.shape[1], model.config.vocab_size)
    assert torch.allclose(lens[-1], out.logits[0], atol=1e-5)


def test_lens_applies_ln_f_to_intermediate_states_only(lm, run):
    model, _ = lm
    ids, out = run
    lens = lens_logits(model, out.hidden_states)
    with torch.no_grad():
        embedded = model.transformer.wte(ids[0]) + model.transformer.wpe(torch.arange(ids.shape[1]))
        expected_first = model.lm_head(model.transformer.ln_f(embedded))
        raw_middle = model.lm_head(out.hidden_states[3][0])
    assert torch.allclose(lens[0], expected_first, atol=1e-5)
    assert not torch.allclose(lens[3], raw_middle, atol=1e-3)  # the seed's raw projection differs


def test_lens_reads_the_requested_row_of_a_batch(lm):
    model, _ = lm
    tokenizer = AutoTokenizer.from_pretrained(standins.build("generation"))
    tokenizer.pad_token, tokenizer.padding_side = tokenizer.eos_token, "left"
    batch = tokenizer(["Thanks", TEXT], padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch, output_hidden_states=True).hidden_states
        alone = model(**tokenizer(TEXT, return_tensors="pt"), output_hidden_states=True).hidden_states
    assert torch.allclose(lens_logits(model, states, row=1), lens_logits(model, alone), atol=1e-4)


def test_lens_tables_top_token_and_probability(lm, run):
    model, tokenizer = lm
    ids, out = run
    lens = lens_logits(model, out.hidden_states)
    columns = [f"p{i}" for i in range(ids.shape[1])]
    tokens, probs = lens_tables(lens, tokenizer, columns)
    assert isinstance(tokens, pd.DataFrame) and isinstance(probs, pd.DataFrame)
    assert tokens.shape == probs.shape == (model.config.n_layer + 1, ids.shape[1])
    assert list(tokens.index) == state_labels(model.config.n_layer + 1)
    assert list(probs.columns) == columns
    top = lens.softmax(-1).max(-1)
    assert torch.allclose(torch.tensor(probs.values), top.values, atol=1e-6)
    assert tokens.iloc[-1, -1] == repr(tokenizer.decode([out.logits[0, -1].argmax().item()]))
    assert ((probs.values > 0) & (probs.values <= 1)).all()
