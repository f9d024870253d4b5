"""Widgets: thin views over plain functions, each with a plain-text fallback.

Every widget here calls a plain Python function (a checker returning a Feedback, or an explorer
function returning a DataFrame or a string) that tests call directly. Where widgets cannot render
(nbval, CI, nbviewer, or COURSE_WIDGETS=text), the same result is shown as text.
"""

from __future__ import annotations

import html
import os
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import pandas as pd

from .feedback import Feedback, describe_error, wrong

if TYPE_CHECKING:  # for annotations only: decoding imports torch
    from .decoding import DecodingStepper


def text_mode() -> bool:
    """True when widgets should not be used (COURSE_WIDGETS=text, or ipywidgets missing)."""
    if os.environ.get("COURSE_WIDGETS", "").lower() == "text":
        return True
    try:
        import ipywidgets  # noqa: F401 (imported only to learn whether it is installed)
    except ImportError:
        return True
    return False


def as_text(result: Any) -> str:
    """Plain-text rendering of an explorer result or a Feedback."""
    if isinstance(result, pd.DataFrame):
        return result.to_string()
    return str(result)


def show(widget: Any, fallback: str) -> None:
    """Display `widget`, with `fallback` as the text a front end without widgets shows instead."""
    from IPython.display import display

    if text_mode() or widget is None:
        print(fallback)
        return
    bundle = widget._repr_mimebundle_()
    bundle["text/plain"] = fallback
    display(bundle, raw=True)


def feedback_html(feedback: Feedback) -> str:
    """The HTML a widget shows for a Feedback (the same words as its text)."""
    return feedback._repr_html_()


def safe_call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Call an explorer or checker; an exception becomes a short wrong-answer Feedback."""
    try:
        return fn(**kwargs)
    except Exception as err:
        return wrong(describe_error(err))


def answer_box(check: Callable[[str], Feedback], prompt: str, placeholder: str = "") -> None:
    """Show a text box and a Check button whose feedback appears below it."""
    show(build_answer_box(check, prompt, placeholder),
         f"{prompt} (widgets unavailable: call the checker with your answer as text)")


def build_answer_box(check: Callable[[str], Feedback], prompt: str, placeholder: str = "") -> Any:
    """A text box and a Check button; the learner's text goes to `check`, feedback shows below."""
    import ipywidgets as w

    # continuous_update=False: the value reaches the kernel whole, on blur or Enter, never half-typed.
    box = w.Text(description=prompt, placeholder=placeholder, continuous_update=False,
                 style={"description_width": "initial"}, layout=w.Layout(width="480px"))
    button = w.Button(description="Check", button_style="primary")
    result = w.HTML(value="")

    def show_feedback(_: Any = None) -> None:
        outcome = safe_call(check, answer=box.value)
        result.value = feedback_html(outcome if isinstance(outcome, Feedback) else wrong(str(outcome)))

    button.on_click(show_feedback)
    # A new answer is checked when it reaches the kernel (Enter, or leaving the box), so the
    # feedback always matches the box, even when the click's message overtakes the text's.
    box.observe(show_feedback, names="value")
    return w.VBox([w.HBox([box, button]), result])


def choice_question(check: Callable[[str], Feedback], question: str,
                    options: Sequence[str]) -> None:
    """Show radio buttons and a Check button over a multiple-choice checker."""
    listing = "\n".join(f"  - {o}" for o in options)
    show(build_choice_question(check, question, options), f"{question}\n{listing}")


def build_choice_question(check: Callable[[str], Feedback], question: str,
                          options: Sequence[str]) -> Any:
    """Radio buttons and a Check button over a multiple-choice checker."""
    import ipywidgets as w

    radio = w.RadioButtons(options=list(options), value=None, layout=w.Layout(width="auto"))
    button = w.Button(description="Check", button_style="primary")
    result = w.HTML(value="")

    def on_click(_: Any) -> None:
        if radio.value is None:
            result.value = feedback_html(wrong("pick one option first"))
            return
        result.value = feedback_html(safe_call(check, answer=radio.value))

    button.on_click(on_click)
    return w.VBox([w.HTML(f"<b>{html.escape(question)}</b>"), radio, button, result])


