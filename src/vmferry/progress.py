"""Progress reporting for long steps (disk conversion, packing, hashing).

Three modes, chosen once per command by :func:`make_reporter`:

* ``tty``: a one-line bar on standard error with percentage, rate and ETA, redrawn at most ten
  times a second;
* ``json``: one JSON object per line on standard error (``{"event": "progress", "step": ...,
  "done": ..., "total": ..., "rate": ...}``, plus ``start`` and ``end`` events), for ``--json``;
* ``quiet``: nothing, when standard error is not a terminal.

A :class:`Reporter` hands out one :class:`Step` per long step; ``step.advance(n)`` is cheap and
thread-safe. Nothing here is global: commands create a reporter and pass it down.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TextIO


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60:02d}:{seconds % 60:02d}"


class Step:
    """Progress of one step; ``total`` in bytes (0 when unknown)."""

    def __init__(self, reporter: Reporter, name: str, total: int) -> None:
        self.reporter, self.name, self.total = reporter, name, total
        self.done = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()
        reporter._event(self, "start")

    def advance(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if now - self._last < self.reporter.interval:
                return
            self._last = now
        self.reporter._event(self, "progress")

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def finish(self) -> None:
        self.reporter._event(self, "end")

    def __enter__(self) -> Step:
        return self

    def __exit__(self, exc_type, *rest) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.reporter._abort(self)


class Reporter:
    """Where progress goes: ``mode`` is ``tty``, ``json`` or ``quiet``."""

    def __init__(self, mode: str = "quiet", stream: TextIO | None = None, interval: float = 0.1) -> None:
        if mode not in ("tty", "json", "quiet"):
            raise ValueError(f"unknown progress mode {mode!r}")
        self.mode = mode
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval if mode == "tty" else max(interval, 0.5)
        self._lock = threading.Lock()

    def step(self, name: str, total: int = 0) -> Step:
        from vmferry.errors import one_line

        return Step(self, one_line(name), total)

    def _event(self, step: Step, kind: str) -> None:
        if self.mode == "quiet":
            return
        with self._lock:
            if self.mode == "json":
                doc = {"event": kind, "step": step.name, "done": step.done, "total": step.total,
                       "rate": round(step.rate), "elapsed": round(time.monotonic() - step.started, 3)}
                self.stream.write(json.dumps(doc) + "\n")
            else:
                self.stream.write("\r" + self._bar(step, kind) + ("\n" if kind == "end" else ""))
            self.stream.flush()

    def _abort(self, step: Step) -> None:
        if self.mode == "tty":
            with self._lock:
                self.stream.write("\n")
                self.stream.flush()

    @staticmethod
    def _bar(step: Step, kind: str, width: int = 28) -> str:
        rate = step.rate
        if step.total:
            frac = min(step.done / step.total, 1.0)
            filled = int(frac * width)
            left = (step.total - step.done) / rate if rate > 0 else 0
            eta = "done " + _duration(time.monotonic() - step.started) if kind == "end" \
                else "ETA " + _duration(left)
            return (f"{step.name[:24]:<24} [{'#' * filled}{'.' * (width - filled)}] {frac * 100:5.1f}% "
                    f"{_human(step.done)} {_human(rate)}/s {eta}")
        return f"{step.name[:24]:<24} {_human(step.done)} {_human(rate)}/s"


def make_reporter(json_mode: bool = False, stream: TextIO | None = None) -> Reporter:
    """The reporter a command should use: JSON events with ``--json``, a bar on a terminal."""
    stream = stream if stream is not None else sys.stderr
    if json_mode:
        return Reporter("json", stream)
    return Reporter("tty" if stream.isatty() else "quiet", stream)

