"""Never remote code: every model, tokenizer, config and pipeline load passes trust_remote_code=False,
and a load of a learner-chosen model also use_safetensors=True (issue 13)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from conftest import ROOT

LOADERS = ("from_pretrained", "pipeline")


def code_of_notebook(path: Path) -> list[tuple[str, str]]:
    """(where, code) of each code cell, IPython magics blanked so the cell parses."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    out = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            lines = ["" if line.lstrip().startswith(("%", "!")) else line
                     for line in "".join(cell["source"]).splitlines()]
            out.append((f"{path.relative_to(ROOT)} cell {i}", "\n".join(lines)))
    return out


def checkpoint_names(code: str) -> set[str]:
    """Names bound to a course checkpoint: ckpt = cu.checkpoint("role")."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {ast.unparse(t) for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and "checkpoint(" in ast.unparse(node.value) for t in node.targets}


def sources() -> list[tuple[str, str, set[str]]]:
    """(where, code, checkpoint names of its notebook) of every cell and module the course runs."""
    found = []
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    notebooks += sorted((ROOT / "exercises" / "source").glob("**/*.ipynb"))
    for path in notebooks:
        cells = code_of_notebook(path)
        names = set().union(*(checkpoint_names(code) for _, code in cells))
        found += [(where, code, names) for where, code in cells]
    for path in sorted((ROOT / "course_utils").rglob("*.py")) + sorted((ROOT / "tools").glob("*.py")):
        code = path.read_text(encoding="utf-8")
        found.append((str(path.relative_to(ROOT)), code, checkpoint_names(code)))
    return found


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _from_registry(node: ast.expr | None, registry_names: set[str]) -> bool:
    """True when a model argument is a course checkpoint (cu.checkpoint(...) or a name bound to one)."""
    if node is None:
        return True  # pipeline(task) alone: a teaching error, raised before any load
    text = ast.unparse(node)
    return "checkpoint(" in text or text in registry_names or text in ("self", "path", "folder")


def problems(where: str, code: str, registry_names: frozenset[str] = frozenset()) -> list[str]:
    """The loads in `code` that could run a repository's code or load pickled weights."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    registry_names = set(registry_names) | checkpoint_names(code)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _name(node.func) in LOADERS):
            continue
        if isinstance(node.func, ast.Name) and node.func.id == "from_pretrained":
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        trust = keywords.get("trust_remote_code")
        if not (isinstance(trust, ast.Constant) and trust.value is False):
            found.append(f"{where} line {node.lineno}: {ast.unparse(node)[:90]} lacks "
                         "trust_remote_code=False")
        model = keywords.get("model") or (node.args[0] if node.args and _name(node.func) ==
                                          "from_pretrained" else None)
        tokenizer_only = "Tokenizer" in ast.unparse(node.func) or "Config" in ast.unparse(node.func)
        if not tokenizer_only and not _from_registry(model, registry_names):
            kwargs = ast.unparse(node)
            if "use_safetensors" not in kwargs:
                found.append(f"{where} line {node.lineno}: learner-chosen model "
                             f"{ast.unparse(model)} without use_safetensors=True")
    return found


def test_every_load_refuses_remote_code_and_pickles():
    found = [p for where, code, names in sources() for p in problems(where, code, frozenset(names))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("code,expected", [
    ('m = AutoModel.from_pretrained(ckpt)', "lacks trust_remote_code=False"),
    ('p = pipeline("fill-mask", model=name, trust_remote_code=False)', "without use_safetensors"),
    ('p = pipeline("x", model=n,\n  trust_remote_code=True, model_kwargs={"use_safetensors": True})',
     "lacks trust_remote_code=False"),
])
def test_the_check_catches_unsafe_loads(code, expected):
    assert any(expected in p for p in problems("example", code))


def test_the_check_accepts_safe_loads():
    code = ('ckpt = cu.checkpoint("t5")\nm = AutoModel.from_pretrained(ckpt, trust_remote_code=False)\n'
            'p = pipeline("x", model=name, trust_remote_code=False,\n'
            '             model_kwargs={"use_safetensors": True})')
    assert problems("example", code) == []
