"""Feedback, checks and widgets: plain functions first, widgets as thin views over them."""

from __future__ import annotations

import numbers

import pytest
import torch

from course_utils import checks, feedback, widgets
from course_utils.feedback import Feedback, right, wrong


def test_feedback_text_says_right_wrong_and_hint():
    assert str(right("well done")) == "✓ Correct: well done"
    text = str(wrong("not quite", "try again"))
    assert text.startswith("✗ Not yet: not quite") and "Hint: try again" in text
    # Always truthy, so `if problem:` on an Optional[Feedback] works; use .correct for the verdict.
    assert right("x").correct and not wrong("x").correct and bool(wrong("x"))


def test_feedback_html_has_colour_and_the_same_words():
    good, bad = right("a < b").__repr__(), wrong("oops")._repr_html_()
    assert "#1a7f37" in right("a < b")._repr_html_() and "a &lt; b" in right("a < b")._repr_html_()
    assert "#b35900" in bad and "oops" in bad
    assert good != bad


def test_guarded_turns_learner_exceptions_into_one_line():
    @feedback.guarded
    def check(value):
        return right("ok") if value() else wrong("no")

    def broken():
        raise ZeroDivisionError("division by zero\nmore lines")

    outcome = check(broken)
    assert not outcome.correct
    assert outcome.message == "your code raised ZeroDivisionError: division by zero"


def test_guarded_says_an_unanswered_question_is_not_answered():
    @feedback.guarded
    def check(fn):
        return right("ok") if fn() else wrong("no")

    def placeholder():
        raise NotImplementedError()

    outcome = check(placeholder)
    assert outcome.message == "not answered yet" and "NotImplementedError" in outcome.hint


def test_expect_type_and_shape_messages():
    assert "is None" in feedback.expect_type(None, dict, "x").message
    assert "is a list, expected a dict" in feedback.expect_type([], dict, "x").message
    assert feedback.expect_type({}, dict, "x") is None
    assert "has no shape" in feedback.expect_shape([1, 2], (2,), "t").message
    assert "expected (1, 2)" in feedback.expect_shape(torch.zeros(2), (1, 2), "t").message
    assert feedback.expect_shape(torch.zeros(1, 2), (1, 2), "t") is None


def test_type_names_read_as_english():
    assert feedback.a_type(3) == "an int" and feedback.a_type([]) == "a list"
    assert feedback.a_type(None) == "None" and feedback.a_kind("Integral") == "an int"
    assert "is a str, expected an int" in feedback.expect_type("7", numbers.Integral, "n").message
    assert "assign an int to n" in feedback.expect_type(None, numbers.Integral, "n").hint


def test_expect_callable_messages():
    assert "def f(x): ..." in feedback.expect_callable(None, "f", "f(x)").hint
    assert "is an int, expected a function" in feedback.expect_callable(3, "f", "f(x)").message
    assert feedback.expect_callable(len, "f", "f(x)") is None


def test_evaluate_reports_undefined_names_without_raising():
    outcome = feedback.evaluate(lambda a: right("fine"), {}, "answer")
    assert not outcome.correct and "answer is not defined yet" in outcome.message
    assert feedback.evaluate(lambda a: right("fine"), {"answer": 1}, "answer").correct


def test_report_displays_and_returns_nothing(capsys):
    assert feedback.report(lambda a: wrong("bad", "hint"), {"a": 1}, "a") is None
    assert "✗ Not yet: bad" in capsys.readouterr().out


def test_check_prints_a_line_and_raises_on_failure(capsys):
    checks.check("two is two", 2 == 2)
    assert capsys.readouterr().out == "✓ two is two\n"
    with pytest.raises(checks.CheckFailed, match="✗ one is two: nope"):
        checks.check("one is two", 1 == 2, "nope")


def test_check_close_reports_gap_and_shape():
    checks.check_close("close", torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-7])
    with pytest.raises(checks.CheckFailed, match="largest difference 0.1"):
        checks.check_close("far", [1.0], [1.1])
    with pytest.raises(checks.CheckFailed, match="shapes differ"):
        checks.check_close("shape", [1.0, 2.0], [1.0])


def story_check(answer):
    return right("yes") if answer == "text-generation" else wrong(f"not {answer!r}", "hint")


def test_answer_box_shows_feedback_for_wrong_then_right():
    box = widgets.build_answer_box(story_check, "Task:")
    text, button = box.children[0].children
    result = box.children[1]
    assert text.continuous_update is False
    text.value = "fill-mask"
    button.click()
    assert "✗ Not yet: not &#x27;fill-mask&#x27;" in result.value and "#b35900" in result.value
    text.value = "text-generation"
    button.click()
    assert "✓ Correct: yes" in result.value


def test_answer_box_feedback_follows_an_answer_that_arrives_after_the_click():
    box = widgets.build_answer_box(story_check, "Task:")
    text, button = box.children[0].children
    result = box.children[1]
    text.value = "fill-mask"  # Enter: checked at once
    assert "✗ Not yet" in result.value
    button.click()  # the learner typed the right answer, but the click's message came first...
    assert "fill-mask" in result.value
    text.value = "text-generation"  # ...and the text's message second: the feedback catches up
    assert "✓ Correct: yes" in result.value


def test_answer_box_survives_a_checker_that_raises():
    def broken(answer):
        raise RuntimeError("checker bug")

    box = widgets.build_answer_box(broken, "Task:")
    box.children[0].children[1].click()
    assert "RuntimeError: checker bug" in box.children[1].value


def test_choice_question_asks_for_a_pick_first():
    widget = widgets.build_choice_question(story_check, "Which?", ["fill-mask", "text-generation"])
    _, radio, button, result = widget.children
    button.click()
    assert "pick one option first" in result.value
    radio.value = "text-generation"
    button.click()
    assert "✓ Correct" in result.value


def test_explorer_reruns_its_function_on_change():
    import ipywidgets as w
    import pandas as pd

    calls = []

    def fn(word):
        calls.append(word)
        return pd.DataFrame({"word": [word], "length": [len(word)]})

    control = w.Text(value="cat")
    widgets.build_explorer(fn, {"word": control})
    control.value = "horse"
    assert calls == ["cat", "horse"]


def test_text_fallback_prints_the_plain_result(monkeypatch, capsys):
    import ipywidgets as w

    monkeypatch.setenv("COURSE_WIDGETS", "text")
    widgets.explorer(lambda word: f"{word} has {len(word)} letters", {"word": w.Text(value="cat")})
    widgets.answer_box(story_check, "Task:")
    out = capsys.readouterr().out
    assert "cat has 3 letters" in out and "Task: (widgets unavailable" in out


def test_explorer_errors_become_feedback_text(monkeypatch, capsys):
    import ipywidgets as w

    monkeypatch.setenv("COURSE_WIDGETS", "text")
    widgets.explorer(lambda word: 1 / 0, {"word": w.Text(value="x")})
    assert "✗ Not yet: ZeroDivisionError: division by zero" in capsys.readouterr().out


def test_show_offers_text_plain_beside_the_widget(monkeypatch):
    import ipywidgets as w
    from IPython import display as ipy_display

    shown = []
    monkeypatch.setattr(ipy_display, "display", lambda obj, raw=False: shown.append(obj))
    widgets.show(w.Button(description="x"), "fallback text")
    (bundle,) = shown
    assert bundle["text/plain"] == "fallback text"
    assert "application/vnd.jupyter.widget-view+json" in bundle
