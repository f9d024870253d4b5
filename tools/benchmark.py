"""Benchmark the course at the real checkpoints' dimensions, on CPU: `./course bench`.

    python tools/benchmark.py [--only NAME[,NAME...]] [--suite] [--reps N] [--threads N] [--no-write]

NAME: `notebooks`, a lesson (`01`, `03_models_and_heads`), `standins`, `decoding`, `grading`,
`suite`, `download`. Runs with COURSE_MODELS=offline and COURSE_STANDIN_SIZE=full: the stand-ins
have the real models' sizes (same compute and memory, random weights). Rows:

- stand-ins: building the full-size stand-ins once (cached afterwards; not part of a lesson's time);
- every lesson under notebooks/, each in a fresh kernel (nbclient in its own process, in a
  temporary folder): wall time end to end and peak resident memory of the kernel's process tree
  (psutil, sampled every 50 ms), against the budget of 60 s and 2.5 GB (10^9 bytes) per lesson;
- lesson 05's hand-written greedy loop with the KV cache (course_utils.decoding) vs generate() on
  the same input and number of tokens (goal <= 1.3x), and cached vs uncached decoding (best of
  --reps interleaved runs, 1 torch thread by default: steady on a shared machine);
- grading 10 submissions of lesson 01 (course_grading.bench: sandboxed, vs --no-sandbox and vs
  plain nbgrader autograde on the same batch): half solved, half the unanswered student version;
  and 30 such submissions on the Dask LocalCluster vs the previous thread pool (goal: no more
  than 5% slower), with seconds per submission per worker and 1,000 submissions on paper;
- the whole test suite, by running `./course test` (only with --suite or --only suite);
- the course's total Hub download from the registry.

Prints a Markdown table and writes benchmarks/results-YYYY-MM-DD.md, benchmarks/latest.md and
the table in README.md between its bench markers (with --only, the rows measured replace theirs
in the same day's file; the others are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: import the checkout's course_utils
from course_utils.lessons import LESSONS as MANIFEST  # noqa: E402 (needs the path above)

VENV_BIN = ROOT / ".venv" / "bin"
NOTEBOOKS = ROOT / "notebooks"
BENCHMARKS = ROOT / "benchmarks"
LESSONS = [lesson.slug for lesson in MANIFEST]  # the manifest's lessons; other notebooks found are added
TIME_BUDGET_S = 60.0
MEMORY_BUDGET_GB = 2.5
GB = 1e9
LOOP_GOAL = 1.3  # hand-written cached loop / generate()
DECODE_TEXT = "translate English to German: The house is wonderful and the garden behind it is large."
DECODE_TOKENS = 48
NOTEBOOK_TIMEOUT_S = 900
SUITE_LOG = ROOT / "test-artifacts" / "bench-suite.log"  # the suite's whole output (not committed)
ROWS = ["standins", "notebooks", "decoding", "grading", "suite", "download"]


@dataclass
class Row:
    """One line of the results table."""

    item: str
    time: str = ""
    memory: str = ""
    budget: str = ""
    result: str = ""
    note: str = ""


def bench_env(standin_size: Optional[str] = "full") -> dict[str, str]:
    """Environment of a child process as ./course sets it (bench: full size; test, grade: tiny)."""
    env = dict(os.environ)
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", COURSE_MODELS="offline",
               MPLBACKEND="Agg", CUDA_VISIBLE_DEVICES="")
    if standin_size:
        env["COURSE_STANDIN_SIZE"] = standin_size
    else:
        env.pop("COURSE_STANDIN_SIZE", None)
    return env


# ------------------------------------------------------------------ processes and memory

class TreeSampler:
    """Samples the summed RSS of a process's descendants (optionally with itself) in a thread."""

    def __init__(self, pid: int, include_root: bool = False, interval: float = 0.05) -> None:
        self.pid, self.include_root, self.interval = pid, include_root, interval
        self.peak = 0
        self._cpu: dict[int, float] = {}  # last CPU seconds seen per process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                procs = root.children(recursive=True) + ([root] if self.include_root else [])
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                    times = proc.cpu_times()
                    self._cpu[proc.pid] = times.user + times.system
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    @property
    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the sampled processes, as last seen."""
        return sum(self._cpu.values())

    def __enter__(self) -> "TreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def kill_group(proc: subprocess.Popen) -> None:
    """Stop a child started with start_new_session, and everything it started, by process id."""
    from course_grading.bench import kill_tree

    kill_tree(proc.pid)
    proc.wait()


@dataclass
class Measured:
    """What run_measured saw: exit code, wall and CPU seconds, peak RSS, output."""

    status: int
    seconds: float
    cpu: float
    peak: int
    out: str


def run_measured(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float,
                 include_root: bool = False, interval: float = 0.05) -> Measured:
    """Run `cmd`; measure wall time, CPU time and peak RSS of its process tree."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        with TreeSampler(proc.pid, include_root, interval) as sampler:
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                code = -9
        seconds = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    return Measured(code, seconds, sampler.cpu_seconds, sampler.peak, text)


