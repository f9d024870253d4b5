"""Feedback, checks and widgets: plain functions first, widgets as thin views over them."""

from __future__ import annotations

import html
import numbers
import re

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


def html_words(markup: str) -> str:
    """The text a browser shows for our feedback HTML: tags dropped, <br> as a new line."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup.replace("<br>", "\n")))


def test_feedback_html_has_colour_and_the_same_words():
    for outcome, colour in [(right("a < b & c"), "#1a7f37"),
                            (wrong("x is 'None'", "assign <a tensor> to x"), "#b35900")]:
        markup = outcome._repr_html_()
        assert colour in markup
        assert html_words(markup) == str(outcome)  # the same words as the text, hint included
        assert html_words(widgets.feedback_html(outcome)) == str(outcome)
    assert "Hint: assign <a tensor> to x" in html_words(wrong("x", "assign <a tensor> to x")._repr_html_())


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


def stopped(call, *args, **kwargs) -> Feedback:
    """The Feedback an expect_* helper raises (as WrongAnswer) for a wrong value."""
    with pytest.raises(feedback.WrongAnswer) as info:
        call(*args, **kwargs)
    assert not info.value.feedback.correct
    return info.value.feedback


def test_expect_type_and_shape_messages():
    assert "is None" in stopped(feedback.expect_type, None, dict, "x").message
    assert "is a list, expected a dict" in stopped(feedback.expect_type, [], dict, "x").message
    assert feedback.expect_type({}, dict, "x") is None
    assert "has no shape" in stopped(feedback.expect_shape, [1, 2], (2,), "t").message
    assert "expected (1, 2)" in stopped(feedback.expect_shape, torch.zeros(2), (1, 2), "t").message
    assert feedback.expect_shape(torch.zeros(1, 2), (1, 2), "t") is None
    assert stopped(feedback.expect_type, [], dict, "x", hint="use a dict").hint == "use a dict"
    assert stopped(feedback.expect_shape, torch.zeros(2), (1, 2), "t", hint="one row").hint == "one row"


def test_type_names_read_as_english():
    assert feedback.a_type(3) == "an int" and feedback.a_type([]) == "a list"
    assert feedback.a_type(None) == "None" and feedback.a_kind("Integral") == "an int"
    assert "is a str, expected an int" in stopped(feedback.expect_type, "7", numbers.Integral,
                                                  "n").message
    assert "assign an int to n" in stopped(feedback.expect_type, None, numbers.Integral, "n").hint


def test_expect_callable_messages():
    assert "def f(x): ..." in stopped(feedback.expect_callable, None, "f", "f(x)").hint
    assert "is an int, expected a function" in stopped(feedback.expect_callable, 3, "f",
                                                       "f(x)").message
    assert feedback.expect_callable(len, "f", "f(x)") is None


def test_a_checker_reads_straight_down_and_guarded_returns_the_first_miss():
    @feedback.guarded
    def check(value):
        feedback.expect_type(value, list, "value")
        if len(value) < 2:
            feedback.fail("too short", "two items")
        return right("fine")

    assert check(None).message == "value is None" and check([1]).message == "too short"
    assert check([1, 2]).correct


def test_expect_number_int_and_tensor():
    import numpy as np

    assert feedback.expect_number(np.float32(0.5), "x") == 0.5
    assert feedback.expect_number(torch.tensor([2.0]), "x") == 2.0
    assert "single number" in stopped(feedback.expect_number, torch.zeros(3), "x").message
    assert stopped(feedback.expect_number, torch.zeros(3), "x", hint="sum").hint == "sum"
    assert "bool" in stopped(feedback.expect_number, True, "x").message
    assert "finite" in stopped(feedback.expect_number, float("nan"), "x").message
    assert feedback.expect_int(np.int64(3), "n") == 3 and feedback.expect_int(torch.tensor(4), "n") == 4
    assert ".item()" in stopped(feedback.expect_int, torch.tensor(4), "n", allow_tensor=False).hint
    assert "float 2.0" in stopped(feedback.expect_int, 2.0, "n").message
    assert "shape (2,), expected (1, 2)" in stopped(feedback.expect_tensor, torch.zeros(2), "t",
                                                     shape=(1, 2)).message
    assert "return_tensors" in stopped(feedback.expect_tensor, [1, 2], "t").hint


def test_expect_logits_takes_one_vector_of_logits_and_names_probabilities():
    logits = torch.tensor([[0.5, -1.0, 2.0]])
    assert torch.equal(feedback.expect_logits(logits, "v", 3), logits.reshape(-1))
    assert "expected 3 logits" in stopped(feedback.expect_logits, torch.zeros(2, 3), "v", 3).message
    probs = logits.softmax(-1)
    assert "these are probabilities" in stopped(feedback.expect_logits, probs, "v", 3).message
    assert "list" in stopped(feedback.expect_logits, [0.5, -1.0, 2.0], "v", 3).message


def test_expect_evidence_needs_every_key_and_shows_the_layout():
    assert feedback.expect_evidence({"a": 1, "b": 2}, "ev", ("a", "b"), "two vectors") == {"a": 1, "b": 2}
    none = stopped(feedback.expect_evidence, None, "ev", ("a", "b"), "two vectors")
    assert "compute the evidence first" in none.message and "{'a': ..., 'b': ...} of two vectors" in none.hint
    assert "needs the keys ['a', 'b']" in stopped(feedback.expect_evidence, {"a": 1}, "ev", ("a", "b"),
                                                  "two vectors").message


def test_expect_tokens_and_logits_flattens_and_stacks():
    tokens, logits = feedback.expect_tokens_and_logits((torch.tensor([[3, 4]]), [torch.zeros(1, 5)] * 2), "f")
    assert tokens == [3, 4] and logits.shape == (2, 5)
    assert "expected a tuple (tokens, logits)" in stopped(feedback.expect_tokens_and_logits, [1], "f").message
    floats = ([1.5], torch.zeros(1, 5))
    assert "list of ints" in stopped(feedback.expect_tokens_and_logits, floats, "f").message
    assert "tensor" in stopped(feedback.expect_tokens_and_logits, ([1], "logits"), "f").message


OPTIONS = ("A) the first", "B) the second", "C) the third")


@pytest.mark.parametrize("answer", ["A) the first", "  a) THE FIRST ", "'A) the first'", "A",
                                    "a", "A)", "A) something else"])
def test_match_choice_takes_text_case_and_letters_alike(answer):
    assert feedback.match_choice(answer, OPTIONS) == "A) the first"


def test_match_choice_refuses_what_is_not_one_option():
    assert "not one of the options" in stopped(feedback.match_choice, "Z", OPTIONS).message
    assert "letter A-C" in stopped(feedback.match_choice, "", OPTIONS).hint
    assert "exactly one" in stopped(feedback.match_choice, ["A", "B"], OPTIONS).message
    assert "is None" in stopped(feedback.match_choice, None, OPTIONS).message
    plain = ("AutoModel", "AutoModelForMaskedLM")
    assert feedback.match_choice(" automodel ", plain) == "AutoModel"
    assert "copy one option exactly: AutoModel | AutoModelForMaskedLM" in stopped(
        feedback.match_choice, "A", plain).hint  # a letter counts only where options are lettered

    class AutoModelForMaskedLM:
        pass

    assert feedback.match_choice(AutoModelForMaskedLM, plain) == "AutoModelForMaskedLM"


def test_evaluate_reports_undefined_names_without_raising():
    outcome = feedback.evaluate(lambda a: right("fine"), {}, "answer")
    assert not outcome.correct and "answer is not defined yet" in outcome.message
    two = feedback.evaluate(lambda a, b: right("fine"), {}, "batch", "position_ids")
    assert two.message == "batch and position_ids are not defined yet"
    three = feedback.evaluate(lambda a, b, c: right("fine"), {"b": 1}, "a", "b", "c", "d")
    assert three.message == "a, c and d are not defined yet"
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


def test_explorer_runs_its_function_once_on_display(monkeypatch):
    import ipywidgets as w
    from IPython import display as ipy_display

    calls, shown = [], []
    monkeypatch.delenv("COURSE_WIDGETS", raising=False)
    monkeypatch.setattr(ipy_display, "display", lambda obj, raw=False: shown.append(obj))

    def fn(word):
        calls.append(word)
        return f"{word}!"

    widgets.explorer(fn, {"word": w.Text(value="cat")})
    assert calls == ["cat"] and shown[0]["text/plain"] == "cat!"


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
