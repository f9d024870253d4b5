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


# Graded cells whose hidden part checks only a measurement, and whose visible assert grades the choice
# (L02 Q4's hidden part now re-checks the evidence and the choice itself: tests/test_l02_graded_questions.py)
WHOLE_CELL: set[tuple[int, str]] = set()


def assert_earns_nothing(lesson: int, question: str, shortcut: str, check: str) -> str:
    """Feed `shortcut` as question's answer: the checker (`check`, an expression) and hidden tests fail."""
    namespace = run_until(lesson, f"{question}_test", {f"{question}_answer": shortcut})
    namespace["TWO"] = ["Crunchy peanut pretzels.", "Mint humbugs in a tin."]
    feedback = eval(check, namespace)
    assert not feedback.correct, f"the checker accepted the shortcut: {feedback}"
    # any error in a graded cell costs its points (nbgrader); the control below shows the cell can pass
    graded = (_python(dict(_cells(lesson))[f"{question}_test"]) if (lesson, question) in WHOLE_CELL
              else hidden_tests(lesson, f"{question}_test"))
    with pytest.raises((AssertionError, ValueError)):
        exec(compile(graded, f"{question}_test", "exec"), namespace)
    return f"{feedback.message} | {feedback.hint}"


def assert_source_passes(lesson: int, question: str, check: str) -> None:
    """The control: the source's own answer passes the checker and the hidden tests."""
    namespace = run_until(lesson, f"{question}_test")
    namespace["TWO"] = ["Crunchy peanut pretzels.", "Mint humbugs in a tin."]
    feedback = eval(check, namespace)
    assert feedback.correct, feedback
    exec(compile(hidden_tests(lesson, f"{question}_test"), f"{question}_test", "exec"), namespace)


def choices_earned(base: dict[str, Any], evidence: dict[str, str], choices: Any, check: Any,
                   names: tuple[str, ...], graded: Any) -> list[tuple[str, Any, bool, bool]]:
    """An evidence-first graded choice, brute-forced: each evidence variant (code run on a copy of
    `base`) with every choice in names[0]; the (evidence, choice, self-check correct, graded cell
    passed) that earn anything. With wrong evidence the self-check must say one thing whatever
    the choice (else it would be an oracle for the graded answer)."""
    from course_utils.feedback import evaluate

    earned = []
    for name, code in evidence.items():
        messages = set()
        for choice in choices:
            ns = dict(base, V=base["model"].config.vocab_size)
            exec(code, ns)
            ns[names[0]] = choice
            feedback = evaluate(check, ns, *names)
            messages.add(str(feedback))
            try:
                exec(graded, ns)
                passed = True
            except Exception:  # any error in a graded cell costs its points (nbgrader)
                passed = False
            if feedback.correct or passed:
                earned.append((name, choice, feedback.correct, passed))
        if name != "right":  # wrong evidence: the self-check says nothing about the choice
            assert len(messages) == 1, (name, messages)
    return earned


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
    "q1": ("ex.check_first_step(first_step, model, tokenizer)", '''
def first_step(model, inputs):  # the logits generate() returns for its first step
    out = model.generate(**inputs, max_new_tokens=1, do_sample=False, num_beams=1,
                         return_dict_in_generate=True, output_logits=True)
    return out.logits[0]
''', "calls generate()"),
    "q1_helper": ("ex.check_first_step(first_step, model, tokenizer)", '''
from course_utils.decoding import first_step_logits as fsl

def first_step(model, inputs):
    return fsl(model, inputs["input_ids"], inputs["attention_mask"])
''', "first_step_logits"),
    "q1_labels": ("ex.check_first_step(first_step, model, tokenizer)", '''
def first_step(model, inputs):  # labels of one token: the model shifts them into [start]
    labels = torch.full((inputs["input_ids"].shape[0], 1), 5, device=inputs["input_ids"].device)
    return model(**inputs, labels=labels).logits[:, -1]
''', "labels="),
    "q2": ("ex.check_teacher_forced_loss(teacher_forced_loss, model, tokenizer)", '''
def teacher_forced_loss(model, inputs, labels):  # reads the model's own loss
    return model(**inputs, labels=labels).loss
''', "labels="),
    "q2_forward": ("ex.check_teacher_forced_loss(teacher_forced_loss, model, tokenizer)", '''
def teacher_forced_loss(model, inputs, labels):  # the same, through the class's forward (no hooks run)
    return type(model).forward(model, **inputs, labels=labels).loss
''', "labels="),
    "q2_shift": ("ex.check_teacher_forced_loss(teacher_forced_loss, model, tokenizer)", '''
def teacher_forced_loss(model, inputs, labels):  # the model's own shift
    logits = model(**inputs, decoder_input_ids=model._shift_right(labels)).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
''', "_shift_right"),
    "q2_gpt2": ("ex.check_teacher_forced_loss(teacher_forced_loss, model, tokenizer)", '''
def teacher_forced_loss(model, inputs, labels):  # shifted by hand, then shifted again as for GPT-2
    start = torch.full_like(labels[:, :1], model.config.decoder_start_token_id)
    decoder_input_ids = torch.cat([start, labels[:, :-1]], dim=1)
    decoder_input_ids = decoder_input_ids.masked_fill(decoder_input_ids == -100, model.config.pad_token_id)
    logits = model(**inputs, decoder_input_ids=decoder_input_ids).logits
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
''', "shifted"),
    "q6": ("ex.check_rescale_choice(rescale_answer, rescale_evidence, model, inputs)", '''
rescale_answer = ex.CHOICES[1]  # the right choice, with evidence typed in
rescale_evidence = {"with_rescale": torch.zeros(model.config.vocab_size),
                    "without_rescale": torch.ones(model.config.vocab_size)}
''', "with_rescale"),
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