# ------------------------------------------------------------------ rows

def fmt_s(seconds: float) -> str:
    """Seconds with one decimal."""
    return f"{seconds:.1f} s"


def fmt_gb(nbytes: float) -> str:
    """Bytes as GB (10^9) with two decimals."""
    return f"{nbytes / GB:.2f} GB"


def bench_standins() -> Row:
    """Build the full-size stand-ins once (they are cached for every later run)."""
    code = ("import time; from course_utils import registry, standins\n"
            "roles = [r for r in registry.REGISTRY if r != 'features']\n"
            "built = [r for r in roles if not (standins.cache_root() / "
            "f'{r}-full-seed0-v{standins.BUILD_VERSION}' / 'model.safetensors').exists()]\n"
            "for r in roles: standins.build(r, size='full')\n"
            "print('BUILT', ','.join(built) or '-')\n"
            "print('CACHE', standins.cache_root())\n")
    m = run_measured([sys.executable, "-c", code], bench_env(), ROOT, 3600, include_root=True)
    status, seconds, peak, out = m.status, m.seconds, m.peak, m.out
    if status != 0:
        return Row("stand-ins at full size", fmt_s(seconds), result="error",
                   note=last_error(out))
    built = re.search(r"^BUILT (.*)$", out, re.M)
    cache = re.search(r"^CACHE (.*)$", out, re.M)
    which = built.group(1) if built else "?"
    note = "all cached" if which == "-" else f"built now: {which}"
    return Row("stand-ins at full size (once)", fmt_s(seconds), fmt_gb(peak), "", "",
               note + f"; cache {cache.group(1) if cache else '?'}")


def last_error(text: str) -> str:
    """The last line of an output that names an error, shortened."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.search(r"(Error|Exception)\b", ln)]
    return ((errors or lines or ["no output"])[-1])[:160].replace("|", "\\|")


def lesson_paths() -> list[tuple[str, Optional[Path]]]:
    """(name, path or None if missing) of the expected lessons, then any other notebook."""
    found = {p.stem: p for p in sorted(NOTEBOOKS.glob("*.ipynb"))}
    names = LESSONS + [n for n in found if n not in LESSONS]
    return [(n, found.get(n)) for n in names]


RUNNER = Path(__file__).with_name("bench_notebook.py")  # runs one notebook in a fresh kernel


def bench_notebook(name: str, path: Optional[Path]) -> Row:
    """Run one lesson end to end in a fresh kernel; time it and sample the kernel's memory."""
    item = f"notebooks/{name}.ipynb"
    if path is None:
        return Row(item, result="missing", note="notebook not written yet")
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        work = Path(tmp)
        shutil.copy2(path, work / path.name)
        cmd = [sys.executable, str(RUNNER), str(work / path.name), str(work),
               str(work / f"{name}.executed.ipynb")]
        m = run_measured(cmd, bench_env(), work, NOTEBOOK_TIMEOUT_S)
    status, seconds, peak, out = m.status, m.seconds, m.peak, m.out
    found = re.search(r"^RESULT (.*)$", out, re.M)
    report = json.loads(found.group(1)) if found else {"status": "error",
                                                         "error": last_error(out)}
    budget = f"≤ {TIME_BUDGET_S:.0f} s, ≤ {MEMORY_BUDGET_GB} GB"
    if status == -9:
        return Row(item, fmt_s(seconds), fmt_gb(peak), budget, "timeout",
                   f"killed after {NOTEBOOK_TIMEOUT_S} s")
    if report["status"] != "ok":
        return Row(item, fmt_s(seconds), fmt_gb(peak), budget, "error",
                   report.get("error", "")[:160].replace("|", "\\|"))
    over = [what for what, bad in (("time", seconds > TIME_BUDGET_S),
                                   ("memory", peak > MEMORY_BUDGET_GB * GB)) if bad]
    result = "pass" if not over else "over (" + ", ".join(over) + ")"
    return Row(item, fmt_s(seconds), fmt_gb(peak), budget, result,
               f"cells {report['execute_s']:.1f} s after kernel start; kernel CPU {m.cpu:.0f} s")


