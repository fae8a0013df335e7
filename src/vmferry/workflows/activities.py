"""Temporal activities: each a few lines that call one function of the replication library.

The library is passed in (:class:`ReplicationLibrary`): production workers use
:func:`default_library` (``vmferry.replication``), tests may give another implementation of the
same contract. Every activity is idempotent because the library functions are (docs/PROTECT contract):
``begin_point`` of an application whose previous attempt left a draft starts again cleanly,
``sync_disk`` called again with the last heartbeat's byte count copies at most the remainder plus one
chunk, ``seal_point`` of a sealed draft returns the point, ``abandon_point`` of a removed draft does
nothing.

``sync_disk`` heartbeats the number of bytes of the disk's change set done so far; when Temporal
retries it (the worker died, the heartbeat stopped), the new attempt reads the last heartbeat's
value and resumes there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from temporalio import activity

from vmferry.replication.model import DiskRef, DiskSyncResult, PointDraft, RecoveryPoint


class ReplicationLibrary(Protocol):
    """The four steps of one sync of one application (the contract of issue 12)."""

    def begin_point(self, app: str) -> PointDraft: ...

    def sync_disk(self, draft: PointDraft, ref: DiskRef, *, resume_at: int = 0,
                  heartbeat: Callable[[int], None] | None = None) -> DiskSyncResult: ...

    def seal_point(self, draft: PointDraft) -> RecoveryPoint: ...

    def abandon_point(self, draft: PointDraft) -> None: ...


@dataclass(frozen=True)
class SyncDiskInput:
    draft: PointDraft
    disk: DiskRef


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
    def begin_point(self, app: str) -> PointDraft:
        return self.library.begin_point(app)

    @activity.defn(name="sync_disk")
    def sync_disk(self, request: SyncDiskInput) -> DiskSyncResult:
        resume_at = resume_offset(activity.info().heartbeat_details)
        if resume_at:
            activity.heartbeat(resume_at)  # the resumed attempt starts from what is already known done
        return self.library.sync_disk(request.draft, request.disk, resume_at=resume_at,
                                      heartbeat=activity.heartbeat)

    @activity.defn(name="seal_point")
    def seal_point(self, draft: PointDraft) -> RecoveryPoint:
        return self.library.seal_point(draft)

    @activity.defn(name="abandon_point")
    def abandon_point(self, draft: PointDraft) -> None:
        self.library.abandon_point(draft)

    def site_activities(self) -> list:
        return [self.begin_point, self.seal_point, self.abandon_point]

    def copy_activities(self) -> list:
        return [self.sync_disk]


def default_library(state_dir: str | os.PathLike) -> ReplicationLibrary:
    """The replication library of vmferry over the state directory ``state_dir``."""
    import importlib

    from vmferry.errors import WorkflowError

    try:
        module = importlib.import_module("vmferry.workflows.library")
    except ImportError as exc:
        raise WorkflowError("this vmferry has no replication library for workers yet") from exc
    return module.StoreLibrary(state_dir)
