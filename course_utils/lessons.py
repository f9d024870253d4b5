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
           50, ("sentiment", "generation", "zero-shot", "fill-mask", "features", "t5"),
           "l01_pipelines"),
    Lesson("02", "02_tokenization", "Tokenization",
           "Tokens, ids and special tokens; subwords, added tokens, padding, truncation, offsets; "
           "WordPiece, BPE and SentencePiece side by side",
           50, ("sentiment", "generation", "t5"), "l02_tokenization"),
    Lesson("03", "03_models_and_heads", "Models and heads",
           "Hidden states, heads, a pipeline's scores reproduced by hand, sentence embeddings with "
           "masked mean pooling, an answer span from a question-answering head",
           60, ("sentiment", "features", "qa"), "l03_models_and_heads"),
    Lesson("04", "04_logits_and_embeddings", "Logits and embeddings",
           "GPT-2's tied embeddings, left padding done right, a correct logit lens, temperature, "
           "top-k and top-p",
           75, ("generation",), "l04_logits_and_embeddings"),
    Lesson("05", "05_t5_decoding", "T5 decoding",
           "T5 logits without labels, teacher forcing, greedy decoding by hand with a KV cache that "
           "matches `generate()`",
           80, ("t5",), "l05_t5_decoding"),
    Lesson("06", "06_attention", "Attention and the transformer block",
           "One attention head, a whole block and the whole GPT-2 rebuilt from its own weights and "
           "matched to the model; causal and padding masks measured; attention heatmaps; parameter "
           "counts",
           75, ("generation",), "l06_attention"),
    Lesson("07", "07_kv_cache_and_beam_search", "The KV cache and beam search",
           "GPT-2's prefill and cached decode steps by hand, left padding with the cache, the "
           "cache's memory, beam search and repetition controls equal to `generate()`",
           55, ("generation",), "l07_kv_cache_and_beam_search"),
    Lesson("08", "08_memory_and_precision", "Memory, precision and device maps",
           "Will it fit? Parameters and bytes from a config on the meta device, fp32/bf16/fp16 "
           "compared, device maps with offload to CPU or disk, a 7B model planned for a budget",
           50, ("generation",), "l08_memory_and_precision"),
    Lesson("09", "09_fine_tuning", "Fine-tuning by hand",
           "all-MiniLM-L6-v2 fine-tuned into a review classifier: a padding collator, AdamW with "
           "warm-up and clipping, accelerate's Accelerator, loss curves, a confusion matrix, a frozen "
           "encoder, a learning rate too high, and a reloaded pipeline",
           50, ("features",), "l09_fine_tuning"),
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
