"""course_utils.plots: the numbers behind each lesson figure, and figures that keep a fixed scale."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import plots  # noqa: E402
from course_utils.display import STANDIN_NOTE  # noqa: E402


def test_attention_visibility_of_the_three_families():
    assert plots.attention_visibility("encoder", 3).tolist() == [[1, 1, 1]] * 3
    assert plots.attention_visibility("decoder", 3).tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    grid = plots.attention_visibility("encoder-decoder", n_input=2, n_output=2)
    assert grid.tolist() == [[1, 1, 0, 0],  # inputs see inputs only
                             [1, 1, 0, 0],
                             [1, 1, 1, 0],  # outputs see every input and earlier outputs
                             [1, 1, 1, 1]]
    with pytest.raises(ValueError, match="family"):
        plots.attention_visibility("decoder-only")


def test_model_families_figure_has_three_labelled_panels():
    fig = plots.plot_model_families()
    assert len(fig.axes) == 3
    assert all("key position" in ax.get_xlabel() and "query position" in ax.get_ylabel() for ax in fig.axes)
    plt.close(fig)


class _Encoding(dict):
    def __init__(self, tokens, offsets):
        super().__init__(offset_mapping=offsets)
        self._tokens = tokens

    def tokens(self):
        return self._tokens


class _Tokenizer:
    """Splits on the given (token, start, end) pieces; a special token covers (0, 0)."""

    def __init__(self, pieces):
        self.pieces = pieces

    def __call__(self, text, return_offsets_mapping=True):
        tokens = ["<s>"] + [p[0] for p in self.pieces]
        return _Encoding(tokens, [(0, 0)] + [(p[1], p[2]) for p in self.pieces])


TEXT = "hello big world"
BPE_LIKE = _Tokenizer([("hel", 0, 3), ("lo", 3, 5), ("Ġbig", 5, 9), ("Ġwor", 9, 13), ("ld", 13, 15)])
WORDS = _Tokenizer([("hello", 0, 5), ("big", 6, 9), ("world", 10, 15)])


def test_token_spans_drop_special_tokens():
    spans = plots.token_spans(BPE_LIKE, TEXT)
    assert spans["token"].tolist() == ["hel", "lo", "Ġbig", "Ġwor", "ld"]
    assert (spans["end"] > spans["start"]).all()


def test_tokens_per_word_counts_a_leading_space_span_for_the_word_after_it():
    table = plots.tokens_per_word({"bpe": BPE_LIKE, "words": WORDS}, TEXT)
    assert list(table.index) == ["hello", "big", "world"]
    assert table["bpe"].tolist() == [2, 1, 2]  # "Ġbig" starts on the space but belongs to "big"
    assert table["words"].tolist() == [1, 1, 1]
    ax = plots.plot_tokens_per_word(table)
    assert "tokens per word" in ax.get_ylabel()
    plt.close(ax.figure)


def test_token_span_figure_draws_every_character_and_token():
    ax = plots.plot_token_spans({"bpe": BPE_LIKE}, TEXT)
    texts = [t.get_text() for t in ax.texts]
    assert "Ġbig" in texts and texts.count("l") == 3
    assert len(ax.patches) == 5
    plt.close(ax.figure)


def test_padding_grid_labels_pads_and_positions():
    mask = torch.tensor([[0, 1], [1, 1]])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    ax = plots.plot_padding_grid([["!", "a"], ["b", "c"]], mask, positions)
    assert sorted(t.get_text() for t in ax.texts) == ["a\npos 0", "b\npos 0", "c\npos 1", "pad\npos 0"]
    plt.close(ax.figure)


def test_entropy_in_bits():
    assert plots.entropy_bits(torch.full((8,), 1 / 8)).item() == pytest.approx(3.0)
    assert plots.entropy_bits(torch.tensor([1.0, 0.0])).item() == pytest.approx(0.0)


def test_temperature_sweep_sharpens_and_flattens():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    sweep = plots.temperature_sweep(logits, [0.1, 1.0, 100.0])
    entropy = sweep["entropy (bits)"].tolist()
    assert entropy[0] < entropy[1] < entropy[2] <= 2.0 + 1e-9
    assert entropy[2] == pytest.approx(2.0, abs=1e-3)  # near uniform over 4 tokens
    assert sweep["top-1 probability"].iloc[0] > 0.99
    with pytest.raises(ValueError):
        plots.temperature_sweep(logits, [0.0])
    with pytest.raises(ValueError, match="1-D"):
        plots.temperature_sweep(logits[None], [1.0])


class _Decoder:
    def decode(self, ids):
        return f"t{ids[0]}"


def test_temperature_figure_keeps_fixed_axes_and_captions_a_standin():
    logits = torch.randn(64, generator=torch.Generator().manual_seed(0)) * 0.01  # a flat stand-in
    fig = plots.plot_temperature(logits, _Decoder(), k=5, standin=True)
    left, right = fig.axes
    assert left.get_ylim() == (0.0, 1.0)  # noise is not zoomed into structure
    assert right.get_ylim()[1] == pytest.approx(math.log2(64) * 1.05)
    assert any(STANDIN_NOTE in t.get_text() for t in left.texts)
    plt.close(fig)


def test_step_table_reads_the_chosen_tokens():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]]))
    table = plots.step_table(logits, [0, 2], _Decoder())
    assert table["token"].tolist() == ["t0", "t2"]
    assert table["p(chosen)"].tolist() == pytest.approx([0.7, 0.5])
    assert table["entropy (bits)"].iloc[1] == pytest.approx(1.5)
    with pytest.raises(ValueError):
        plots.step_table(logits, [0], _Decoder())
    fig = plots.plot_steps(table, vocab_size=3)
    assert fig.axes[0].get_ylim() == (0.0, 1.0)
    plt.close(fig)


def test_time_lengths_and_speedup():
    calls = []
    timings = plots.time_lengths(lambda n, cache: calls.append((n, cache)), [2, 4], repeats=3)
    assert len(calls) == 12 and set(calls) == {(2, True), (2, False), (4, True), (4, False)}
    assert list(timings.columns) == ["new tokens", "cache", "median s", "min s", "max s"]
    fake = pd.DataFrame([
        {"new tokens": 8, "cache": True, "median s": 1.0, "min s": 0.5, "max s": 2.0},
        {"new tokens": 8, "cache": False, "median s": 3.0, "min s": 2.0, "max s": 4.0},
    ])
    table = plots.speedup_table(fake)
    assert table.loc[8].tolist() == pytest.approx([3.0, 1.0, 8.0])
    ax = plots.plot_speedup(fake)
    assert "time without cache / time with cache" in ax.get_ylabel()
    plt.close(ax.figure)


def test_logit_lens_heatmap_uses_a_fixed_scale_and_captions_a_standin():
    from course_utils.logit_lens import plot_lens

    probs = pd.DataFrame([[0.0012, 0.0021], [0.0015, 0.0018]], index=["embeddings", "layer 1"],
                         columns=["0: 'a'", "1: 'b'"])
    tokens = pd.DataFrame([["'x'", "'y'"], ["'x'", "'z'"]], index=probs.index, columns=probs.columns)
    ax = plot_lens(tokens, probs, standin=True)
    assert ax.images[0].get_clim() == (0.0, 1.0)  # not 0.0012..0.0021, which would paint noise as structure
    assert any(STANDIN_NOTE in t.get_text() for t in ax.texts)
    plt.close(ax.figure)
    ax = plot_lens(tokens, probs)
    assert not any(STANDIN_NOTE in t.get_text() for t in ax.texts)
    plt.close(ax.figure)