DECODE_PROGRAM = Path(__file__).with_name("bench_decode.py")  # lesson 05 loop vs generate()


def bench_decoding(reps: int, threads: int) -> list[Row]:
    """Lesson 05's cached greedy loop vs generate(), and cached vs uncached, on the full-size T5."""
    if not (ROOT / "course_utils" / "decoding.py").exists():
        note = "skipped: course_utils/decoding.py does not exist yet"
        return [Row("KV-cache loop vs generate()", note=note),
                Row("cached vs uncached decoding", note=note)]
    m = run_measured(
        [sys.executable, str(DECODE_PROGRAM), DECODE_TEXT, str(DECODE_TOKENS), str(reps),
         str(threads)],
        bench_env(), ROOT, 1800, include_root=True)
    status, peak, out = m.status, m.peak, m.out
    found = re.search(r"^RESULT (.*)$", out, re.M)
    if status != 0 or not found:
        return [Row("KV-cache loop vs generate()", result="error", note=last_error(out))]
    r = json.loads(found.group(1))
    ratio = r["cached"] / r["generate"]
    speedup = r["uncached"] / r["cached"]
    setup = (f"full-size T5 stand-in (d_model {r['d_model']}), {r['input_tokens']} input tokens, "
             f"{DECODE_TOKENS} new tokens, best of {reps} interleaved runs (max/min "
             f"{max(r['spread'].values()):.1f}), torch threads: {r['threads']}")
    agree = "same tokens" if r["same"] else "TOKENS DIFFER"
    return [
        Row("KV-cache loop vs generate()", f"{r['cached']:.2f} s vs {r['generate']:.2f} s",
            fmt_gb(peak), f"≤ {LOOP_GOAL}×", f"{ratio:.2f}× " +
            ("pass" if ratio <= LOOP_GOAL and r["same"] else "over"), f"{agree}; {setup}"),
        Row("cached vs uncached decoding", f"{r['cached']:.2f} s vs {r['uncached']:.2f} s", "",
            "", f"{speedup:.2f}× faster", "greedy_decode(use_cache=True) vs use_cache=False; "
            + agree),
        *bench_gpt2_decoding(reps, threads),
    ]


GPT2_PROGRAM = Path(__file__).with_name("bench_gpt2_cache.py")  # lesson 07 loop vs generate()


