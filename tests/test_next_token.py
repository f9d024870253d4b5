"""The next-token helpers lesson 04 teaches (course_utils/next_token.py), on the GPT-2 stand-in."""

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from course_utils import next_token, standins

PROMPT, CONTINUATION = "The cat sat on the", " mat and went to sleep."


@pytest.fixture(scope="module")
def model():
    return AutoModelForCausalLM.from_pretrained(standins.build("generation")).eval()


@pytest.fixture
def tokenizer():
    return AutoTokenizer.from_pretrained(standins.build("generation"))


def test_last_logits_are_the_models_last_position(model, tokenizer):
    ids = tokenizer("The cat", return_tensors="pt")
    with torch.no_grad():
        want = model(**ids).logits[0, -1]
    got = next_token.last_logits(model, tokenizer, "The cat")
    assert got.shape == (model.config.vocab_size,) and torch.allclose(got, want)


def test_next_token_table_columns_and_temperature(model, tokenizer):
    t1 = next_token.next_token_table(model, tokenizer, "The cat", temperature=1.0, k=6)
    assert list(t1.columns) == ["token", "id", "probability", "at T=1"] and len(t1) == 6
    assert t1["probability"].tolist() == t1["at T=1"].tolist()
    cold = next_token.next_token_table(model, tokenizer, "The cat", temperature=0.2, k=6)
    hot = next_token.next_token_table(model, tokenizer, "The cat", temperature=3.0, k=6)
    assert cold["id"].tolist() == t1["id"].tolist() == hot["id"].tolist()  # order never changes
    assert cold["probability"].iloc[0] > t1["probability"].iloc[0] > hot["probability"].iloc[0]
    assert cold["at T=1"].tolist() == t1["at T=1"].tolist()


def test_plot_next_token_table_draws_one_bar_per_token(model, tokenizer):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = next_token.plot_next_token_table(next_token.next_token_table(model, tokenizer, "The cat", k=5))
    assert len(ax.patches) == 5
    plt.close("all")


def test_continuation_logprob_agrees_with_the_models_loss(model, tokenizer):
    prompt_ids = tokenizer(PROMPT)["input_ids"]
    cont_ids = tokenizer(CONTINUATION)["input_ids"]
    ids = torch.tensor([prompt_ids + cont_ids])
    labels = ids.clone()
    labels[0, :len(prompt_ids)] = -100
    with torch.no_grad():
        loss = model(input_ids=ids, labels=labels).loss.item()
    per_token = next_token.continuation_logprob(model, tokenizer, PROMPT, CONTINUATION)
    total = float(per_token.sum())
    assert math.isclose(total, -loss * len(cont_ids), abs_tol=1e-4)


def test_last_position_lens_ends_with_the_models_logits(model, tokenizer):
    lens = next_token.last_position_lens(model, tokenizer, PROMPT)
    assert lens.shape == (model.config.n_layer + 1, model.config.vocab_size)
    assert torch.allclose(lens[-1], next_token.last_logits(model, tokenizer, PROMPT), atol=1e-5)
    raw = next_token.last_position_lens(model, tokenizer, PROMPT, ln_f=False)
    assert not torch.allclose(raw[:-1], lens[:-1], atol=1e-3)  # without ln_f the rows differ
