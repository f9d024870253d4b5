"""beam_search: equal to generate(num_beams=...) in sequences and sequences_scores, with EOS, length
penalties and repetition controls; the hand processors equal transformers' own."""

from __future__ import annotations

import matplotlib
import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.generation.logits_process import (
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
)

from conftest import load_standin
from course_utils.beam_search import (ban_repeated_ngrams, beam_search, beam_step, continuation_log_prob,
                                      padded_sequences, penalize_repeats, plot_beam_tree)

matplotlib.use("Agg")
PROMPT = "After school the children went to"


@pytest.fixture(scope="module")
def gpt2():
    return load_standin("generation", AutoModelForCausalLM)


@pytest.fixture
def eos_bias(gpt2):
    """Make EOS likely, so that beams finish early and the EOS branches run."""
    model = gpt2[0]
    eos = model.config.eos_token_id
    handle = model.lm_head.register_forward_hook(lambda m, a, out: out.index_add(
        -1, torch.tensor([eos]), torch.full((*out.shape[:-1], 1), 3.0)))
    yield
    handle.remove()


def compare(model, ids, num_beams, n, penalty, processors=None, **kwargs):
    mine = beam_search(model, ids, num_beams=num_beams, max_new_tokens=n, length_penalty=penalty,
                       processors=processors)
    eos = model.config.eos_token_id
    out = model.generate(ids, attention_mask=torch.ones_like(ids), num_beams=num_beams,
                         num_return_sequences=num_beams, max_new_tokens=n, length_penalty=penalty,
                         output_scores=True, return_dict_in_generate=True, do_sample=False,
                         pad_token_id=eos, **kwargs)
    assert torch.equal(padded_sequences(mine.finished, ids, eos), out.sequences)
    assert torch.allclose(torch.tensor([h.score for h in mine.finished]), out.sequences_scores, atol=1e-4)
    return mine


@pytest.mark.parametrize("num_beams, n, penalty", [(4, 8, 1.0), (3, 6, 0.0), (4, 7, 2.0)])
def test_equals_generate(gpt2, num_beams, n, penalty):
    model, tokenizer = gpt2
    compare(model, tokenizer(PROMPT, return_tensors="pt")["input_ids"], num_beams, n, penalty)


@pytest.mark.parametrize("penalty", [1.0, 0.0, 2.0])
def test_equals_generate_when_beams_end_at_eos(gpt2, eos_bias, penalty):
    model, tokenizer = gpt2
    mine = compare(model, tokenizer(PROMPT, return_tensors="pt")["input_ids"], 4, 8, penalty)
    assert any(h.tokens[-1] == model.config.eos_token_id for h in mine.finished)
    assert "finished" in set(mine.tree["status"][mine.tree["step"] < mine.tree["step"].max()])


@pytest.mark.parametrize("processor, kwargs", [
    (lambda ids, s: ban_repeated_ngrams(ids, s, 2), {"no_repeat_ngram_size": 2}),
    (lambda ids, s: penalize_repeats(ids, s, 1.5), {"repetition_penalty": 1.5}),
])
def test_equals_generate_with_repetition_controls(gpt2, processor, kwargs):
    model, tokenizer = gpt2
    compare(model, tokenizer(PROMPT, return_tensors="pt")["input_ids"], 4, 8, 1.0, processor, **kwargs)


def test_scores_are_summed_log_probs_divided_by_length(gpt2):
    model, tokenizer = gpt2
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    result = beam_search(model, ids, num_beams=3, max_new_tokens=5, length_penalty=1.5)
    for h in result.finished:
        assert abs(continuation_log_prob(model, ids, h.tokens) - h.log_prob) < 1e-3
        assert abs(h.score - h.log_prob / len(h.tokens) ** 1.5) < 1e-5
    scores = [h.score for h in result.finished]
    assert scores == sorted(scores, reverse=True)


def test_beam_step_ranks_over_all_beams():
    scores = torch.tensor([-1.0, -3.0])
    log_probs = torch.tensor([[-0.1, -2.0, -5.0], [-0.2, -0.3, -4.0]]).log_softmax(-1)
    top, parents, tokens, ends = beam_step(scores, log_probs, 3, length=2, length_penalty=1.0)
    want = (scores[:, None] + log_probs).reshape(-1).sort(descending=True).values[:3]
    assert torch.allclose(top, want) and torch.allclose(ends, top / 2)
    assert torch.allclose(scores[parents] + log_probs[parents, tokens], top)


def test_hand_processors_equal_transformers():
    generator = torch.Generator().manual_seed(0)
    ids = torch.tensor([[5, 6, 5, 6, 7, 5], [1, 2, 3, 4, 1, 2]])
    scores = torch.randn(2, 10, generator=generator)
    for n in (1, 2, 3, 7):
        expected = NoRepeatNGramLogitsProcessor(n)(ids, scores.clone())
        assert torch.equal(ban_repeated_ngrams(ids, scores, n), expected)
    assert torch.isinf(ban_repeated_ngrams(ids, scores, 2)[0, 6])  # "5 6" happened: no 6 after 5
    for penalty in (1.3, 0.7):
        assert torch.allclose(penalize_repeats(ids, scores, penalty),
                              RepetitionPenaltyLogitsProcessor(penalty)(ids, scores.clone()))
    assert torch.equal(penalize_repeats(ids, scores, 1.3)[:, 8:], scores[:, 8:])  # unseen: untouched


def test_single_prompt_only(gpt2):
    with pytest.raises(ValueError, match="one prompt"):
        beam_search(gpt2[0], torch.zeros(2, 3, dtype=torch.long))


def test_plot_beam_tree(gpt2):
    model, tokenizer = gpt2
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    tree = beam_search(model, ids, num_beams=2, max_new_tokens=3).tree
    ax = plot_beam_tree(tree)
    assert len(ax.lines) == len(tree) and ax.get_xlabel().startswith("generated token")
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"kept", "finished", "dropped"}