def bench_gpt2_decoding(reps: int, threads: int) -> list[Row]:
    """Lesson 07's cached GPT-2 greedy loop vs generate(), and cached vs uncached, at full size."""
    names = ("GPT-2 KV-cache loop vs generate()", "GPT-2 cached vs uncached decoding")
    m = run_measured([sys.executable, str(GPT2_PROGRAM), "--reps", str(reps), "--threads",
                      str(threads)], bench_env(), ROOT, 1800, include_root=True)
    found = re.search(r"^RESULT (.*)$", m.out, re.M)
    if m.status != 0 or not found:
        return [Row(names[0], result="error", note=last_error(m.out))]
    r = json.loads(found.group(1))
    same = r["same_cached_generate"] and r["same_cached_uncached"]
    agree = "same tokens" if same else "TOKENS DIFFER"
    ratio = r["cached_vs_generate"]
    setup = (f"full-size GPT-2 stand-in (n_embd {r['n_embd']}), {r['prompt_tokens']} prompt tokens, "
             f"{r['new_tokens']} new tokens, best of {reps} interleaved runs, torch threads: "
             f"{r['threads']}")
    return [
        Row(names[0], f"{r['cached']:.2f} s vs {r['generate']:.2f} s", fmt_gb(m.peak),
            f"≤ {r['goal']}×", f"{ratio:.2f}× " + ("pass" if ratio <= r["goal"] and same else "over"),
            f"{agree}; {setup}"),
        Row(names[1], f"{r['cached']:.2f} s vs {r['uncached']:.2f} s", "", "",
            f"{r['uncached_vs_cached']:.2f}× faster",
            "course_utils.kv_cache.greedy_generate with and without the cache; " + agree),
    ]


def _grading_row(item: str, measure: Callable[[], dict], text: Callable[[dict], tuple],
                 budget: str) -> Row:
    """A course_grading.bench figure as a row; a failure is a row, not a crash of the benchmark."""
    try:
        figures = measure()
    except Exception as err:
        return Row(item, result="error", note=str(err)[:300])
    seconds, result, note = text(figures)
    return Row(item, seconds, "", budget, result, note)


def bench_grading() -> Row:
    """Sandboxed grading vs --no-sandbox vs plain nbgrader autograde (course_grading.bench)."""
    from course_grading import bench

    return _grading_row("grade 10 submissions (lesson 01), sandboxed",
                        lambda: bench.measure(10, jobs=2), bench.row_text,
                        f"≥ {bench.SPEEDUP_GOAL}× nbgrader, ≤ +{100 * bench.OVERHEAD_GOAL:.0f}% "
                        "sandbox")


def bench_grading_engines() -> Row:
    """The Dask LocalCluster vs the previous thread pool on 30 submissions (course_grading.bench)."""
    from course_grading import bench

    return _grading_row("grade 30 submissions: Dask LocalCluster vs previous pool",
                        lambda: bench.measure_engines(30, jobs=2), bench.engines_row_text,
                        "≤ +5%")


def bench_suite() -> Row:
    """The whole test suite, run by the README's command `./course test` (offline, small stand-ins)."""
    env = bench_env(None)
    cmd = [str(ROOT / "course"), "test", "-q", "-p", "no:cacheprovider"]
    # The suite's tree is large (workers, kernels, JupyterLab, Chromium): sample it less often.
    m = run_measured(cmd, env, ROOT, 4 * 3600, include_root=True, interval=0.5)
    status, seconds, peak, out = m.status, m.seconds, m.peak, m.out
    SUITE_LOG.parent.mkdir(exist_ok=True)
    SUITE_LOG.write_text(out, encoding="utf-8")
    summary = [ln for ln in out.splitlines() if re.search(r"\b(passed|failed|error)", ln)]
    line = summary[-1].strip("= ") if summary else last_error(out)
    failed = [ln.split(" - ")[0].split(maxsplit=1)[-1] for ln in out.splitlines()
              if ln.startswith(("FAILED ", "ERROR "))]
    if failed:
        line += "; failed: " + ", ".join(failed[:3]) + (" ..." if len(failed) > 3 else "")
        line += f"; output in {SUITE_LOG.relative_to(ROOT)}"
    return Row("test suite (./course test)", fmt_s(seconds), fmt_gb(peak), "",
               "pass" if status == 0 else f"exit {status}", line[:300].replace("|", "\\|"))


def bench_download() -> Row:
    """The course's total Hub download, from the registry."""
    sys.path.insert(0, str(ROOT))
    from course_utils import registry

    sizes = ", ".join(f"{s.role} {s.download_mb}" for s in registry.REGISTRY.values())
    return Row("Hub download, whole course", result=f"{registry.total_download_mb()} MB",
               note=f"model.safetensors per role (MB): {sizes}; tokenizer files add < 3 MB each")


