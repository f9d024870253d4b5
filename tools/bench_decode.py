"""Lesson 05's hand-written greedy loop vs generate(), cached and uncached (a child of tools/benchmark.py).

    python tools/bench_decode.py TEXT NEW_TOKENS REPS THREADS

Loads the t5 role (run it with COURSE_STANDIN_SIZE=full for the real dimensions), times the three
ways to decode NEW_TOKENS tokens, interleaved REPS times (THREADS torch threads; 0: torch's
default), and prints one line `RESULT {...}` with the best time of each and whether they agree.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Callable

import torch
from transformers import AutoTokenizer, T5ForConditionalGeneration

from course_utils import registry
from course_utils.decoding import greedy_decode
from course_utils.environment import quiet_progress_bars


def main(text: str, n: int, reps: int, threads: int) -> dict:
    """Time generate() and greedy_decode with and without the cache; return the RESULT dict."""
    quiet_progress_bars()
    if threads > 0:
        torch.set_num_threads(threads)
    path = registry.checkpoint("t5", announce=False)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    model = T5ForConditionalGeneration.from_pretrained(path, trust_remote_code=False).eval()
    enc = tok(text, return_tensors="pt")

    def hand(cache: bool) -> list[int]:
        return greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=n,
                             use_cache=cache, stop_at_eos=False).tokens

    def gen() -> list[int]:
        with torch.no_grad():  # eos_token_id=None: no early stop, exactly n tokens like the hand loop
            out = model.generate(**enc, max_new_tokens=n, do_sample=False, eos_token_id=None)
        return out[0, 1:].tolist()

    runs: dict[str, Callable[[], list[int]]] = {
        "generate": gen, "cached": lambda: hand(True), "uncached": lambda: hand(False)}
    tokens = {name: fn() for name, fn in runs.items()}  # warm-up; the tokens are compared below
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):  # interleaved, so a change in the machine's load hits all three alike
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}  # the least disturbed run of each
    return {"generate": best["generate"], "cached": best["cached"], "uncached": best["uncached"],
            "spread": {name: max(t) / min(t) for name, t in times.items()},
            "same": tokens["generate"] == tokens["cached"] == tokens["uncached"]
            and len(tokens["cached"]) == n,
            "threads": torch.get_num_threads(), "input_tokens": int(enc["input_ids"].shape[1]),
            "d_model": model.config.d_model}


if __name__ == "__main__":
    result = main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    print("RESULT " + json.dumps(result))
