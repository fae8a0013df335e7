"""The workflows of protection: they only order activities (no I/O, no clock, no randomness here).

A sync of one application (:class:`SyncWorkflow`)::

    begin_point        at the source site       one moment for every VM (quiesce, backup start)
    sync_disk × N      at the source site       in parallel, on the host holding the running disk (its
                                                backup export is local there), each bounded by the
                                                host's copy limit; heartbeats carry bytes done, a
                                                retry resumes there
    seal_point         at the target site       digests of the replica's layers recorded, the point
                                                becomes visible (older points merged by retention)
    abandon_point      at the target site       instead of sealing when a disk failed for good or the
                                                run was cancelled: nothing the draft wrote remains

Protecting an application (:class:`ProtectWorkflow`) is the ``protect`` activity at the target site
(converted, repaired first copy, replica definition, first point) followed by the application's
schedule (:mod:`vmferry.workflows.schedules`).

Where each activity runs is the table :data:`ROUTES` (``source`` or ``target`` site of the request).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from vmferry.replication.model import DiskRef, DiskSyncResult, PointDraft, RecoveryPoint
    from vmferry.workflows.activities import SyncDiskInput
    from vmferry.workflows.endpoint import CONTROL_QUEUE, copy_queue, site_queue
    from vmferry.workflows.library import ProtectRequest, ProtectResult

# activity -> (site of the request it runs at, queue kind). One row per activity.
ROUTES: dict[str, tuple[str, str]] = {
    "begin_point": ("source", "site"),
    "sync_disk": ("source", "copy"),
    "seal_point": ("target", "site"),
    "abandon_point": ("target", "site"),
    "protect": ("target", "site"),
}

# Errors that no retry can cure: bad input or a broken contract (class names, as Temporal carries them).
NON_RETRYABLE = ["ReplicationError", "PlanError", "UsageError", "UnsafeImage", "DamagedImage", "TypeError",
                 "ValueError", "KeyError",
                 "SyncRunning"]   # another sync of the application holds its open point: refused, not waited for


@dataclass(frozen=True)
class RunOptions:
    """Timeouts (seconds) and retries of a run's activities. ``heartbeat`` bounds how long a dead
    worker holds a disk copy before another attempt starts; ``step`` bounds one attempt of a short
    step; ``disk`` bounds one attempt of a disk copy."""

    heartbeat: float = 30.0
    step: float = 600.0
    disk: float = 24 * 3600.0
    retry_first: float = 1.0
    retry_max: float = 60.0
    attempts: int = 0  # 0: until it works (the run continues when a worker is back)

    def retry(self) -> RetryPolicy:
        return RetryPolicy(initial_interval=timedelta(seconds=self.retry_first),
                           maximum_interval=timedelta(seconds=self.retry_max),
                           maximum_attempts=self.attempts, non_retryable_error_types=NON_RETRYABLE)


@dataclass(frozen=True)
class SyncRequest:
    """Take one recovery point of ``app``, protected from ``source_site`` to ``target_site``."""

    app: str
    source_site: str
    target_site: str
    options: RunOptions = field(default_factory=RunOptions)
    max_rate: int | None = None   # bandwidth limit of each disk copy (bytes/s) for this run; None: the group's


@dataclass(frozen=True)
class ScheduleRequest:
    """Keep ``app`` synchronised from ``source_site`` to ``target_site`` within ``rpo_seconds``."""

    app: str
    source_site: str
    target_site: str
    rpo_seconds: float
    options: RunOptions = field(default_factory=RunOptions)


@dataclass(frozen=True)
class DiskProgress:
    key: str
    size: int
    done: bool
    bytes_written: int = 0
    bytes_read: int = 0


@dataclass(frozen=True)
class RunProgress:
    """What a run has done so far (the ``progress`` query); bytes of the disks still copying come
    from their activities' heartbeats."""

    phase: str
    app: str
    point_id: str = ""
    disks: tuple[DiskProgress, ...] = ()


def queue_for(activity_name: str, request) -> str:
    """The task queue of ``activity_name`` for a request naming ``source_site`` and ``target_site``."""
    side, kind = ROUTES[activity_name]
    site = request.source_site if side == "source" else request.target_site
    return copy_queue(site) if kind == "copy" else site_queue(site)


def sync_activity_id(ref: DiskRef) -> str:
    """The activity id of a disk's copy: the client maps pending heartbeats to disks with it."""
    return f"sync_disk:{ref.key}"


