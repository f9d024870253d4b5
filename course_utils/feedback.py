"""Feedback for exercises: what is right, what is wrong and a hint, as text and as colour.

Checker functions (in course_utils.exercise_checks) return a Feedback; they never raise for a
wrong answer. `guarded` turns an exception inside learner code into one readable line.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Feedback:
    """The result of checking one answer."""

    correct: bool
    message: str
    hint: str = ""

    def __str__(self) -> str:
        mark = "✓ Correct" if self.correct else "✗ Not yet"
        text = f"{mark}: {self.message}"
        return text + (f"\n  Hint: {self.hint}" if self.hint and not self.correct else "")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.correct else "#b35900"
        body = html.escape(str(self)).replace("\n", "<br>")
        return f'<div style="color:{colour};font-family:monospace">{body}</div>'


def right(message: str) -> Feedback:
    """A correct answer."""
    return Feedback(True, message)


def wrong(message: str, hint: str = "") -> Feedback:
    """A wrong answer, with a hint."""
    return Feedback(False, message, hint)


def describe_error(err: BaseException) -> str:
    """One line naming an exception, without its traceback."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__


def guarded(check: Callable[..., Feedback]) -> Callable[..., Feedback]:
    """Wrap a checker so an exception in learner code becomes a Feedback, not a traceback."""

    def run(*args: Any, **kwargs: Any) -> Feedback:
        try:
            return check(*args, **kwargs)
        except NotImplementedError:  # the student version's placeholder is still there
            return wrong("not answered yet",
                         "replace `raise NotImplementedError()` with your answer, then run the cell")
        except Exception as err:  # the learner's code failed inside the check
            return wrong(f"your code raised {describe_error(err)}",
                         "run your cell again and read the error's last line")

    run.__name__ = getattr(check, "__name__", "check")
    run.__doc__ = check.__doc__
    return run


_KIND_NAMES = {"Integral": "int", "Real": "number", "NoneType": "None"}


def a_kind(kind_name: str) -> str:
    """A kind's name with its article, for messages: "an int", "a list", "a DataFrame"."""
    word = _KIND_NAMES.get(kind_name, kind_name)
    if word == "None":
        return word
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def a_type(value: Any) -> str:
    """The type of `value` with its article, for messages: "an int", "a list"."""
    return a_kind(type(value).__name__)


def expect_type(value: Any, kind: type | tuple[type, ...], name: str) -> Feedback | None:
    """A wrong-answer Feedback when `value` is None or not of `kind`, else None."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    expected = " or ".join(_KIND_NAMES.get(k.__name__, k.__name__) for k in kinds)
    if value is None:
        return wrong(f"{name} is None", f"assign {a_kind(expected)} to {name} (did a function "
                     "forget to return?)")
    if not isinstance(value, kinds):
        return wrong(f"{name} is {a_type(value)}, expected {a_kind(expected)}")
    return None


def expect_callable(value: Any, name: str, signature: str) -> Feedback | None:
    """A wrong-answer Feedback when `value` is None or not a function, else None."""
    if value is None:
        return wrong(f"{name} is None, expected a function",
                     f"define it with def {signature}: ... and run the cell")
    if not callable(value):
        return wrong(f"{name} is {a_type(value)}, expected a function",
                     "the answer is the function itself, not a value it returned")
    return None


def expect_shape(tensor: Any, shape: tuple, name: str) -> Feedback | None:
    """A wrong-answer Feedback when `tensor` lacks `.shape` or has another shape, else None."""
    actual = getattr(tensor, "shape", None)
    if actual is None:
        return wrong(f"{name} has no shape: it is {a_type(tensor)}",
                     "use a tensor (return_tensors='pt') rather than a list")
    if tuple(actual) != tuple(shape):
        return wrong(f"{name} has shape {tuple(actual)}, expected {tuple(shape)}")
    return None


def evaluate(check: Callable[..., Feedback], namespace: dict, *names: str) -> Feedback:
    """Look up `names` in the learner's namespace and run `check` on them, never raising."""
    missing = [n for n in names if n not in namespace]
    if missing:
        return wrong(f"{', '.join(missing)} is not defined yet",
                     "run your answer cell above first (and check the spelling)")
    return guarded(check)(*(namespace[n] for n in names))


def report(check: Callable[..., Feedback], namespace: dict, *names: str) -> None:
    """Display the feedback of `check` on the learner's variables `names` (text and colour)."""
    outcome = evaluate(check, namespace, *names)
    try:
        from IPython.display import display

        display(outcome)
    except ImportError:
        print(outcome)