# ------------------------------------------------------------------ report

def header(started: dt.datetime) -> str:
    """What, when, where: the context needed to compare two result files."""
    import importlib.metadata as md

    versions = []
    for name in ("torch", "transformers", "jupyterlab", "nbclient"):
        try:
            versions.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    command = "./course bench" + "".join(f" {a}" for a in sys.argv[1:])
    lines = [
        f"# Benchmark {started:%Y-%m-%d %H:%M}",
        "",
        f"Command: `{command}` (COURSE_MODELS=offline, COURSE_STANDIN_SIZE=full: stand-ins at "
        "the real checkpoints' dimensions with random weights; CPU only).",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {', '.join(versions)}; load average at start {load}.",
        f"Budget per lesson: ≤ {TIME_BUDGET_S:.0f} s wall time (fresh kernel, end to end) and "
        f"≤ {MEMORY_BUDGET_GB} GB peak resident memory of the kernel's process tree "
        "(1 GB = 10^9 bytes).",
        "",
    ]
    return "\n".join(lines) + "\n"


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    out = ["| item | time | peak memory | budget | result | note |",
           "|---|---:|---:|---|---|---|"]
    out += [f"| {r.item} | {r.time} | {r.memory} | {r.budget} | {r.result} | {r.note} |"
            for r in rows]
    return "\n".join(out)