def explorer(fn: Callable[..., Any], controls: dict[str, Any],
             plot: Optional[Callable[[Any], Any]] = None) -> None:
    """Show controls that re-run `fn(**values)` on change; text fallback: the first result.

    The one explorer pattern of the course: `fn` is a plain function (tested directly) whose
    parameters are the keys of `controls`; it returns a DataFrame (drawn by `plot`, if given) or
    a text. `fn` runs once on display, then once per change.
    """
    if text_mode():
        print(as_text(safe_call(fn, **{name: c.value for name, c in controls.items()})))
        return
    widget, initial = _explorer(fn, controls, plot)
    show(widget, as_text(initial))


def build_explorer(fn: Callable[..., Any], controls: dict[str, Any],
                   plot: Optional[Callable[[Any], Any]] = None) -> Any:
    """Controls that re-run `fn(**values)` on change and show its table/text (and plot)."""
    return _explorer(fn, controls, plot)[0]


def _explorer(fn: Callable[..., Any], controls: dict[str, Any],
              plot: Optional[Callable[[Any], Any]]) -> tuple[Any, Any]:
    """The explorer widget, and the result of its first run."""
    import ipywidgets as w
    from IPython.display import display

    output = w.Output()
    latest: dict[str, Any] = {}

    def render(_: Any = None) -> None:
        result = safe_call(fn, **{n: c.value for n, c in controls.items()})
        latest["result"] = result
        output.clear_output(wait=True)
        with output:
            if isinstance(result, pd.DataFrame):
                display(result)
                if plot is not None:
                    import matplotlib.pyplot as plt

                    plot(result)
                    plt.show()
            else:
                print(as_text(result))

    for control in controls.values():
        control.observe(render, names="value")
    render()
    return w.VBox([*controls.values(), output]), latest["result"]


# ---------------------------------------------------------------- the decoding stepper (lesson 05)


def stepper_text(stepper: DecodingStepper, table: Optional[pd.DataFrame] = None) -> str:
    """Plain-text view of a stepper: the tokens so far and the candidates of the current step."""
    step = len(stepper.tokens)
    lines = [f"input: {stepper.text}", f"output so far ({step} tokens): {stepper.output()!r}"]
    if table is not None:
        chosen = stepper.tokenizer.convert_ids_to_tokens([stepper.tokens[-1]])[0]
        lines.append(f"step {step}: chose {chosen!r} (id {stepper.tokens[-1]}) from")
        lines.append(table.to_string(index=False))
    if stepper.done:
        lines.append("finished (EOS or length limit): press Reset")
        return "\n".join(lines)
    try:
        lines.append(f"next step's candidates:\n{stepper.candidates().to_string(index=False)}")
    except Exception as err:  # the learner's table function is unfinished or broken
        lines.append(f"the table function raised {describe_error(err)}")
    return "\n".join(lines)


def stepper_widget(stepper: DecodingStepper) -> Any:
    """A 'Next token' and a 'Reset' button over a DecodingStepper; text fallback without widgets."""
    import ipywidgets as w

    output = w.Output()
    next_button = w.Button(description="Next token", button_style="primary")
    reset_button = w.Button(description="Reset")

    def render(text: str) -> None:
        output.clear_output(wait=True)
        with output:
            print(text)

    def on_next(_: Any) -> None:
        try:
            table = stepper.step() if not stepper.done else None
        except Exception as err:  # e.g. the learner's table function raised
            render(f"could not step: {describe_error(err)}")
            return
        render(stepper_text(stepper, table))

    def on_reset(_: Any) -> None:
        stepper.reset()
        render(stepper_text(stepper))

    next_button.on_click(on_next)
    reset_button.on_click(on_reset)
    render(stepper_text(stepper))
    widget = w.VBox([w.HBox([next_button, reset_button]), output])
    show(widget, stepper_text(stepper) + "\n(widgets unavailable: call stepper.step() in a cell)")
    return widget
