"""The lesson manifest: the one place that lists the course's lessons and what each one uses.

README's lesson table, the registry's "lessons" column and the benchmark's list of notebooks are
generated from LESSONS, and tests check that every notebook's `cu.checkpoint(...)` calls agree
with `roles`. Adding a lesson means adding one entry here (see CONTRIBUTING.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    """One lesson: where its files are and which models it loads."""

    number: str  # two digits, "01"
    slug: str  # notebook name without .ipynb, "01_pipelines"
    title: str
    summary: str  # one line for the README's table
    minutes: int  # a realistic time for a learner working alone
    roles: tuple[str, ...]  # registry roles its lesson and exercise notebooks load
    exercises: str  # checker module under course_utils.exercises, "l01_pipelines"

    @property
    def notebook(self) -> str:
        """The lesson notebook's path from the repository root."""
        return f"notebooks/{self.slug}.ipynb"

    @property
    def assignment(self) -> str:
        """The nbgrader assignment name, "lesson01"."""
        return f"lesson{self.number}"

    @property
    def exercise_notebook(self) -> str:
        """The exercise notebook's file name, "01_pipelines_exercises.ipynb"."""
        return f"{self.slug}_exercises.ipynb"


LESSONS: tuple[Lesson, ...] = (
    Lesson("01", "01_pipelines", "Pipelines",
           "Sentiment, generation, zero-shot, fill-mask and feature extraction with named models; "
           "generation defaults; the tasks transformers 5 removed",
           40, ("sentiment", "generation", "zero-shot", "fill-mask", "features", "t5"),
           "l01_pipelines"),
    Lesson("02", "02_tokenization", "Tokenization",
           "Tokens, ids and special tokens; subwords, added tokens, padding, truncation, offsets; "
           "WordPiece, BPE and SentencePiece side by side",
           40, ("sentiment", "generation", "t5"), "l02_tokenization"),
    Lesson("03", "03_models_and_heads", "Models and heads",
           "Hidden states, heads, a pipeline's scores reproduced by hand, sentence embeddings with "
           "masked mean pooling",
           40, ("sentiment", "features"), "l03_models_and_heads"),
    Lesson("04", "04_logits_and_embeddings", "Logits and embeddings",
           "GPT-2's tied embeddings, left padding done right, a correct logit lens, temperature, "
           "top-k and top-p",
           45, ("generation",), "l04_logits_and_embeddings"),
    Lesson("05", "05_t5_decoding", "T5 decoding",
           "T5 logits without labels, teacher forcing, greedy decoding by hand with a KV cache that "
           "matches `generate()`",
           50, ("t5",), "l05_t5_decoding"),
    Lesson("07", "07_kv_cache_and_beam_search", "The KV cache and beam search",
           "GPT-2's prefill and cached decode steps by hand, left padding with the cache, the "
           "cache's memory, beam search and repetition controls equal to `generate()`",
           55, ("generation",), "l07_kv_cache_and_beam_search"),
)


def lesson(number: str) -> Lesson:
    """The lesson with this two-digit number."""
    for entry in LESSONS:
        if entry.number == number:
            return entry
    raise KeyError(f"no lesson {number!r}; the manifest has {[e.number for e in LESSONS]}")


def lessons_using(role: str) -> tuple[str, ...]:
    """The numbers of the lessons that load a registry role."""
    return tuple(entry.number for entry in LESSONS if role in entry.roles)
