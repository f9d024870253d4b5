"""course_utils: the small helper package of "Transformers from the inside"."""

from . import checks, display, feedback, widgets
from .environment import get_device, in_colab, seed_everything, setup
from .registry import checkpoint, registry_table

__version__ = "0.1.0"
__all__ = ["checks", "display", "feedback", "widgets", "setup", "get_device", "in_colab", "seed_everything", "checkpoint", "registry_table"]
