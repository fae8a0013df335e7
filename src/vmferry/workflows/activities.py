"""Temporal activities: each a few lines that call one function of the replication library.

The library is passed in (:class:`ReplicationLibrary`): production workers use
:func:`default_library` (:class:`vmferry.workflows.library.StoreLibrary`), tests may give another
implementation of the same contract. Every activity is idempotent because the library functions are:
``begin_point`` on the first attempt of a run abandons a draft a dead run left (``fresh``), on a retry
reuses the draft this run opened; ``sync_disk`` called again with the last heartbeat's byte count
copies at most the remainder plus one chunk; ``seal_point`` of a sealed draft returns the point;
``abandon_point`` of a removed draft does nothing; ``protect`` of an application an earlier attempt
protected returns it.

``sync_disk`` heartbeats the number of bytes of the disk's change set done so far; when Temporal
retries it (the worker died, the heartbeat stopped), the new attempt reads the last heartbeat's
value and resumes there.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from temporalio import activity

from vmferry.progress import Reporter
from vmferry.replication.model import DiskRef, DiskSyncResult, PointDraft, RecoveryPoint
from vmferry.workflows.library import ProtectRequest, ProtectResult


class ReplicationLibrary(Protocol):
    """The four steps of one sync of one application (the contract of issue 12)."""

    def begin_point(self, app: str, fresh: bool = True) -> PointDraft: ...

    def sync_disk(self, draft: PointDraft, ref: DiskRef, *, resume_at: int = 0,
                  heartbeat: Callable[[int], None] | None = None) -> DiskSyncResult: ...

    def seal_point(self, draft: PointDraft) -> RecoveryPoint: ...

    def abandon_point(self, draft: PointDraft) -> None: ...

    def protect(self, request: ProtectRequest, reporter=None) -> ProtectResult:
        """Make the application a protection group with its first point (only the real library)."""


@dataclass(frozen=True)
class SyncDiskInput:
    draft: PointDraft
    disk: DiskRef
    max_rate: int | None = None   # bytes/s; None: the library's own setting (the group's limit)


async def run_is_open(client, owner: str) -> bool:
    """Whether the owner ``workflow:<id>/<run id>`` is a workflow run still running (another kind of
    owner cannot be asked here: taken as running). An unknown run is not running."""
    kind, _, rest = owner.partition(":")
    wid, _, rid = rest.rpartition("/")
    if kind != "workflow" or not wid:
        return True
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    try:
        desc = await client.get_workflow_handle(wid, run_id=rid or None).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return desc.status == WorkflowExecutionStatus.RUNNING


def owner_alive(client, loop: asyncio.AbstractEventLoop) -> Callable[[str], bool]:
    """``alive(owner)`` for a sync lease, callable from an activity's thread: a workflow owner is asked of
    Temporal (through ``client`` on the worker's ``loop``), a process owner of this host is asked of the
    kernel (:func:`vmferry.replication.synclease.process_alive`); anything else is taken as running."""
    from vmferry.replication.synclease import process_alive

    def alive(owner: str) -> bool:
        if owner.startswith("workflow:"):
            return asyncio.run_coroutine_threadsafe(run_is_open(client, owner), loop).result(60)
        return process_alive(owner)

    return alive


def resume_offset(details: object) -> int:
    """The byte count of the last heartbeat of a previous attempt (0 when there is none)."""
    if isinstance(details, (list, tuple)) and details:
        first = details[0]
        if isinstance(first, int) and not isinstance(first, bool) and first >= 0:
            return first
    return 0


class ReplicationActivities:
    """The activities of one site's worker, over ``library``."""

    def __init__(self, library: ReplicationLibrary) -> None:
        self.library = library

    @activity.defn(name="begin_point")
    async def begin_point(self, app: str) -> PointDraft:
        """A library that ``owns_points`` is told which run asks (``workflow:<id>/<run id>``) and can ask
        Temporal whether the run holding an open draft still runs: a second sync of the application is
        refused while the first runs, and never discards its point."""
        info = activity.info()
        fresh = info.attempt == 1
        if not getattr(self.library, "owns_points", False):
            return await asyncio.to_thread(self.library.begin_point, app, fresh)
        alive = owner_alive(activity.client(), asyncio.get_running_loop())
        return await asyncio.to_thread(self.library.begin_point, app, fresh,
                                       owner=f"workflow:{info.workflow_id}/{info.workflow_run_id}", alive=alive)

    @activity.defn(name="sync_disk")
    def sync_disk(self, request: SyncDiskInput) -> DiskSyncResult:
        resume_at = resume_offset(activity.info().heartbeat_details)
        if resume_at:
            activity.heartbeat(resume_at)  # the resumed attempt starts from what is already known done
        limit = {} if request.max_rate is None else {"max_rate": request.max_rate}
        return self.library.sync_disk(request.draft, request.disk, resume_at=resume_at,
                                      heartbeat=activity.heartbeat, **limit)

    @activity.defn(name="seal_point")
    def seal_point(self, draft: PointDraft) -> RecoveryPoint:
        return self.library.seal_point(draft)

    @activity.defn(name="abandon_point")
    def abandon_point(self, draft: PointDraft) -> None:
        self.library.abandon_point(draft)

    @activity.defn(name="protect")
    def protect(self, request: ProtectRequest) -> ProtectResult:
        with LivenessBeat() as beat:
            return self.library.protect(request, reporter=Reporter("json", beat))

    def site_activities(self) -> list:
        return [self.begin_point, self.seal_point, self.abandon_point, self.protect]

    def copy_activities(self) -> list:
        return [self.sync_disk]


class LivenessBeat:
    """While a long library call runs: a heartbeat every few seconds (so a dead worker is noticed by
    the heartbeat timeout), carrying the latest progress event the call's reporter wrote here."""

    def __init__(self, every: float = 2.0) -> None:
        self.every = every
        self.latest: dict = {}
        self._stop = threading.Event()
        context = contextvars.copy_context()  # the activity's context: heartbeat() works in the thread
        self._thread = threading.Thread(target=context.run, args=(self._run,), daemon=True,
                                        name="vmferry-liveness")

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                try:
                    self.latest = json.loads(line)
                except ValueError:
                    continue
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            activity.heartbeat(self.latest)

    def __enter__(self) -> LivenessBeat:
        activity.heartbeat(self.latest)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def default_library(state_dir: str | os.PathLike) -> ReplicationLibrary:
    """The replication library of vmferry over the state directory ``state_dir``."""
    from vmferry.workflows.library import StoreLibrary

    return StoreLibrary(state_dir)
