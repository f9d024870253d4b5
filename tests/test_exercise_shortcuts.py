"""Shortcuts earn nothing (issue 14): for each graded question of lessons 01-05, the typical shortcut
(a forbidden call, a typed constant, a method that skips a step) is fed to the checker, which must say
"not yet", and to the question's hidden tests, which must fail.

The harness runs an exercise source's code cells in one namespace, offline, with one answer cell
replaced by the shortcut, up to the graded cell; then it runs the checker and, separately, the graded
cell's hidden part. The source's own answer passes both (the control that shows the harness can pass).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {n: next((ROOT / "exercises" / "source" / f"lesson{n:02d}").glob("*.ipynb")) for n in range(1, 6)}
# views and self-checks: no state that later cells need
SKIPPED = ("explore", "widget", "stepper", "_box", "_check")


def _cells(lesson: int) -> list[tuple[str, str]]:
    """(grade_id, source) of each code cell of a lesson's exercise source."""
    nb = json.loads(SOURCES[lesson].read_text())
    return [(c["metadata"].get("nbgrader", {}).get("grade_id", ""), "".join(c["source"]))
            for c in nb["cells"] if c["cell_type"] == "code"]


def _python(source: str) -> str:
    """A cell's code without IPython magics (the setup cell's %pip runs in Colab only)."""
    return re.sub(r"^(\s*)%.*$", r"\1pass", source, flags=re.M)


def _visible(source: str) -> str:
    return source.split("### BEGIN HIDDEN TESTS")[0]


def _hidden(source: str) -> str:
    return source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]


def run_until(lesson: int, test_id: str, answers: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the lesson's cells before `test_id` (answers replaced as given) and return the namespace."""
    answers = answers or {}
    namespace: dict[str, Any] = {"__name__": "__exercise__"}
    for grade_id, source in _cells(lesson):
        if grade_id == test_id:
            return namespace
        if any(part in grade_id for part in SKIPPED):
            continue
        code = answers.get(grade_id, source)
        if grade_id.endswith("_test") and "### BEGIN HIDDEN TESTS" in code:
            code = _visible(code)  # earlier questions: their hidden parts are tested on their own
        exec(compile(_python(code), f"{SOURCES[lesson].name}:{grade_id}", "exec"), namespace)
    raise KeyError(test_id)


def hidden_tests(lesson: int, test_id: str) -> str:
    """The hidden part of a graded cell."""
    return _python(_hidden(dict(_cells(lesson))[test_id]))


def assert_earns_nothing(lesson: int, question: str, shortcut: str, check: str) -> str:
    """Feed `shortcut` as question's answer: the checker (`check`, an expression) and hidden tests fail."""
    namespace = run_until(lesson, f"{question}_test", {f"{question}_answer": shortcut})
    feedback = eval(check, namespace)
    assert not feedback.correct, f"the checker accepted the shortcut: {feedback}"
    with pytest.raises(AssertionError):
        exec(compile(hidden_tests(lesson, f"{question}_test"), f"{question}_test", "exec"), namespace)
    return feedback.message


def assert_source_passes(lesson: int, question: str, check: str) -> None:
    """The control: the source's own answer passes the checker and the hidden tests."""
    namespace = run_until(lesson, f"{question}_test")
    feedback = eval(check, namespace)
    assert feedback.correct, feedback
    exec(compile(hidden_tests(lesson, f"{question}_test"), f"{question}_test", "exec"), namespace)


# ---------------------------------------------------------------- lesson 05

L05 = {
    "q3": ("ex.check_greedy(my_greedy, model, tokenizer)", '''
def my_greedy(model, input_ids, attention_mask, max_new_tokens):
    out = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False, num_beams=1,
                         max_new_tokens=max_new_tokens, return_dict_in_generate=True, output_logits=True)
    return out.sequences[0, 1:].tolist(), torch.stack(out.logits)[:, 0]
''', "calls generate()"),
    "q3_class": ("ex.check_greedy(my_greedy, model, tokenizer)", '''
from transformers import GenerationMixin

def my_greedy(model, input_ids, attention_mask, max_new_tokens):  # generate() through the class
    out = GenerationMixin.generate(model, input_ids=input_ids, attention_mask=attention_mask,
                                   do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                                   return_dict_in_generate=True, output_logits=True)
    return out.sequences[0, 1:].tolist(), torch.stack(out.logits)[:, 0]
''', "calls generate()"),
    "q3_helper": ("ex.check_greedy(my_greedy, model, tokenizer)", '''
from course_utils.decoding import greedy_decode as gd

def my_greedy(model, input_ids, attention_mask, max_new_tokens):
    result = gd(model, input_ids, attention_mask, max_new_tokens=max_new_tokens)
    return result.tokens, result.logits
''', "greedy_decode"),
    "q4": ("ex.check_comparison(compare_first_step, model, tokenizer)", '''
def compare_first_step(model, inputs_a, inputs_b):
    return ex.first_step_comparison(model, inputs_a, inputs_b)
''', "first_step_comparison"),
    "q5": ("ex.check_top_candidates(top_candidates, tokenizer)", '''
from course_utils.decoding import candidate_table

def top_candidates(logits, tokenizer, k):
    return candidate_table(logits, tokenizer, k)
''', "candidate_table"),
}


@pytest.mark.parametrize("case", sorted(L05))
def test_lesson05_shortcuts_earn_nothing(case):
    check, shortcut, named = L05[case]
    message = assert_earns_nothing(5, case.split("_")[0], shortcut, check)
    assert named in message


@pytest.mark.parametrize("question", ["q3", "q4", "q5"])
def test_lesson05_source_answers_pass(question):
    check = next(c for name, (c, _, _) in L05.items() if name.startswith(question))
    assert_source_passes(5, question, check)


def _twice(x):
    return 2 * x


def test_count_function_calls_sees_every_alias_and_restores_the_profiler():
    import functools
    import sys

    from course_utils import probes

    def previous(frame, event, arg):
        return None

    alias, partial = _twice, functools.partial(_twice, 3)
    sys.setprofile(previous)
    try:
        with probes.count_function_calls(twice=_twice) as calls:
            alias(1), partial(), _twice(2)
        assert calls == {"twice": 3}
        assert sys.getprofile() is previous
    finally:
        sys.setprofile(None)
