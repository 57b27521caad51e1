"""A progress bar on stderr, so that a run of several minutes shows it is alive.

On a terminal the bar redraws in place (at most ten times a second); elsewhere (CI logs, a pipe) each
phase prints one line, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Steps of the whole run (``[3/7] faust``), and within a step a phase with an optional done/total."""

    def __init__(self, steps: int, stream: TextIO | None = None) -> None:
        self.steps = steps
        self.step = 0
        self.name = ""
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self._last_draw = 0.0
        self._phase = ""
        self._started = time.monotonic()

    def begin(self, name: str) -> None:
        """Start the next step."""
        self._end_line()
        self.step += 1
        self.name = name
        self._phase = ""

    def phase(self, text: str) -> None:
        """A new phase of the current step (a line of its own when not on a terminal)."""
        self._phase = text
        if self.tty:
            self._draw(text, force=True)
        else:
            print(f"{self._prefix()} {text}", file=self.stream, flush=True)

    def update(self, done: int, total: int, unit: str = "events") -> None:
        """Progress inside the current phase."""
        if not self.tty:
            return
        width = 24
        filled = int(width * min(done, total) / total) if total else width
        bar = "█" * filled + "░" * (width - filled)
        self._draw(f"{self._phase} {bar} {done:,}/{total:,} {unit}")

    def note(self, text: str) -> None:
        """A line that stays (a warning, a result)."""
        self._end_line()
        print(f"{self._prefix()} {text}", file=self.stream, flush=True)

    def finish(self) -> None:
        self._end_line()
        elapsed = time.monotonic() - self._started
        print(f"benchmark finished in {elapsed:.0f} s", file=self.stream, flush=True)

    def _prefix(self) -> str:
        return f"[{self.step}/{self.steps}] {self.name}:"

    def _draw(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        print(f"\r\033[K{self._prefix()} {text}", end="", file=self.stream, flush=True)

    def _end_line(self) -> None:
        if self.tty and self._last_draw:
            print(file=self.stream, flush=True)
            self._last_draw = 0.0
