"""Unit tests of course_utils.tokens.token_table on the three tokenizer families."""

from __future__ import annotations

import pytest

from course_utils.exercises import l02_tokenization as ex
from course_utils.tokens import token_table


@pytest.mark.parametrize("role", ["sentiment", "generation", "t5"])
@pytest.mark.parametrize("text", ["I've been waiting for a HuggingFace course.", "Café au lait"])
def test_rows_match_the_tokenizer(role, text):
    tokenizer = ex.tokenizer_for(role)
    table = token_table(tokenizer, text)
    encoding = tokenizer(text, return_offsets_mapping=True)
    assert table["token"].tolist() == encoding.tokens()
    assert table["id"].tolist() == encoding["input_ids"]
    for row in table.itertuples():
        assert row.text == text[row.start:row.end]
        assert row.special == (row.id in tokenizer.all_special_ids)
    assert table["end"].max() == len(text)


def test_bert_special_tokens_cover_no_text():
    table = token_table(ex.tokenizer_for("sentiment"), "HuggingFace rocks!")
    specials = table[table["special"]]
    assert specials["token"].tolist() == ["[CLS]", "[SEP]"]
    assert (specials["start"] == specials["end"]).all() and (specials["text"] == "").all()
    face = table[table["token"] == "##face"].iloc[0]
    assert face["text"] == "Face"


def test_empty_text_keeps_the_columns():
    table = token_table(ex.tokenizer_for("generation"), "")
    assert list(table.columns) == ["token", "id", "start", "end", "text", "special"]
    assert len(table) == 0
