"""Token tables: what a tokenizer makes of a text, one row per token (taught in lesson 02)."""

from __future__ import annotations

import pandas as pd


def token_table(tokenizer, text: str) -> pd.DataFrame:
    """One row per token of `text`: token, id, character span, the text it covers, special or not."""
    encoding = tokenizer(text, return_offsets_mapping=True)
    special_ids = set(tokenizer.all_special_ids)
    rows = [
        {"token": token, "id": token_id, "start": start, "end": end,
         "text": text[start:end], "special": token_id in special_ids}
        for token, token_id, (start, end) in zip(
            encoding.tokens(), encoding["input_ids"], encoding["offset_mapping"])
    ]
    return pd.DataFrame(rows, columns=["token", "id", "start", "end", "text", "special"])
