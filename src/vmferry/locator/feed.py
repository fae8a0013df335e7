"""The change feed: the recent changes in version order, and wake-ups for watchers.

The service appends every change it learns from its store, in version order; watchers read from a
version and block (threads) or are woken (asyncio, via a listener) when something new arrives. The
feed keeps the last ``capacity`` changes; a watcher resuming from before that reads the older part
from the store (:meth:`Store.history`) and then continues here, so nothing is skipped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from vmferry.locator.model import Change


@dataclass(frozen=True)
class Heartbeat:
    """Sent to idle watchers: every change up to ``version`` that the watcher follows was delivered."""

    version: int

    def to_dict(self) -> dict:
        return {"type": "heartbeat", "version": self.version}


class ChangeFeed:
    def __init__(self, base: int, capacity: int = 100_000) -> None:
        self._items: deque[Change] = deque()
        self.capacity = capacity
        self.base = base  # every change with version > base is in the feed
        self.head = base  # the last version published
        self._cond = threading.Condition()
        self._listeners: set[Callable[[], None]] = set()

    def publish(self, change: Change) -> None:
        with self._cond:
            if change.version <= self.head:
                return  # already seen (a store may redeliver after a reconnect)
            self._items.append(change)
            self.head = change.version
            while len(self._items) > self.capacity:
                self.base = self._items.popleft().version
            self._cond.notify_all()
            listeners = list(self._listeners)
        for wake in listeners:
            wake()

    def since(self, version: int) -> list[Change] | None:
        """Changes after ``version`` (maybe empty), or None when they are older than the feed holds."""
        with self._cond:
            if version < self.base:
                return None
            if version >= self.head:
                return []
            items = self._items
            # versions are increasing: bisect on the deque by index
            lo, hi = 0, len(items)
            while lo < hi:
                mid = (lo + hi) // 2
                if items[mid].version <= version:
                    lo = mid + 1
                else:
                    hi = mid
            return [items[i] for i in range(lo, len(items))]

    def wait_beyond(self, version: int, timeout: float) -> bool:
        """Block until a change after ``version`` exists (True) or ``timeout`` passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.head > version, timeout)

    def add_listener(self, wake: Callable[[], None]) -> None:
        with self._cond:
            self._listeners.add(wake)

    def remove_listener(self, wake: Callable[[], None]) -> None:
        with self._cond:
            self._listeners.discard(wake)
