"""The client side of runs: start a workflow, follow its progress, list runs.

Progress of a run comes from two places: the workflow's ``progress`` query (which disks are done, with
what they moved) and the run's pending activities (the last heartbeat of each disk still copying,
its attempt number). :func:`follow` turns both into steps of a :class:`vmferry.progress.Reporter`:
a bar per disk on a terminal, JSON events with ``--json``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from vmferry.errors import WorkflowError
from vmferry.replication.model import RecoveryPoint
from vmferry.workflows.endpoint import CONTROL_QUEUE, DEFAULT_NAMESPACE, connect
from vmferry.workflows.library import ProtectRequest, ProtectResult
from vmferry.workflows.protection import RunProgress, SyncRequest
from vmferry.workflows.run_summary import RunSummary, failure_text, heading

WORKFLOW_TYPES = ("SyncWorkflow", "ProtectWorkflow", "TestRecovery", "Failover", "BurstWatchWorkflow")
RESULT_TYPES = {"SyncWorkflow": RecoveryPoint, "ProtectWorkflow": ProtectResult, "TestRecovery": dict, "Failover": dict,
                "BurstWatchWorkflow": list}


def sync_workflow_id(app: str) -> str:
    """The id of a sync started by hand; a second start while it runs follows the running one."""
    return f"vmferry-sync-{app}-now"


async def start_sync(client, request: SyncRequest):
    """Start (or join, when one is running) a sync of ``request.app``; returns the workflow handle."""
    from temporalio.common import WorkflowIDConflictPolicy

    return await client.start_workflow("SyncWorkflow", request, id=sync_workflow_id(request.app),
                                       task_queue=CONTROL_QUEUE, result_type=RecoveryPoint,
                                       id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)


@dataclass(frozen=True)
class CopyState:
    """A disk copy as its run sees it now."""

    key: str
    done: int
    attempt: int
    finished: bool
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or f"sync {self.key}"


async def snapshot(handle, data_converter) -> tuple[RunProgress | None, list[CopyState]]:
    """The run's progress query (None when no worker answers it) and its disk copies now."""
    progress = None
    try:
        progress = await handle.query("progress", result_type=RunProgress, rpc_timeout=timedelta(seconds=2))
    except Exception:  # noqa: BLE001 - no workflow worker running, or the run has closed: heartbeats still tell
        progress = None
    description = await handle.describe()
    copies: dict[str, CopyState] = {}
    if progress is not None:
        for disk in progress.disks:
            if disk.done:
                copies[disk.key] = CopyState(disk.key, disk.bytes_written, 0, True)
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name == "protect" and pending.heartbeat_details.payloads:
            event = (await data_converter.decode(pending.heartbeat_details.payloads))[0]
            if isinstance(event, dict) and isinstance(event.get("step"), str) and event["step"]:
                key = f"protect:{event['step']}"
                copies[key] = CopyState(key, int(event.get("done") or 0), pending.attempt, False, event["step"])
            continue
        if pending.activity_type.name != "sync_disk" or not pending.activity_id.startswith("sync_disk:"):
            continue
        key = pending.activity_id.split(":", 1)[1]
        done = 0
        if pending.heartbeat_details.payloads:
            values = await data_converter.decode(pending.heartbeat_details.payloads)
            if values and isinstance(values[0], int):
                done = values[0]
        copies.setdefault(key, CopyState(key, done, pending.attempt, False))
    return progress, sorted(copies.values(), key=lambda c: c.key)


async def follow(handle, reporter, data_converter, poll: float = 0.5):
    """Report the run's progress until it ends; its result, or WorkflowError when it failed."""
    from temporalio.client import WorkflowFailureError

    result = asyncio.ensure_future(handle.result())
    steps: dict[str, object] = {}
    ended: set[str] = set()
    try:
        while not result.done():
            try:
                _, copies = await snapshot(handle, data_converter)
            except Exception:  # noqa: BLE001 - a transient RPC failure only delays the display
                copies = []
            for copy in copies:
                step = steps.get(copy.key)
                if step is None:
                    step = steps[copy.key] = reporter.step(copy.title)
                if copy.done > step.done:
                    step.advance(copy.done - step.done)
                if copy.finished and copy.key not in ended:
                    step.finish()
                    ended.add(copy.key)
            await asyncio.wait([result], timeout=poll)
        point = result.result()
    except WorkflowFailureError as exc:
        raise WorkflowError(f"run {handle.id} failed: {failure_text(exc)}") from exc
    finally:
        if not result.done():
            result.cancel()
    for disk in getattr(point, "disks", ()):  # a recovery point says what each disk's copy wrote
        key = disk.ref.key
        step = steps.get(key) or steps.setdefault(key, reporter.step(f"sync {key}"))
        if key not in ended and disk.bytes_written > step.done:
            step.advance(disk.bytes_written - step.done)
    for key, step in steps.items():
        if key not in ended:
            step.finish()
    return point


