"""Device, seeds, library versions and Colab detection: the one setup call of every lesson."""

from __future__ import annotations

import os
import random
import sys
from importlib import metadata
from typing import TYPE_CHECKING

from packaging.specifiers import SpecifierSet
from packaging.version import Version

if TYPE_CHECKING:  # annotations only: torch is imported where it is used
    import torch

# The ranges the course is tested with; the exact pins live in requirements.txt.
TESTED = {
    "transformers": SpecifierSet(">=5.23,<6"),
    "torch": SpecifierSet(">=2.4"),
}


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def get_device() -> torch.device:
    """The best available device: cuda, then mps, then cpu."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so sampling is reproducible on one machine."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries the course depends on."""
    names = ["transformers", "torch", "tokenizers", "huggingface-hub", "ipywidgets", "pandas"]
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def version_warnings(versions: dict[str, str]) -> list[str]:
    """One line per library whose version lies outside the tested range."""
    warnings = []
    for name, spec in TESTED.items():
        found = versions.get(name, "not installed")
        if found == "not installed":
            warnings.append(f"{name} is not installed (tested: {spec})")
        elif Version(Version(found).base_version) not in spec:
            warnings.append(f"{name} {found} is outside the tested range {spec}; "
                            "cells may behave differently")
    return warnings


def quiet_progress_bars() -> None:
    """Hide weight-loading progress bars (they clutter outputs); download bars stay on.

    A first download shows one bar per checkpoint (course_utils.hub), so a long download never
    looks like a hang. HF_HUB_DISABLE_PROGRESS_BARS=1, if you set it, hides those too.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def bound_the_hub() -> None:
    """Deadlines on huggingface_hub's own client, and its retry messages to a log file."""
    from . import hub

    hub.send_library_logs_to_file()
    hub.bound_huggingface_hub()


def setup(seed: int = 0) -> torch.device:
    """Pick the device, seed, print versions and tier in a few lines; return the device."""
    from .precision import pick_dtype
    from .registry import active_tier

    quiet_progress_bars()
    bound_the_hub()
    seed_everything(seed)
    device = get_device()
    versions = library_versions()
    where = "Colab" if in_colab() else "local"
    print(f"device: {device.type} | {where} | seed {seed} | "
          f"transformers {versions['transformers']}, torch {versions['torch']}")
    print(f"dtype: {pick_dtype(device)}")
    for line in version_warnings(versions):
        print(f"[course] warning: {line}")
    tier = active_tier()
    note = " (stand-ins are announced as they load)" if tier == "offline" else ""
    print(f"models: {tier} tier{note}")
    return device
