"""One sync of an application at a time: the lease of the open point.

A point is begun, copied and sealed by separate steps (separate activities, maybe on separate hosts),
so no process can hold a lock from ``begin_point`` to ``seal_point``. Instead the state directory holds
the lease of the application's open draft, ``groups/<app>.sync``: who took it (``owner``: a workflow
run ``workflow:<id>/<run id>``, or a process ``process:<host>:<pid>``), the point and when. It is
written with the draft (under the record's lock) and removed when the draft is sealed or abandoned.

A sync that finds another owner's draft open is refused with :class:`SyncRunning` while that owner is
alive (asked through ``alive(owner)``; without a way to ask, it is taken as alive: a running sync's point
is never discarded by a guess). Only a dead owner's draft is abandoned and the new point begun. A
draft without a lease (taken by code that names no owner) keeps the old rule: a fresh begin abandons it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable

from vmferry.errors import ReplicationError
from vmferry.replication.model import PointDraft
from vmferry.replication.store import Store

Alive = Callable[[str], bool]


class SyncRunning(ReplicationError):
    """Another sync of the application holds its open point."""


def lease_path(store: Store, app: str) -> str:
    return store._path(app, ".sync")


def read(store: Store, app: str) -> dict | None:
    try:
        with open(lease_path(store, app), encoding="utf-8") as fh:
            lease = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None   # a torn lease names nobody: the draft is treated as unowned
    return lease if isinstance(lease, dict) else None


def write(store: Store, draft: PointDraft, owner: str, since: str) -> None:
    path = lease_path(store, draft.app)
    temp = path + ".tmp"
    with open(temp, "w", encoding="utf-8") as fh:
        json.dump({"owner": owner, "point_id": draft.point_id, "since": since}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


def release(store: Store, app: str, point_id: str) -> None:
    """Drop the lease if it is the one of ``point_id`` (called under the record's lock)."""
    lease = read(store, app)
    if lease is not None and lease.get("point_id") == point_id:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lease_path(store, app))


def holder(store: Store, draft: PointDraft, owner: str, alive: Alive | None) -> dict | None:
    """The lease of ``draft`` when another owner holds it and is (or may be) alive, else None."""
    lease = read(store, draft.app)
    if lease is None or lease.get("point_id") != draft.point_id:
        return None
    other = str(lease.get("owner", ""))
    if not other or other == owner:
        return None
    if alive is None:
        return lease
    try:
        return lease if alive(other) else None
    except Exception:   # cannot tell: never discard what may be a running sync
        return lease


def refusal(app: str, lease: dict) -> SyncRunning:
    return SyncRunning(f"a sync of {app!r} is already running ({lease.get('owner')}, point {lease.get('point_id')} "
                       f"begun {lease.get('since')}); this sync is refused, start it again when that one has ended")


def process_owner() -> str:
    return f"process:{socket.gethostname()}:{os.getpid()}"


def process_alive(owner: str) -> bool:
    """Whether a ``process:<host>:<pid>`` owner still runs (an owner on another host, or of another
    kind, cannot be asked here: taken as alive)."""
    kind, _, rest = owner.partition(":")
    host, _, pid = rest.rpartition(":")
    if kind != "process" or host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
