"""Feedback for exercises: what is right, what is wrong and a hint, as text and as colour.

Checker functions (in course_utils.exercises.lNN_<slug>) return a Feedback; they never raise for
a wrong answer. Inside a checker, `fail(...)` and the `expect_*` helpers raise `WrongAnswer`, which
carries its Feedback; `guarded` returns that Feedback, and turns any other exception inside learner
code into one readable line. A checker therefore reads as its list of requirements.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Sequence


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


class WrongAnswer(Exception):
    """Raised inside a checker to stop at the first requirement an answer misses."""

    def __init__(self, feedback: Feedback) -> None:
        super().__init__(feedback.message)
        self.feedback = feedback


def fail(message: str, hint: str = "") -> NoReturn:
    """Stop the checker with a wrong-answer Feedback (raises WrongAnswer)."""
    raise WrongAnswer(wrong(message, hint))


def describe_error(err: BaseException) -> str:
    """One line naming an exception, without its traceback."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__


def guarded(check: Callable[..., Feedback]) -> Callable[..., Feedback]:
    """Wrap a checker so an exception in learner code becomes a Feedback, not a traceback."""

    def run(*args: Any, **kwargs: Any) -> Feedback:
        try:
            return check(*args, **kwargs)
        except WrongAnswer as stop:  # a requirement the answer misses, named by the checker
            return stop.feedback
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


