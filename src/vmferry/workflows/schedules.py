"""One Temporal Schedule per protected application: it starts a :class:`SyncWorkflow` often enough to
keep the newest recovery point younger than the application's RPO.

A sync starts every half RPO (at least every :data:`MIN_INTERVAL` seconds), so that one slow or failed
sync still leaves the RPO met by the next; runs of one application never overlap (a start due while a
sync still runs is skipped). The schedule's id is ``vmferry-sync-<app>``; pausing it (``temporal
schedule toggle --pause``) is how an operator lets it lapse.

The schedule follows the application's direction: a failover pauses it first (its note names the run:
the source it syncs from is being stopped, or is gone), and ``--reprotect`` points it the other way
(from the site the application now runs at) and resumes it; a failback and the reprotect after it do
the same back.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity

from vmferry.workflows.endpoint import CONTROL_QUEUE
from vmferry.workflows.protection import ScheduleRequest, SyncRequest

MIN_INTERVAL = 10.0


def schedule_id(app: str) -> str:
    return f"vmferry-sync-{app}"


def sync_interval(rpo_seconds: float) -> float:
    """How often a sync starts for an RPO of ``rpo_seconds``."""
    return max(rpo_seconds / 2, MIN_INTERVAL)


async def ensure_schedule(client, request: ScheduleRequest) -> str:
    """Create the application's schedule, or update it to ``request`` (idempotent). Returns its id."""
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleAlreadyRunningError,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
        ScheduleUpdate,
    )

    sync = SyncRequest(request.app, request.source_site, request.target_site, request.options)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow("SyncWorkflow", sync, id=schedule_id(request.app),
                                           task_queue=CONTROL_QUEUE),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=sync_interval(
            request.rpo_seconds)))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP))
    sid = schedule_id(request.app)
    try:
        await client.create_schedule(sid, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(sid).update(lambda _: ScheduleUpdate(schedule=schedule))
    return sid


async def remove_schedule(client, app: str) -> bool:
    """Delete the application's schedule; False when there was none (idempotent)."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.get_schedule_handle(schedule_id(app)).delete()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def redirect_schedule(client, request: ScheduleRequest) -> bool:
    """Point the application's existing schedule at ``request``'s direction and RPO and resume it (after a
    reprotect); False when the application has no schedule (it was protected without one, or unprotected):
    none is created then."""
    if await schedule_state(client, request.app) is None:
        return False
    await ensure_schedule(client, request)
    return True


async def pause_schedule(client, app: str, note: str) -> bool:
    """Pause the application's schedule with ``note`` (a failover: its syncs would read a source that is
    stopped or gone); False when it has none. Pausing a paused schedule changes nothing."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.get_schedule_handle(schedule_id(app)).pause(note=note)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def schedule_state(client, app: str) -> dict | None:
    """The application's schedule as the console and tests see it: the direction it syncs, its
    interval, whether it is paused and why; None when it has none."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        desc = await client.get_schedule_handle(schedule_id(app)).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    args = list(desc.schedule.action.args)
    if args and not isinstance(args[0], SyncRequest):      # described schedules carry raw payloads
        args = client.data_converter.payload_converter.from_payloads(args, [SyncRequest])
    source, target = (args[0].source_site, args[0].target_site) if args else (None, None)
    intervals = desc.schedule.spec.intervals
    return {"id": schedule_id(app), "source_site": source, "target_site": target,
            "every_seconds": intervals[0].every.total_seconds() if intervals else None,
            "paused": desc.schedule.state.paused, "note": desc.schedule.state.note or ""}


class ScheduleActivities:
    """Schedules as activities of the control worker (the protection workflow's last step)."""

    def __init__(self, client) -> None:
        self.client = client

    @activity.defn(name="ensure_schedule")
    async def ensure(self, request: ScheduleRequest) -> str:
        return await ensure_schedule(self.client, request)

    @activity.defn(name="remove_schedule")
    async def remove(self, app: str) -> bool:
        return await remove_schedule(self.client, app)

    @activity.defn(name="pause_schedule")
    async def pause(self, app: str, note: str) -> bool:
        return await pause_schedule(self.client, app, note)

    def activities(self) -> list:
        return [self.ensure, self.remove, self.pause]
