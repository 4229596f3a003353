"""Progress of a long run: a bar with count, rate and ETA on a terminal, plain lines elsewhere.

Plain lines (one per finished item) suit log files, CI and Slurm output, where a bar
redrawn with carriage returns would be noise. Hand-written to avoid a dependency.
"""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 28
REDRAW_SECONDS = 0.1


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Counts finished items against a total; ``done`` items were finished before this run."""

    def __init__(self, total: int, stream: TextIO, done: int = 0, clock=time.monotonic) -> None:
        self.total = total
        self.stream = stream
        self.done = done
        self.skipped = done
        self.clock = clock
        self.started = clock()
        self.drawn = 0.0
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False

    @property
    def rate(self) -> float:
        """Items per second finished in this run."""
        elapsed = self.clock() - self.started
        return (self.done - self.skipped) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """``  57/200 [########.......]  28%  6.1/s  ETA 0:24``"""
        fraction = self.done / self.total if self.total else 1.0
        filled = int(BAR_WIDTH * fraction)
        rate = self.rate
        eta = format_duration((self.total - self.done) / rate) if rate > 0 else "?"
        width = len(str(self.total))
        return (
            f"{self.done:>{width}}/{self.total} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
            f"{100 * fraction:3.0f}%  {rate:.1f}/s  ETA {eta}"
        )

    def advance(self, message: str) -> None:
        """One more item finished; ``message`` says which and how it went (shown on plain output)."""
        self.done += 1
        if not self.tty:
            width = len(str(self.total))
            self.stream.write(f"[{self.done:>{width}}/{self.total}] {message}\n")
            self.stream.flush()
            return
        now = self.clock()
        if now - self.drawn >= REDRAW_SECONDS or self.done == self.total:
            self.drawn = now
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        """End the bar's line, so what is printed next starts on a fresh one."""
        if self.tty and self.total > self.skipped:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()
