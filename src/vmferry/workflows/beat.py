"""Heartbeats for synchronous activities whose library call reports progress through ``say``."""

from __future__ import annotations

import threading

from temporalio import activity


class StepBeat:
    """Heartbeats of a synchronous activity (the failover steps of :mod:`vmferry.workflows.failover`):
    every ``every`` seconds while the run lives, and at once when its message changes, carrying the latest
    one. The thread runs in a copy of the activity's context: Temporal's activity context is a context
    variable, which a plain new thread does not see."""

    def __init__(self, every: float) -> None:
        import contextvars

        self.every = every
        self.latest = ""
        self._stop = threading.Event()
        self._changed = threading.Event()
        ctx = contextvars.copy_context()
        self._thread = threading.Thread(target=ctx.run, args=(self._run,), daemon=True, name="vmferry-recovery-beat")

    def say(self, msg: str) -> None:
        self.latest = msg
        self._changed.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._changed.wait(self.every)
            self._changed.clear()
            if not self._stop.is_set():
                activity.heartbeat(self.latest)

    def __enter__(self) -> StepBeat:
        activity.heartbeat("starting")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._changed.set()
        self._thread.join()