def sync_now(address: str, request: SyncRequest, reporter, namespace: str = DEFAULT_NAMESPACE) -> RecoveryPoint:
    """Start (or join) a sync of ``request.app`` on the Temporal service at ``address`` and follow it to
    its end with ``reporter``: what ``vmferry sync`` does when a Temporal service is configured."""

    async def go() -> RecoveryPoint:
        client = await connect(address, namespace)
        handle = await start_sync(client, request)
        return await follow(handle, reporter, client.data_converter)

    return asyncio.run(go())


def follow_run(address: str, workflow_id: str, reporter, namespace: str = DEFAULT_NAMESPACE):
    """Follow the run ``workflow_id`` (its latest run) to its end; its result."""

    async def go():
        client = await connect(address, namespace)
        try:
            description = await client.get_workflow_handle(workflow_id).describe()
        except Exception as exc:  # noqa: BLE001 - RPCError NOT_FOUND and friends
            raise WorkflowError(f"no run {workflow_id!r} on {address}: {exc}") from exc
        handle = client.get_workflow_handle(workflow_id, result_type=RESULT_TYPES.get(description.workflow_type))
        return await follow(handle, reporter, client.data_converter)

    return asyncio.run(go())


def runs_now(address: str, namespace: str = DEFAULT_NAMESPACE, limit: int = 50,
             running_only: bool = False) -> list[RunSummary]:
    async def go() -> list[RunSummary]:
        return await list_runs(await connect(address, namespace), limit, running_only)

    return asyncio.run(go())


async def list_runs(client, limit: int = 50, running_only: bool = False) -> list[RunSummary]:
    """vmferry's runs, newest first."""
    types = ",".join(f"'{t}'" for t in WORKFLOW_TYPES)
    query = f"WorkflowType IN ({types})"
    if running_only:
        query += " AND ExecutionStatus = 'Running'"
    runs: list[RunSummary] = []
    async for item in client.list_workflows(query, limit=limit):
        runs.append(RunSummary(**heading(item)))
    return runs


def sync_app_durably(address: str, app: str, reporter, namespace: str = DEFAULT_NAMESPACE,
                     state_dir: str | None = None, max_rate: int | None = None) -> RecoveryPoint:
    """``vmferry sync APP`` as a durable run: the sites come from the application's protection group;
    ``max_rate`` (bytes/s) limits this run's disk copies instead of the group's own limit."""
    from vmferry.replication.store import Store

    group = Store(state_dir).load(app)
    request = SyncRequest(app, group.source_site, group.target_site, max_rate=max_rate)
    return sync_now(address, request, reporter, namespace)


def protect_durably(address: str, request: ProtectRequest, reporter,
                    namespace: str = DEFAULT_NAMESPACE) -> ProtectResult:
    """``vmferry protect`` as a durable run (first copy at the target site, then the application's
    schedule), followed to its end."""
    from temporalio.common import WorkflowIDConflictPolicy

    from vmferry.plans.manifest import load_app
    from vmferry.workflows.protection import ProtectRun

    app = load_app(request.manifest).name  # a bad manifest is refused here, before any run starts

    async def go() -> ProtectResult:
        client = await connect(address, namespace)
        handle = await client.start_workflow("ProtectWorkflow", ProtectRun(request), id=f"vmferry-protect-{app}",
                                             task_queue=CONTROL_QUEUE, result_type=ProtectResult,
                                             id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        return await follow(handle, reporter, client.data_converter)

    return asyncio.run(go())


def unschedule(address: str, app: str, namespace: str = DEFAULT_NAMESPACE) -> bool:
    """Remove the application's sync schedule (``vmferry unprotect``); False when it had none."""
    from vmferry.workflows.schedules import remove_schedule

    async def go() -> bool:
        return await remove_schedule(await connect(address, namespace), app)

    return asyncio.run(go())


def follow_direction(address: str, group, namespace: str = DEFAULT_NAMESPACE) -> dict | None:
    """After ``--reprotect``: the application's schedule now syncs ``group``'s direction (from the site it
    runs at) within its RPO, resumed; its state, or None when it has no schedule."""
    from vmferry.workflows.protection import ScheduleRequest
    from vmferry.workflows.schedules import redirect_schedule, schedule_state

    async def go() -> dict | None:
        client = await connect(address, namespace)
        request = ScheduleRequest(group.app, group.source_site, group.target_site, group.rpo_seconds)
        if not await redirect_schedule(client, request):
            return None
        return await schedule_state(client, group.app)

    return asyncio.run(go())


def schedule_of(address: str, app: str, namespace: str = DEFAULT_NAMESPACE) -> dict | None:
    """The application's schedule (:func:`vmferry.workflows.schedules.schedule_state`)."""
    from vmferry.workflows.schedules import schedule_state

    async def go() -> dict | None:
        return await schedule_state(await connect(address, namespace), app)

    return asyncio.run(go())