class PointRun:
    """The steps of one recovery point, shared by :class:`SyncWorkflow` and the protection workflow."""

    def __init__(self) -> None:
        self.phase = "starting"
        self.app = ""
        self.draft: PointDraft | None = None
        self.results: dict[str, DiskSyncResult] = {}

    def progress(self) -> RunProgress:
        disks = []
        for ref in self.draft.disks if self.draft else ():
            result = self.results.get(ref.key)
            disks.append(DiskProgress(ref.key, ref.size, result is not None,
                                      result.bytes_written if result else 0, result.bytes_read if result else 0))
        return RunProgress(self.phase, self.app, self.draft.point_id if self.draft else "", tuple(disks))

    async def take(self, request: SyncRequest) -> RecoveryPoint:
        opts = request.options
        self.app = request.app
        self.phase = "begin"
        self.draft = await workflow.execute_activity(
            "begin_point", request.app, result_type=PointDraft, task_queue=queue_for("begin_point", request),
            start_to_close_timeout=timedelta(seconds=opts.step), retry_policy=opts.retry())
        draft = self.draft
        self.phase = "copy"
        tasks = [asyncio.ensure_future(self._copy(request, draft, ref)) for ref in draft.disks]
        try:
            await asyncio.gather(*tasks)
            self.phase = "seal"
            point = await workflow.execute_activity(
                "seal_point", draft, result_type=RecoveryPoint, task_queue=queue_for("seal_point", request),
                start_to_close_timeout=timedelta(seconds=opts.step), retry_policy=opts.retry())
        except (ActivityError, asyncio.CancelledError):
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # no copy still writes into the draft
            self.phase = "abandon"
            await workflow.execute_activity(
                "abandon_point", draft, task_queue=queue_for("abandon_point", request),
                start_to_close_timeout=timedelta(seconds=opts.step), retry_policy=opts.retry())
            self.phase = "abandoned"
            raise
        self.phase = "sealed"
        return point

    async def _copy(self, request: SyncRequest, draft: PointDraft, ref: DiskRef) -> DiskSyncResult:
        opts = request.options
        result = await workflow.execute_activity(
            "sync_disk", SyncDiskInput(draft, ref, request.max_rate), result_type=DiskSyncResult,
            task_queue=queue_for("sync_disk", request), activity_id=sync_activity_id(ref),
            start_to_close_timeout=timedelta(seconds=opts.disk), heartbeat_timeout=timedelta(seconds=opts.heartbeat),
            retry_policy=opts.retry(), cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
        self.results[ref.key] = result
        return result


@workflow.defn(name="SyncWorkflow")
class SyncWorkflow:
    """One recovery point of one application."""

    def __init__(self) -> None:
        self.run_state = PointRun()

    @workflow.run
    async def run(self, request: SyncRequest) -> RecoveryPoint:
        return await self.run_state.take(request)

    @workflow.query(name="progress")
    def progress(self) -> RunProgress:
        return self.run_state.progress()


@dataclass(frozen=True)
class ProtectRun:
    """Protect an application, then keep it synchronised by its schedule."""

    protect: ProtectRequest
    options: RunOptions = field(default_factory=RunOptions)
    schedule: bool = True


@workflow.defn(name="ProtectWorkflow")
class ProtectWorkflow:
    """The first copy of an application at the target site, then its sync schedule."""

    def __init__(self) -> None:
        self.phase = "starting"

    @workflow.run
    async def run(self, request: ProtectRun) -> ProtectResult:
        opts = request.options
        self.phase = "protect"
        result = await workflow.execute_activity(
            "protect", request.protect, result_type=ProtectResult, task_queue=queue_for("protect", request.protect),
            start_to_close_timeout=timedelta(seconds=opts.disk), heartbeat_timeout=timedelta(seconds=opts.heartbeat),
            retry_policy=opts.retry())
        if request.schedule:
            self.phase = "schedule"
            await workflow.execute_activity(
                "ensure_schedule", ScheduleRequest(result.app, result.source_site, result.target_site,
                                                   float(result.rpo_seconds), opts),
                task_queue=CONTROL_QUEUE, start_to_close_timeout=timedelta(seconds=opts.step),
                retry_policy=opts.retry())
        self.phase = "protected"
        return result

    @workflow.query(name="progress")
    def progress(self) -> RunProgress:
        return RunProgress(self.phase, "")
