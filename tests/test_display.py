"""Display helpers: tokens stay readable and small probabilities stay visible."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 (after matplotlib.use, so no GUI backend loads)
import pytest  # noqa: E402 (same)
import torch  # noqa: E402 (same)

from course_utils import display  # noqa: E402 (same)


@pytest.mark.parametrize("token,shown", [
    ("library", "library"), (" library", " library"), ("", "''"), (" ", "' '"),
    ("\x00", "'\\x00'"), ("\n", "'\\n'"),
])
def test_readable_token_quotes_what_cannot_be_seen(token, shown):
    assert display.readable_token(token) == shown


def test_bar_chart_keeps_small_probabilities_on_the_fixed_scale_and_says_so():
    ax = display.prob_bar_chart(["a", "b"], [0.0013, 0.0012])
    assert ax.get_xlim() == (0.0, 1.0)  # noise near 0 is not stretched into structure
    assert "below 0.1" in ax.get_xlabel()
    assert [t.get_text() for t in ax.texts] == ["0.0012", "0.0013"]  # the values are still readable
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a"]  # highest on top
    plt.close(ax.figure)


def test_bar_chart_keeps_the_whole_range_from_a_tenth_up():
    ax = display.prob_bar_chart(["yes", "no", "maybe"], [0.25, 0.25, 0.25])
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_xlabel() == "probability (0 to 1)"
    assert [t.get_text() for t in ax.texts] == ["0.25"] * 3  # each bar carries its value
    plt.close(ax.figure)


def test_bar_chart_draws_a_control_character_token_without_font_warnings():
    ax = display.prob_bar_chart(["\x00", "ok"], [0.2, 0.1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ax.figure.canvas.draw()
    assert not [w for w in caught if "Glyph" in str(w.message)]
    assert "'\\x00'" in [t.get_text() for t in ax.get_yticklabels()]
    plt.close(ax.figure)


class _Tokenizer:
    def decode(self, ids):
        return {0: "\x00", 1: " the", 2: "cat"}[ids[0]]


def test_topk_table_lists_tokens_ids_and_probabilities():
    table = display.topk_table(torch.tensor([0.1, 0.6, 0.3]), _Tokenizer(), k=2)
    assert list(table["id"]) == [1, 2] and list(table["probability"]) == [0.6, 0.3]
    with pytest.raises(ValueError, match="1-D"):
        display.topk_table(torch.ones(2, 3), _Tokenizer())


def test_bar_chart_of_a_standin_says_its_values_are_noise():
    ax = display.prob_bar_chart(["a", "b"], [0.3, 0.2], standin=True)
    assert ax.get_xlim() == (0.0, 1.0) and display.STANDIN_NOTE in ax.get_xlabel()
    plt.close(ax.figure)


def test_is_standin_reads_the_marker_the_stand_in_builder_writes(tmp_path):
    from course_utils import standins

    folder = standins.build("generation")
    assert display.is_standin(folder) and display.is_standin(str(folder))
    assert not display.is_standin(standins.minilm_dir())  # the one real model of the offline tier
    assert not display.is_standin(tmp_path)  # no config.json at all

    class Config:
        course_standin = "random GPT2LMHeadModel (tiny), seed 0"

    class Model:
        config = Config()

    assert display.is_standin(Model()) and display.is_standin(Config())
    assert not display.is_standin(object())
