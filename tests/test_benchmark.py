"""The benchmark script's own logic: result files, row merging, --only, measuring a child, verdicts."""

from __future__ import annotations

import importlib.util
import sys

import nbformat
import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("course_benchmark", ROOT / "tools" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_table_round_trips_through_a_results_file(bench, tmp_path):
    rows = [bench.Row("notebooks/01.ipynb", "12.0 s", "1.00 GB", "≤ 60 s", "pass", "a \\| b"),
            bench.Row("Hub download", result="1553 MB")]
    path = tmp_path / "results.md"
    path.write_text("# Benchmark\n\n" + bench.table(rows) + "\n\nTotal: 1 min.\n")
    assert bench.read_rows(path) == rows


def test_a_subset_replaces_its_rows_and_keeps_the_others(bench):
    old = [bench.Row("a", "1 s"), bench.Row("b", "2 s")]
    merged, kept = bench.merge_rows(old, [bench.Row("b", "3 s"), bench.Row("c", "4 s")])
    assert [(r.item, r.time) for r in merged] == [("a", "1 s"), ("b", "3 s"), ("c", "4 s")]
    assert kept == ["a"]


def test_a_group_run_again_drops_its_rows_it_no_longer_measures(bench):
    old = [bench.Row("notebooks/01_pipelines.ipynb", "30 s"),
           bench.Row("grade 30 submissions (lesson 01)", "225 s"),
           bench.Row("GPT-2 KV-cache loop vs generate()", "1 s")]
    new = [bench.Row("grade 10 submissions (lesson 01), sandboxed", "41 s")]
    merged, kept = bench.merge_rows(old, new, frozenset({"grading"}))
    assert [r.item for r in merged] == ["notebooks/01_pipelines.ipynb",
                                        "GPT-2 KV-cache loop vs generate()",
                                        "grade 10 submissions (lesson 01), sandboxed"]
    late = bench.Row("notebooks/09_fine_tuning.ipynb", "44 s")  # a new lesson: with its group
    merged, _ = bench.merge_rows(merged, [late])  # one lesson run: the others' rows stay
    assert [r.item for r in merged][:2] == ["notebooks/01_pipelines.ipynb", late.item]
    assert kept == ["notebooks/01_pipelines.ipynb", "GPT-2 KV-cache loop vs generate()"]
    assert [bench.group_of(r.item) for r in old] == ["notebooks", "grading", "decoding"]
    assert all(group in bench.ROWS for group in bench.GROUP_PREFIXES)


def test_a_kept_row_says_when_it_was_measured_once(bench):
    row = bench.dated_row(bench.Row("test suite (./course test)", "227 s", note="707 passed"),
                          "2026-11-23 22:53")
    assert row.note == "707 passed [measured 2026-11-23 22:53]"
    assert bench.dated_row(row, "2026-12-01 17:16") == row  # kept again: still its own date
    assert bench.dated_row(bench.Row("x"), "d").note == "[measured d]"


def test_only_selects_lessons_and_groups(bench):
    groups, lessons = bench.selected("01,decoding", suite=False)
    assert groups == {"notebooks", "decoding"} and lessons == {"01_pipelines"}
    groups, _ = bench.selected(None, suite=False)
    assert "suite" not in groups and "grading" in groups
    assert "suite" in bench.selected(None, suite=True)[0]
    with pytest.raises(SystemExit, match="unknown item 'lesson9'"):
        bench.selected("lesson9", suite=False)


def test_run_measured_sees_exit_code_output_and_memory(bench, tmp_path):
    code = ("import sys, time; block = b'x' * (300 * 10**6); time.sleep(0.5); print('done'); "
            "sys.exit(3)")  # written pages, held for 10 sampling intervals
    m = bench.run_measured([sys.executable, "-c", code], {}, tmp_path, 60, include_root=True)
    assert m.status == 3 and "done" in m.out
    assert m.peak > 250 * 10**6  # the 300 MB block was seen by the sampler


def test_run_measured_kills_a_child_past_its_timeout(bench, tmp_path):
    m = bench.run_measured([sys.executable, "-c", "import time; time.sleep(60)"], {}, tmp_path, 1)
    assert m.status == -9 and m.seconds < 30


def write_notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nbformat.write(nb, path)
    return path


def test_notebook_verdicts_name_the_error_and_the_budget(bench, tmp_path, monkeypatch):
    broken = write_notebook(tmp_path / "broken.ipynb", "x = 1", "raise ValueError('no such token')")
    row = bench.bench_notebook("broken", broken)
    assert row.result == "error" and "ValueError: no such token" in row.note
    monkeypatch.setattr(bench, "TIME_BUDGET_S", 0.0)  # any run is over a zero budget
    fine = write_notebook(tmp_path / "fine.ipynb", "print(1 + 1)")
    row = bench.bench_notebook("fine", fine)
    assert row.result == "over (time)" and row.note.startswith("cells ")
    assert bench.bench_notebook("absent", None).result == "missing"


def test_readme_table_is_the_latest_result(bench):
    """Like a helper out of sync with its lesson: the README must show benchmarks/latest.md."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    latest = (ROOT / "benchmarks" / "latest.md").read_text(encoding="utf-8")
    assert bench.readme_with_results(readme, latest) == readme, (
        "README's benchmark table differs from benchmarks/latest.md: run ./course bench, or copy "
        "the table")


def test_readme_update_replaces_only_the_marked_block(bench):
    readme = f"intro\n{bench.README_START}\nold table\n{bench.README_END}\nafter\n"
    report = "# Benchmark 2026-01-02 03:04\n\nCommand: x\n\n| item |\n|---|\n| a |\n\nTotal.\n"
    new = bench.readme_with_results(readme, report)
    assert new.startswith("intro\n") and new.endswith(f"{bench.README_END}\nafter\n")
    assert "old table" not in new and "| a |" in new and "(Benchmark 2026-01-02 03:04," in new


def test_gpt2_decoding_rows_read_the_childs_result(bench, monkeypatch):
    result = {"cached": 1.2, "generate": 1.0, "uncached": 3.6, "cached_vs_generate": 1.2,
              "uncached_vs_cached": 3.0, "same_cached_generate": True, "same_cached_uncached": True,
              "new_tokens": 48, "prompt_tokens": 20, "threads": 1, "n_embd": 768, "goal": 1.3}
    seen = {}

    def fake_run(cmd, env, cwd, timeout, include_root=False):
        seen["cmd"] = cmd
        import json
        return bench.Measured(0, 5.0, 5.0, 2**30, "noise\nRESULT " + json.dumps(result) + "\n")

    monkeypatch.setattr(bench, "run_measured", fake_run)
    loop, cache = bench.bench_gpt2_decoding(reps=3, threads=1)
    assert seen["cmd"][1].endswith("bench_gpt2_cache.py") and "--reps" in seen["cmd"]
    assert loop.result == "1.20× pass" and "same tokens" in loop.note and "n_embd 768" in loop.note
    assert cache.result == "3.00× faster"
    result.update(same_cached_generate=False)  # fast enough, but other tokens: not a pass
    loop, _ = bench.bench_gpt2_decoding(reps=3, threads=1)
    assert loop.result == "1.20× over" and "TOKENS DIFFER" in loop.note
    result.update(cached_vs_generate=1.5, same_cached_generate=True)  # same tokens, too slow
    loop, _ = bench.bench_gpt2_decoding(reps=3, threads=1)
    assert loop.result == "1.50× over"
