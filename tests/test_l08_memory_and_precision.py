"""Lesson 08 checkers: right answers pass, each typical mistake gets its own message."""

from __future__ import annotations

import tempfile

import pytest
import torch
from accelerate import init_empty_weights
from accelerate.utils import calculate_maximum_sizes, compute_module_sizes
from transformers import AutoModelForCausalLM

from conftest import load_standin
from course_utils import memory, standins
from course_utils.exercises import l08_memory_and_precision as ex


def solution_gb(config, dtype):
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    model.tie_weights()
    return compute_module_sizes(model, dtype=dtype)[""] / 1e9


def by_hand_gb(config, dtype):
    return memory.weight_bytes(memory.count_parameters(config), dtype) / 1e9


# --- question 1 --------------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [solution_gb, by_hand_gb])
def test_weights_gb_right(answer):
    assert ex.check_weights_gb(answer).correct


@pytest.mark.parametrize("wrong, words", [
    (lambda c, d: solution_gb(c, d) * 8, "bits, not bytes"),
    (lambda c, d: solution_gb(c, d) * 1e9 / 2**30, "GiB"),
    (lambda c, d: solution_gb(c, d) * 1e9, "looks like bytes"),
    (lambda c, d: solution_gb(c, d) + c.vocab_size * c.n_embd * memory.bytes_per_value(d) / 1e9,
     "embedding twice"),
    (lambda c, d: solution_gb(c, torch.float32), "fp32 size"),
    (lambda c, d: 0.7105, "expected"),  # a typed number: right for one config only
    (lambda c, d: None, "is None"),
    (lambda c, d: 1 / 0, "ZeroDivisionError"),
])
def test_weights_gb_mistakes_are_named(wrong, words):
    feedback = ex.check_weights_gb(wrong)
    assert not feedback.correct and words in str(feedback), str(feedback)


def test_untied_meta_model_is_the_embedding_counted_twice():
    def untied(config, dtype):
        with init_empty_weights():
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
        return compute_module_sizes(model, dtype=dtype)[""] / 1e9

    assert "embedding twice" in str(ex.check_weights_gb(untied))


def test_weights_gb_not_a_function():
    assert "expected a function" in str(ex.check_weights_gb(0.71))


# --- question 2 --------------------------------------------------------------------------------

def rule(device_type, capability):
    if device_type == "cuda":
        return torch.bfloat16 if capability >= (8, 0) else torch.float16
    return torch.float16 if device_type == "mps" else torch.float32


def test_choose_dtype_right():
    assert ex.check_choose_dtype(rule).correct


@pytest.mark.parametrize("wrong, words", [
    (lambda t, c: torch.bfloat16 if t == "cuda" else rule(t, c), "emulate"),
    (lambda t, c: torch.float16 if t == "cuda" else rule(t, c), "natively"),
    (lambda t, c: torch.float16 if t == "cpu" else rule(t, c), "slower"),
    (lambda t, c: torch.bfloat16 if t == "cpu" else rule(t, c), "fp32"),
    (lambda t, c: "float32", "expected a torch.dtype"),
])
def test_choose_dtype_mistakes_are_named(wrong, words):
    feedback = ex.check_choose_dtype(wrong)
    assert not feedback.correct and words in str(feedback), str(feedback)


def test_calling_the_course_helper_is_noticed():
    from course_utils.precision import dtype_for  # imported before the check: still noticed

    feedback = ex.check_choose_dtype(lambda t, c: dtype_for(t, c).dtype)
    assert not feedback.correct and "course_utils.precision" in str(feedback)
    assert ex.check_choose_dtype(rule).correct  # the probe is removed afterwards


# --- questions 3 and 4 on the offloaded stand-in -------------------------------------------------

@pytest.fixture(scope="module")
def models():
    in_memory, tokenizer = load_standin("generation", AutoModelForCausalLM)
    sizes = compute_module_sizes(in_memory)
    largest = calculate_maximum_sizes(in_memory)[1][0]
    offloaded = AutoModelForCausalLM.from_pretrained(
        standins.build("generation"), device_map="auto", max_memory={"cpu": sizes[""] // 2 + largest},
        offload_folder=tempfile.mkdtemp(), trust_remote_code=False)
    inputs = tokenizer("Offloading moves the weights, not the", return_tensors="pt")
    return in_memory, offloaded, sizes, inputs


def test_device_map_reading(models):
    _, offloaded, sizes, _ = models
    dmap = offloaded.hf_device_map
    names, expected = ex.offloaded_part(dmap, sizes, "cpu")
    assert names and 0 < expected < sizes[""]
    assert ex.check_device_map_reading(names, expected, dmap, sizes, "cpu").correct
    on_main = [n for n in dmap if n not in names]
    cases = [(on_main, expected, "ON the main device"), (names, 8 * expected, "bits"),
             (names, expected / 1e9, "GB or GiB"), (names, sizes[""] - expected, "main device"),
             (names, sizes[""], "whole model"), (names, expected + 1, "expected"),
             ("transformer.h", expected, "list of names")]
    for modules, value, words in cases:
        feedback = ex.check_device_map_reading(modules, value, dmap, sizes, "cpu")
        assert not feedback.correct and words in str(feedback), (words, str(feedback))


def right_gap(a, b, inputs):
    with torch.no_grad():
        return float((a(**inputs).logits - b(**inputs).logits).abs().max())


def test_logit_gap(models):
    in_memory, offloaded, _, inputs = models
    assert ex.logit_gap(offloaded, in_memory, inputs) <= 1e-5
    assert ex.logit_gap(ex.perturbed(in_memory), in_memory, inputs) > 1e-3
    assert ex.check_logit_gap(right_gap, offloaded, in_memory, inputs).correct

    def probs(a, b, x):
        with torch.no_grad():
            return float((a(**x).logits.softmax(-1) - b(**x).logits.softmax(-1)).abs().max())

    def last(a, b, x):
        with torch.no_grad():
            return float((a(**x).logits[:, -1] - b(**x).logits[:, -1]).abs().max())

    for wrong, words in [(lambda a, b, x: 0.0, "expected"), (probs, "probabilities"),
                         (last, "last position"), (lambda a, b, x: -1.0, "negative")]:
        feedback = ex.check_logit_gap(wrong, offloaded, in_memory, inputs)
        assert not feedback.correct and words in str(feedback), (words, str(feedback))


# --- the explorer --------------------------------------------------------------------------------

def test_fit_breakdown_7b_on_a_t4():
    table = ex.fit_breakdown(7, "fp16", 15)
    assert list(table["fits"]) == ["yes", "NO", "NO"]
    assert table.loc[0, "needs (GiB)"] == round(14e9 / 2**30, 2)
    assert table.loc[1, "needs (GiB)"] == round(14e9 * 1.2 / 2**30, 2)
    assert table.loc[2, "needs (GiB)"] == round(56e9 / 2**30, 2)
    assert list(ex.fit_breakdown(7, "int8", 15)["fits"]) == ["yes", "yes", "NO"]


def test_fit_breakdown_refuses_nonsense():
    with pytest.raises(ValueError):
        ex.fit_breakdown(7, "fp8", 15)
    with pytest.raises(ValueError):
        ex.fit_breakdown(-1, "fp16", 15)


def test_plot_fit_has_labels():
    import matplotlib

    matplotlib.use("Agg")
    fig = ex.plot_fit(ex.fit_breakdown(1, "fp32", 8))
    assert fig.axes[0].get_xlabel() == "memory (GiB)"
