"""tools/bench_gpt2_cache.py: the figures it returns are measured and consistent (small stand-in,
few tokens)."""

from __future__ import annotations

import importlib.util

from conftest import ROOT

spec = importlib.util.spec_from_file_location("bench_gpt2_cache", ROOT / "tools" / "bench_gpt2_cache.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_measure_returns_consistent_figures():
    result = bench.measure(new_tokens=3, reps=2, threads=1)
    assert result["same_cached_generate"] and result["same_cached_uncached"]
    for name in ("generate", "cached", "uncached"):
        assert result[name] > 0 and result["spread"][name] >= 1
    assert abs(result["cached_vs_generate"] - result["cached"] / result["generate"]) < 1e-12
    assert abs(result["uncached_vs_cached"] - result["uncached"] / result["cached"]) < 1e-12
    assert (result["new_tokens"], result["reps"], result["threads"]) == (3, 2, 1)
