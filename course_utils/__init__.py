"""course_utils: the small helper package of "Transformers from the inside"."""

from importlib import metadata as _metadata

from . import checks, display, feedback, pooling, probes, widgets
from .environment import get_device, in_colab, seed_everything, setup
from .registry import checkpoint, registry_table

try:  # the one version number lives in pyproject.toml
    __version__ = _metadata.version("course-utils")
except _metadata.PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
__all__ = ["checks", "display", "feedback", "pooling", "probes", "widgets", "setup", "get_device",
           "in_colab", "seed_everything", "checkpoint", "registry_table"]