def expect_type(value: Any, kind: type | tuple[type, ...], name: str,
                hint: str | None = None) -> None:
    """Fail when `value` is None or not of `kind` (`hint`, if given, replaces the default hint)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    expected = " or ".join(_KIND_NAMES.get(k.__name__, k.__name__) for k in kinds)
    if value is None:
        fail(f"{name} is None", hint if hint is not None else
             f"assign {a_kind(expected)} to {name} (did a function forget to return?)")
    if not isinstance(value, kinds):
        fail(f"{name} is {a_type(value)}, expected {a_kind(expected)}", hint or "")


def expect_callable(value: Any, name: str, signature: str) -> None:
    """Fail when `value` is None or not a function."""
    if value is None:
        fail(f"{name} is None, expected a function",
             f"define it with def {signature}: ... and run the cell")
    if not callable(value):
        fail(f"{name} is {a_type(value)}, expected a function",
             "the answer is the function itself, not a value it returned")


def expect_shape(tensor: Any, shape: tuple, name: str, hint: str | None = None) -> None:
    """Fail when `tensor` lacks `.shape` or has another shape (`hint` replaces the default)."""
    actual = getattr(tensor, "shape", None)
    if actual is None:
        fail(f"{name} has no shape: it is {a_type(tensor)}",
             hint if hint is not None else "use a tensor (return_tensors='pt') rather than a list")
    if tuple(actual) != tuple(shape):
        fail(f"{name} has shape {tuple(actual)}, expected {tuple(shape)}", hint or "")


_LETTERED = re.compile(r"([A-Z])\)\s")


def _folded(text: str) -> str:
    return text.strip().strip("\"'").strip().casefold()


def match_choice(answer: Any, options: Sequence[str], name: str = "your answer") -> str:
    """The option a multiple-choice answer names, else fail.

    Accepted, the same in every lesson: the option's text (case, surrounding spaces and quotes
    ignored); a class, for its name; and where every option starts with a letter, "A) ...", the
    letter alone or followed by ")".
    """
    if isinstance(answer, type):
        answer = answer.__name__
    if isinstance(answer, (list, tuple, set)):
        fail(f"{name} holds several options; pick exactly one", "assign one option as a string")
    expect_type(answer, str, name)
    key = _folded(answer)
    for option in options:
        if _folded(option) == key:
            return option
    letters = {m.group(1): option for option in options if (m := _LETTERED.match(option))}
    lettered = len(letters) == len(options)
    if lettered:
        letter = key[:1].upper()
        if letter in letters and (len(key) == 1 or key[1] == ")"):
            return letters[letter]
    hint = (f"answer with a letter {min(letters)}-{max(letters)} or the option text" if lettered
            else "copy one option exactly: " + " | ".join(options))
    fail(f"{answer!r} is not one of the options", hint)


def expect_number(value: Any, name: str, hint: str | None = None) -> float:
    """`value` as a float (a Python number, a NumPy scalar or a one-element tensor), else fail.

    `hint`, if given, replaces the hint for a tensor of several values.
    """
    import numbers

    if value is None:
        fail(f"{name} is None, expected a number", f"assign a number to {name} (did a function "
             "forget to return?)")
    if isinstance(value, bool):
        fail(f"{name} is a bool, expected a number")
    if isinstance(value, numbers.Real):
        number = float(value)
    elif hasattr(value, "numel") and hasattr(value, "item"):
        if value.numel() != 1:
            fail(f"{name} is a tensor with {value.numel()} values, expected a single number",
                 hint if hint is not None else "reduce it to a single value (and call .item())")
        number = float(value.item())
    elif hasattr(value, "item") and getattr(value, "size", None) == 1:
        number = float(value.item())
    else:
        fail(f"{name} is {a_type(value)}, expected a number")
    if number != number or number in (float("inf"), float("-inf")):
        fail(f"{name} is {number}, expected a finite number")
    return number


def expect_int(value: Any, name: str, allow_tensor: bool = True) -> int:
    """`value` as an int (a Python or NumPy integer, or a one-element integer tensor), else fail.

    With allow_tensor=False a tensor fails too, with a hint to call .item() (for answers that
    hidden tests check with isinstance(value, int)).
    """
    import numbers

    if value is None:
        fail(f"{name} is None, expected an int", f"assign an int to {name} (did a function "
             "forget to return?)")
    if isinstance(value, bool):
        fail(f"{name} is a bool, expected an int")
    if isinstance(value, numbers.Integral):
        return int(value)
    if hasattr(value, "numel") and not allow_tensor:
        fail(f"{name} is {a_type(value)}, expected an int",
             "turn a one-element tensor into a Python number with .item()")
    if hasattr(value, "numel") and hasattr(value, "item") and value.numel() == 1:
        item = value.item()
        if isinstance(item, numbers.Integral) and not isinstance(item, bool):
            return int(item)
    if isinstance(value, float) and value.is_integer():
        fail(f"{name} is the float {value}, expected an int", f"use int(...) or // for {name}")
    fail(f"{name} is {a_type(value)}, expected an int")


def expect_tensor(value: Any, name: str, shape: tuple | None = None) -> Any:
    """`value` if it is a torch tensor (of `shape`, when given), else fail."""
    import torch

    if value is None:
        fail(f"{name} is None, expected a tensor", f"assign a tensor to {name} (did a function "
             "forget to return?)")
    if not isinstance(value, torch.Tensor):
        hint = "use a tensor (return_tensors='pt' or torch.tensor(...))" if isinstance(
            value, (list, tuple)) else ""
        fail(f"{name} is {a_type(value)}, expected a tensor", hint)
    if shape is not None and tuple(value.shape) != tuple(shape):
        fail(f"{name} has shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value


def expect_logits(value: Any, name: str, vocab: int,
                  hint: str = "take one row and one position: logits[row, position]") -> Any:
    """`value` as a 1-D float tensor of `vocab` logits (not probabilities), else fail."""
    import torch

    expect_tensor(value, name)
    if value.numel() != vocab:
        fail(f"{name} has shape {tuple(value.shape)}, expected {vocab} logits (one per vocabulary "
             "entry)", hint)
    vector = value.detach().reshape(-1).float().cpu()
    if bool((vector >= 0).all()) and torch.allclose(vector.sum(), torch.tensor(1.0), atol=1e-3):
        fail(f"{name} sums to 1: these are probabilities", "keep the logits (no softmax)")
    return vector


def expect_evidence(value: Any, name: str, keys: Sequence[str], what: str) -> Any:
    """`value` if it is a mapping holding every key of `keys` (a graded choice's evidence), else fail."""
    from collections.abc import Mapping

    layout = "{" + ", ".join(f"{k!r}: ..." for k in keys) + "}"
    if value is None:
        fail(f"{name} is None: compute the evidence first", f"a dict {layout} of {what} (see the question)")
    if not isinstance(value, Mapping) or set(keys) - set(value):
        fail(f"{name} is {a_type(value)}; it needs the keys {list(keys)}", f"{name} = {layout}")
    return value


def expect_tokens_and_logits(answer: Any, name: str) -> tuple[list[int], Any]:
    """A decoding loop's `(tokens, logits)`: token ids as a list of ints, step logits stacked, else fail."""
    import torch

    if not isinstance(answer, tuple) or len(answer) != 2:
        fail(f"{name} returned {a_type(answer)}; expected a tuple (tokens, logits)",
             "end with: return tokens, torch.stack(step_logits)")
    tokens, logits = answer
    if isinstance(tokens, torch.Tensor):
        tokens = tokens.reshape(-1).tolist()
    if isinstance(logits, (list, tuple)) and logits and isinstance(logits[0], torch.Tensor):
        logits = torch.stack([t.reshape(-1) for t in logits])
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
        fail(f"tokens is {a_type(tokens)}, expected a list of ints", "append int(logits.argmax())")
    return tokens, expect_tensor(logits, "logits (the second value returned)")


def evaluate(check: Callable[..., Feedback], namespace: dict, *names: str) -> Feedback:
    """Look up `names` in the learner's namespace and run `check` on them, never raising."""
    missing = [n for n in names if n not in namespace]
    if missing:
        names_text = missing[0] if len(missing) == 1 else (
            ", ".join(missing[:-1]) + " and " + missing[-1])
        verb = "is" if len(missing) == 1 else "are"
        return wrong(f"{names_text} {verb} not defined yet",
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
