"""Benchmark lesson 07's hand-written cached GPT-2 loop against generate(), and cached against uncached.

    COURSE_MODELS=offline COURSE_STANDIN_SIZE=full python tools/bench_gpt2_cache.py [--reps N] [--threads N]

Runs on the `generation` role (at full size: the distilgpt2-sized stand-in, same compute as the real
model). Each of the three runs (generate(), the hand loop with the cache, the hand loop without it)
makes exactly `new_tokens` greedy tokens (EOS ignored); they are interleaved `reps` times so a change in
the machine's load hits all three alike, and the best time of each is kept. Prints `RESULT {json}`.
The goal for the hand loop is at most 1.3x generate()'s time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = "After school the children went to the park, where they played football until the sun went down and"
NEW_TOKENS = 48
GOAL = 1.3


def measure(new_tokens: int = NEW_TOKENS, reps: int = 5, threads: int = 1) -> dict[str, Any]:
    """Best-of-`reps` seconds for generate(), the cached and the uncached hand loop, and their ratios."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from course_utils import registry
    from course_utils.environment import quiet_progress_bars
    from course_utils.kv_cache import greedy_generate

    quiet_progress_bars()
    if threads > 0:
        torch.set_num_threads(threads)
    path = registry.checkpoint("generation", announce=False)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=False).eval()
    enc = tokenizer(PROMPT, return_tensors="pt")
    prompt_len = enc["input_ids"].shape[1]

    def hand(cache: bool) -> list[int]:
        return greedy_generate(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=new_tokens,
                               use_cache=cache, stop_at_eos=False).tokens[0].tolist()

    def gen() -> list[int]:
        with torch.no_grad():  # min_new_tokens: no early stop, exactly new_tokens like the hand loop
            out = model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 do_sample=False, pad_token_id=model.config.eos_token_id)
        return out[0, prompt_len:].tolist()

    runs = {"generate": gen, "cached": lambda: hand(True), "uncached": lambda: hand(False)}
    tokens = {name: fn() for name, fn in runs.items()}  # warm-up; the tokens are compared below
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    return {**best, "cached_vs_generate": best["cached"] / best["generate"],
            "uncached_vs_cached": best["uncached"] / best["cached"],
            "spread": {name: max(t) / min(t) for name, t in times.items()},
            "same_cached_generate": tokens["cached"] == tokens["generate"],
            "same_cached_uncached": tokens["cached"] == tokens["uncached"],
            "new_tokens": new_tokens, "prompt_tokens": int(prompt_len), "reps": reps,
            "threads": torch.get_num_threads(), "n_embd": model.config.n_embd,
            "goal": GOAL}


def main(argv: list[str] | None = None) -> int:
    """Measure (offline, full-size stand-in unless the environment says otherwise) and print RESULT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=NEW_TOKENS)
    args = parser.parse_args(argv)
    os.environ.setdefault("COURSE_MODELS", "offline")
    os.environ.setdefault("COURSE_STANDIN_SIZE", "full")
    result = measure(args.tokens, args.reps, args.threads)
    print("RESULT " + json.dumps(result))
    ok = result["cached_vs_generate"] <= GOAL and result["same_cached_generate"]
    print(f"hand-written cached loop / generate(): {result['cached_vs_generate']:.2f}x (goal <= {GOAL}x, "
          f"{'pass' if ok else 'over'}); uncached / cached: {result['uncached_vs_cached']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
