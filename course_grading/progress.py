"""A progress bar for long batches: done / total, elapsed, ETA, failures so far.

Drawn with tqdm on a terminal only; elsewhere (a log file, CI, a pipe) it is silent and the
batch's one line per submission is all that is printed.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional, TextIO


class Progress:
    """done/total with elapsed time, ETA and failures; silent when `stream` is not a terminal."""

    def __init__(self, total: int, enabled: bool = True, stream: Optional[TextIO] = None):
        self.stream = stream or sys.stderr
        self.failed = 0
        self.bar: Any = None
        if enabled and total > 0 and _is_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, file=self.stream, unit="submission", dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]"
                                       " {postfix}", desc="grading")
            self.bar.set_postfix_str("0 failed")

    def update(self, failed: bool = False) -> None:
        """One more submission done."""
        self.failed += bool(failed)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.failed} failed", refresh=False)
            self.bar.update(1)

    def write(self, text: str, say: Callable[..., None] = print) -> None:
        """A line above the bar (or plainly, without one)."""
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            say(text)

    def close(self) -> None:
        """Leave the bar's last state on screen."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