def read_rows(path: Path) -> list[Row]:
    """The table rows of a results file written by this script."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) == 6 and cells[0] not in ("item", "---"):
            rows.append(Row(*cells))
    return rows


MEASURED = re.compile(r"\[measured [^\]]+\]$")


def dated_row(row: Row, when: str) -> Row:
    """A row kept from an earlier table, its note ending "[measured WHEN]" (once)."""
    if MEASURED.search(row.note):
        return row
    note = f"{row.note} [measured {when}]" if row.note else f"[measured {when}]"
    return Row(row.item, row.time, row.memory, row.budget, row.result, note)


GROUP_PREFIXES = {"notebooks": ("notebooks/",), "standins": ("stand-ins",),
                  "grading": ("grade ",), "suite": ("test suite",), "download": ("Hub download",),
                  "decoding": ("KV-cache", "cached vs uncached", "GPT-2 ")}


def group_of(item: str) -> str:
    """The row group (one of ROWS) an item belongs to, from the start of its name."""
    for group, prefixes in GROUP_PREFIXES.items():
        if item.startswith(prefixes):
            return group
    return ""


def merge_rows(old: list[Row], new: list[Row],
               groups: frozenset[str] = frozenset()) -> tuple[list[Row], list[str]]:
    """Old rows with the newly measured ones in their place (new items appended); kept items.
    Old rows of a group in `groups` (a group just run) that it no longer measures are dropped."""
    fresh = {r.item: r for r in new}
    old = [r for r in old if r.item in fresh or group_of(r.item) not in groups]
    merged = [fresh.pop(r.item, r) for r in old] + list(fresh.values())
    kept = [r.item for r in old if r.item not in {n.item for n in new}]
    order = {group: k for k, group in enumerate(ROWS)}  # the table's order: groups as in ROWS
    return sorted(merged, key=lambda r: order.get(group_of(r.item), len(ROWS))), kept


README = ROOT / "README.md"
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def readme_with_results(readme: str, report: str) -> str:
    """The README with the table of a results report between its bench markers."""
    start, end = readme.index(README_START), readme.index(README_END)
    title = report.splitlines()[0].lstrip("# ").strip()
    rows = [ln for ln in report.splitlines() if ln.startswith("|")]
    block = (f"{README_START}\nLast result ({title}, from `benchmarks/latest.md`):\n\n"
             + "\n".join(rows) + "\n")
    return readme[:start] + block + readme[end:]


def selected(only: Optional[str], suite: bool) -> tuple[set[str], set[str]]:
    """(row groups, lesson names) chosen by --only and --suite."""
    names = [n for n, _ in lesson_paths()]
    if not only:
        return set(ROWS) - ({"suite"} if not suite else set()), set(names)
    groups, lessons = set(), set()
    for word in (w.strip() for w in only.split(",") if w.strip()):
        if word in ROWS:
            groups.add(word)
            if word == "notebooks":
                lessons |= set(names)
            continue
        match = [n for n in names if n == word or n.split("_")[0] == word.zfill(2)]
        if not match:
            raise SystemExit(f"--only: unknown item {word!r}; use {', '.join(ROWS)} or a lesson "
                             f"({', '.join(names)})")
        groups.add("notebooks")
        lessons |= set(match)
    if suite:
        groups.add("suite")
    return groups, lessons


def main(argv: Optional[list[str]] = None) -> int:
    """Run the chosen benchmarks, print the table, write benchmarks/*.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated subset: {', '.join(ROWS)}, or lessons "
                        "(01, 02_tokenization, ...)")
    parser.add_argument("--suite", action="store_true", help="also time the whole test suite")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each decoding timing")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for the decoding timings (1: steady on a shared "
                        "machine; 0: torch's default)")
    parser.add_argument("--no-write", action="store_true", help="print only; write no files")
    args = parser.parse_args(argv)
    os.environ.update(COURSE_MODELS="offline", COURSE_STANDIN_SIZE="full")
    groups, lessons = selected(args.only, args.suite)
    started = dt.datetime.now()
    head = header(started)
    print(head, flush=True)

    rows: list[Row] = []
    steps: list[tuple[str, Callable[[], list[Row]]]] = []
    if "standins" in groups or "notebooks" in groups or "decoding" in groups:
        steps.append(("stand-ins", lambda: [bench_standins()]))
    if "notebooks" in groups:
        for name, path in lesson_paths():
            if name in lessons:
                steps.append((f"notebooks/{name}", lambda n=name, p=path: [bench_notebook(n, p)]))
    if "decoding" in groups:
        steps.append(("decoding", lambda: bench_decoding(args.reps, args.threads)))
    if "grading" in groups:
        steps.append(("grading", lambda: [bench_grading(), bench_grading_engines()]))
    if "suite" in groups:
        steps.append(("test suite", lambda: [bench_suite()]))
    if "download" in groups:
        steps.append(("download", lambda: [bench_download()]))
    for label, step in steps:
        print(f"running: {label} ...", file=sys.stderr, flush=True)
        for row in step():
            rows.append(row)
            print(f"  {row.item}: {row.time} {row.memory} {row.result} {row.note}",
                  file=sys.stderr, flush=True)

    elapsed = (dt.datetime.now() - started).total_seconds()
    print(table(rows))
    print(f"\nTotal benchmark time: {elapsed / 60:.1f} min.")
    if not args.no_write:
        BENCHMARKS.mkdir(exist_ok=True)
        dated = BENCHMARKS / f"results-{started:%Y-%m-%d}.md"
        footer = f"Total benchmark time: {elapsed / 60:.1f} min."
        latest = BENCHMARKS / "latest.md"
        earlier = dated if dated.exists() else latest if latest.exists() else None
        if args.only and earlier is not None:  # a subset updates its rows, keeps the others
            whole = {n for n, _ in lesson_paths()} <= lessons  # every lesson: the whole group
            when = earlier.read_text(encoding="utf-8").splitlines()[0].removeprefix("# Benchmark ")
            rows, kept = merge_rows([dated_row(r, when) for r in read_rows(earlier)], rows,
                                    frozenset(g for g in groups if g != "notebooks" or whole))
            if kept:
                footer += (f" Rows not run by this command ({', '.join(kept)}) say in their note "
                           "when they were measured.")
        report = f"{head}{table(rows)}\n\n{footer}\n"
        dated.write_text(report, encoding="utf-8")
        (BENCHMARKS / "latest.md").write_text(report, encoding="utf-8")
        README.write_text(readme_with_results(README.read_text(encoding="utf-8"), report),
                          encoding="utf-8")
        print(f"wrote {dated.relative_to(ROOT)}, benchmarks/latest.md and README.md's table",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