@pytest.mark.parametrize("question", ["q1", "q2", "q3", "q4", "q5", "q6"])
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


# ---------------------------------------------------------------- lessons 01-04
# (lesson, question, the checker call as the graded cell makes it, the shortcut answer, words the
# checker's message must contain)

SHORTCUTS = [
    # L01 Q1: greedy decoding asked for 3 sequences (the pipeline would raise; the checker says why)
    (1, "q1", "ex.check_generation_kwargs(generation_kwargs)",
     'generation_kwargs = {"max_new_tokens": 50, "num_return_sequences": 3, "do_sample": False}',
     "greedy"),
    # L01 Q2: the labels copied as predictions, accuracy typed as 1.0
    (1, "q2", "ex.check_review_results(reviews, predictions, accuracy, zero_shot)", '''
reviews = [("These gummy bears are soft and fruity.", "candy"),
           ("Sour lollipops for the kids.", "candy"),
           ("My old beagle loves this kibble.", "pet food"),
           ("Both kittens eat the tuna pouches.", "pet food"),
           ("Salted almonds for long drives.", "snack"),
           ("Light crunchy rice crackers today.", "snack")]
predictions = [label for _, label in reviews]
accuracy = 1.0
''', "zero_shot"),
    # L01 Q3: a table of the right shape whose labels do not come from the classifiers
    (1, "q3", 'ex.check_comparison(compare_models({"first": zero_shot}, TWO, ex.REVIEW_LABELS), TWO, '
              '["first"], ex.REVIEW_LABELS, {"first": zero_shot})', '''
my_model_id = "cross-encoder/nli-distilroberta-base"


def compare_models(classifiers, texts, labels):
    top = zero_shot(list(texts), candidate_labels=list(labels))
    unlikely = [next(label for label in labels if label != r["labels"][0]) for r in top]
    return pd.DataFrame({name: unlikely for name in classifiers})
''', "ranks"),
    # L01 Q4: a removed task name
    (1, "q4", "ex.check_task_choices(task_choices)", '''
task_choices = dict(ex.TASK_FOR_PROBLEM)
task_choices["Continue a story from its first sentence"] = "text2text-generation"
''', "removed"),
    # L02 Q4, L03 Q3, L04 Q5: multiple choice, a wrong option
    # (L02/L03: right evidence in place; every choice x every evidence: test_l0[23]_graded_questions.py)
    (2, "q4", "ex.check_lossless_family(round_trip, lossless_family)",
     'lossless_family = ex.FAMILY_OPTIONS[0]', "does not follow"),
    (3, "q3", "ex.check_head_choice(output_shape, head_class, tokenizer)",
     'head_class = "AutoModelForSequenceClassification"', "does not follow"),
    # L04 Q5: the right choice with evidence typed in (tests/test_l04_*.py brute-forces every pair)
    (4, "q5", "ex.check_right_padding(right_padding_answer, right_padding_evidence, model, tokenizer)", '''
right_padding_answer = "A"
right_padding_evidence = {"last_column": torch.ones(model.config.vocab_size),
                          "alone": torch.zeros(model.config.vocab_size)}
''', "alone"),
    # L02 Q1: padding=True (longest), not a fixed length
    (2, "q1", "ex.check_padded_batch(batch)",
     'batch = tokenizer(SENTENCES, padding=True, truncation=True, return_tensors="pt")', None),
    # L02 Q2: the token's text, not the original text's piece (case and accents lost)
    (2, "q2", "ex.check_token_span(token_span)", '''
def token_span(encoding, text, index):
    token = encoding.tokens()[index]
    return "" if token.startswith("[") else token.replace("##", "")
''', None),
    # L02 Q3: the naive prediction typed in: vocabulary + 3 new words
    (2, "q3", "ex.check_added_tokens(new_len, lakers_id)", '''
new_len = len(tokenizer) + len(ex.ADDED_WORDS)
lakers_id = len(tokenizer)
''', None),
    # L03 Q1: the padded batch without its attention mask (passed offline before issue 14)
    (3, "q1", "ex.check_classify_by_hand(classify_by_hand, classifier, tokenizer)", '''
def classify_by_hand(model, tokenizer, texts):
    batch = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(model.device)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"]).logits
    probs = torch.softmax(logits, dim=-1)
    return probs, [model.config.id2label[i] for i in probs.argmax(dim=-1).tolist()]
''', "attention_mask"),
    # L03 Q2: a wrapper around the course's pooling, which the task forbids
    (3, "q2", "ex.check_mean_pool(mean_pool)", '''
def mean_pool(hidden_states, attention_mask):
    return cu.pooling.masked_mean_pool(hidden_states, attention_mask)
''', "masked_mean_pool"),
    # L03 Q4: a typed constant (the task says not to)
    (3, "q4", "ex.check_head_counter(count_head_params, fresh)", '''
def count_head_params(model):
    return 1155
''', "constant"),
    # L04 Q1: probabilities over the top 5 only
    (4, "q1", "ex.check_top5(top5, model, tokenizer)", '''
with torch.no_grad():
    q1_logits = model(**tokenizer(ex.TOPK_PROMPT, return_tensors="pt").to(device)).logits[0, -1]
q1_top = q1_logits.topk(ex.TOPK_K)
top5 = pd.DataFrame({"token": [tokenizer.decode([i]) for i in q1_top.indices.tolist()],
                     "probability": q1_top.values.softmax(-1).tolist()})
''', None),
    # L04 Q2: the probability, not its logarithm (its message was unreachable before issue 14)
    (4, "q2", "ex.check_logprob(logprob, model, tokenizer)", '''
q2_prompt = tokenizer(ex.CONTINUATION_PROMPT)["input_ids"]
q2_cont = tokenizer(ex.CONTINUATION)["input_ids"]
with torch.no_grad():
    q2_ids = torch.tensor([q2_prompt + q2_cont], device=device)
    q2_logprobs = model(input_ids=q2_ids).logits[0].log_softmax(-1)
logprob = math.exp(sum(q2_logprobs[len(q2_prompt) + j - 1, t].item() for j, t in enumerate(q2_cont)))
''', "not its logarithm"),
    # L04 Q3: ln_f applied to every hidden state, the last one twice
    (4, "q3", "ex.check_lens(lens, model, tokenizer)", '''
with torch.no_grad():
    q3_inputs = tokenizer(ex.LENS_PROMPT, return_tensors="pt").to(device)
    q3_states = model(**q3_inputs, output_hidden_states=True).hidden_states
    lens = torch.stack([model.lm_head(model.transformer.ln_f(h[0, -1])) for h in q3_states])
''', None),
    # L04 Q6 (fix this broken code): the broken function handed in unfixed
    (4, "q6", "ex.check_fixed_next_token_logits(next_token_logits, model, tokenizer)",
     'next_token_logits = buggy_next_token_logits', "still the bug"),
    # L04 Q4: right padding with default position ids
    (4, "q4", "ex.check_padded_batch(batch, position_ids, model, tokenizer)", '''
tokenizer.pad_token = tokenizer.eos_token
tokenizer.padding_side = "right"
batch = tokenizer(list(ex.PAD_TEXTS), padding=True, return_tensors="pt")
position_ids = torch.arange(batch["input_ids"].shape[1]).expand_as(batch["input_ids"])
''', None),
]


@pytest.mark.parametrize("lesson,question,check,shortcut,words", SHORTCUTS,
                         ids=[f"l{c[0]:02d}-{c[1]}" for c in SHORTCUTS])
def test_lessons_01_to_04_shortcuts_earn_nothing(lesson, question, check, shortcut, words):
    message = assert_earns_nothing(lesson, question, shortcut, check)
    if words:
        assert words in message, message


@pytest.mark.parametrize("lesson,question,check", [c[:3] for c in SHORTCUTS],
                         ids=[f"l{c[0]:02d}-{c[1]}" for c in SHORTCUTS])
def test_lessons_01_to_04_source_answers_pass(lesson, question, check):
    assert_source_passes(lesson, question, check)
