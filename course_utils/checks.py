"""The "what we verified" checks that close every lesson: one readable line per check."""

from __future__ import annotations

from typing import Any, Callable, Iterable


class CheckFailed(AssertionError):
    """A closing check did not hold; the message says which and with what values."""


def check(description: str, condition: Any, detail: str = "") -> None:
    """Print '✓ description' when `condition` is true; raise CheckFailed otherwise."""
    if bool(condition):
        print(f"✓ {description}")
        return
    raise CheckFailed(f"✗ {description}" + (f": {detail}" if detail else ""))


def check_close(description: str, actual: Any, expected: Any, atol: float = 1e-5) -> None:
    """Check that two tensors or numbers agree within `atol`, showing the largest gap if not."""
    import torch

    a = torch.as_tensor(actual, dtype=torch.float64)
    b = torch.as_tensor(expected, dtype=torch.float64)
    if a.shape != b.shape:
        raise CheckFailed(f"✗ {description}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    gap = (a - b).abs().max().item() if a.numel() else 0.0
    check(description, gap <= atol, f"largest difference {gap:.3g} > {atol:g}")


# ---------------------------------------------------------------- claims about the real checkpoints

CLAIMS_LOG_ENV = "COURSE_CLAIMS_LOG"  # a file: every claim appends one JSON line (name, outcome)
SKIPPED = "real-checkpoint claim, checked when the Hub tier is active: {name}"


def _is_real(model_or_folder: Any) -> bool:
    """Whether a model, pipeline, config or checkpoint folder is the real checkpoint (no stand-in marker)."""
    from pathlib import Path

    from .display import is_standin

    if isinstance(model_or_folder, (str, Path)):
        if not (Path(model_or_folder) / "config.json").is_file():
            raise TypeError(f"claim: {model_or_folder} is not a checkpoint folder (no config.json)")
        return not is_standin(model_or_folder)
    model = getattr(model_or_folder, "model", model_or_folder)  # a pipeline holds its model
    config = getattr(model, "config", model)
    if not hasattr(config, "to_dict"):
        raise TypeError(f"claim: cannot tell whether a {type(model_or_folder).__name__} is a stand-in; "
                        "pass the model, its config or its checkpoint folder")
    return not is_standin(config)


def _record(name: str, outcome: str, detail: str = "") -> None:
    import json
    import os

    path = os.environ.get(CLAIMS_LOG_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps({"claim": name, "outcome": outcome, "detail": detail}) + "\n")


def claim(name: str, condition: Callable[[], Any], *, model_or_folder: Any,
          shows: Callable[[], Any] | None = None) -> bool | None:
    """Check a claim the prose makes about a real checkpoint; with a stand-in, print one line and skip.

    `condition` is called only for the real checkpoint; `shows()` (optional) gives what was observed,
    for the failure message. Returns True when the claim held, None when skipped; raises CheckFailed
    naming the claim when it does not hold.
    """
    if not _is_real(model_or_folder):
        print(SKIPPED.format(name=name))
        _record(name, "skipped")
        return None
    try:
        held = bool(condition())
        seen = "" if held or shows is None else f"; observed: {shows()}"
    except Exception as err:  # a claim that cannot be evaluated did not hold
        held, seen = False, f"; evaluating it raised {type(err).__name__}: {err}"
    if held:
        print(f"✓ real-checkpoint claim: {name}")
        _record(name, "held")
        return True
    _record(name, "failed", seen.removeprefix("; "))
    raise CheckFailed(f"✗ real-checkpoint claim did not hold: {name}{seen}")


def contains_any(items: Iterable[Any], wanted: Iterable[Any]) -> bool:
    """Hedged predicate: at least one of `wanted` is among `items` (e.g. a top-5 list)."""
    pool = {str(i).strip().lower() for i in items}
    return any(str(w).strip().lower() in pool for w in wanted)


def at_least(n: int, conditions: Iterable[Any]) -> bool:
    """Hedged predicate: at least `n` of `conditions` are true (e.g. two of three labels)."""
    return sum(bool(c) for c in conditions) >= n


def claims_summary(path: str) -> str:
    """A table of the claims recorded in a COURSE_CLAIMS_LOG file: held, failed, skipped."""
    import json
    from pathlib import Path

    file = Path(path)
    lines = file.read_text(encoding="utf-8").splitlines() if file.is_file() else []
    records = [json.loads(line) for line in lines if line.strip()]
    if not records:
        return "real-checkpoint claims: none recorded (no notebook with claims ran)"
    counts = {k: sum(r["outcome"] == k for r in records) for k in ("held", "failed", "skipped")}
    rows = [f"{r['outcome']:<8} {r['claim']}" + (f"  ({r['detail']})" if r.get("detail") else "")
            for r in records]
    head = (f"real-checkpoint claims: {counts['held']} held, {counts['failed']} failed, "
            f"{counts['skipped']} skipped (stand-in loaded)")
    return "\n".join([head, *rows])

