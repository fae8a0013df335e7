"""The failover as a Temporal workflow: thin code that runs the steps of
:mod:`vmferry.recovery.failover_steps` as activities, each at the site where it must run.

* ``failover_begin`` (target site) — the failover record; ``pause_schedule`` (control queue) — the
  application's sync schedule is paused, its note naming this run (:mod:`vmferry.workflows.schedules`);
  ``failover_groups`` — how many boot groups;
* planned only: ``failover_stop_source`` then ``failover_final_sync`` (source site: they talk to the
  source's libvirt and read the source disks);
* ``failover_launch`` per boot group (target site; heartbeats while the group proves itself);
* ``failover_surroundings`` then ``failover_finish`` (target site) — the report as a JSON document.

Every step is recorded in the failover record before it reports success, and each activity first reads
the record: a retried or replayed activity (the worker killed with ``kill -9`` and started again) finds
its step done and returns it, a VM the run already started is adopted, never started twice, and the
surroundings' journal skips what was applied. Errors a retry cannot mend (``RecoveryError`` & co.) are
not retried; the workflow then still asks for the report (``failover_finish``) and fails with its error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from vmferry.recovery.failover_steps import FailoverRequest
    from vmferry.workflows.beat import StepBeat
    from vmferry.workflows.endpoint import CONTROL_QUEUE, site_queue
    from vmferry.workflows.recovery import NON_RETRYABLE


@dataclass(frozen=True)
class FailoverRun:
    """What the workflow runs: the request, and the activities' limits."""

    request: FailoverRequest
    source_site: str
    step_timeout: float = 3600.0      # one attempt of one step
    heartbeat: float = 15.0           # the activities beat every 5 s
    attempts: int = 0                 # 0: retry until the step succeeds or fails for good


class FailoverActivities:
    """``client`` and ``loop`` (the worker's) let the final sync ask Temporal whether the workflow run
    holding a running sync's lease still runs; without them such an owner is taken as running."""

    def __init__(self, state_dir: str | os.PathLike, client=None, loop=None) -> None:
        self.state = os.fspath(state_dir)
        self.client, self.loop = client, loop

    @activity.defn(name="failover_begin")
    def begin(self, request: FailoverRequest) -> str:
        from vmferry.recovery.failover_steps import begin

        return begin(self.state, request)["run"]

    @activity.defn(name="failover_groups")
    def groups(self, app: str) -> int:
        from vmferry.recovery.failover_steps import group_count

        return group_count(self.state, app)

    @activity.defn(name="failover_stop_source")
    def stop_source(self, app: str) -> dict:
        from vmferry.recovery.failover_steps import stop_source_step

        with StepBeat(5.0) as beat:
            return stop_source_step(self.state, app, say=beat.say)

    @activity.defn(name="failover_final_sync")
    def final_sync(self, app: str) -> dict:
        from vmferry.recovery.failover_steps import final_sync_step
        from vmferry.workflows.activities import owner_alive

        alive = owner_alive(self.client, self.loop) if self.client is not None and self.loop is not None else None
        with StepBeat(5.0) as beat:
            return final_sync_step(self.state, app, say=beat.say, alive=alive)

    @activity.defn(name="failover_launch")
    def launch(self, app: str, index: int) -> dict:
        from vmferry.recovery.failover_steps import launch_group

        with StepBeat(5.0) as beat:
            return launch_group(self.state, app, index, say=beat.say)

    @activity.defn(name="failover_surroundings")
    def surroundings(self, app: str) -> dict:
        from vmferry.recovery.failover_steps import surroundings_step

        with StepBeat(5.0) as beat:
            return surroundings_step(self.state, app, say=beat.say)

    @activity.defn(name="failover_finish")
    def finish(self, app: str) -> dict:
        from vmferry.recovery.failover_steps import finish

        return finish(self.state, app)

    def site_activities(self) -> list:
        return [self.begin, self.groups, self.stop_source, self.final_sync, self.launch, self.surroundings,
                self.finish]


@workflow.defn(name="Failover")
class FailoverWorkflow:
    def __init__(self) -> None:
        self._step = "starting"

    @workflow.query
    def progress(self) -> str:
        return self._step

    async def _do(self, run: FailoverRun, name: str, *args, site: str, result_type=dict):
        self._step = name if not args[1:] else f"{name} {args[1] + 1}"
        return await workflow.execute_activity(
            name, args=list(args), task_queue=site_queue(site), result_type=result_type,
            start_to_close_timeout=timedelta(seconds=run.step_timeout),
            heartbeat_timeout=timedelta(seconds=run.heartbeat),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
                                     maximum_attempts=run.attempts, non_retryable_error_types=NON_RETRYABLE))

    @workflow.run
    async def run(self, run: FailoverRun) -> dict:
        req, target = run.request, run.request.site
        app = req.app
        await self._do(run, "failover_begin", req, site=target, result_type=str)
        if workflow.patched("pause-sync-schedule"):      # runs begun before this step replay without it
            self._step = "pausing the sync schedule"
            try:
                await workflow.execute_activity(
                    "pause_schedule", args=[app, f"failover of {app} to {target} ({req.mode}), run "
                                                f"{workflow.info().workflow_id}/{workflow.info().run_id}"],
                    task_queue=CONTROL_QUEUE, result_type=bool, start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1),
                                             maximum_interval=timedelta(seconds=10), maximum_attempts=5))
            except ActivityError:
                # a failover is never held back by its schedule: the syncs it would start are refused anyway
                # once the application runs at the target (failover_record.refuse_sync)
                workflow.logger.warning("the sync schedule of %s could not be paused; the failover goes on", app)
        try:
            if req.mode == "planned":
                await self._do(run, "failover_stop_source", app, site=run.source_site)
                await self._do(run, "failover_final_sync", app, site=run.source_site)
            groups = await self._do(run, "failover_groups", app, site=target, result_type=int)
            for index in range(groups):
                await self._do(run, "failover_launch", app, index, site=target)
            await self._do(run, "failover_surroundings", app, site=target)
        except ActivityError as exc:
            report = await self._do(run, "failover_finish", app, site=target)
            raise ApplicationError(f"failover of {app} failed: {report.get('error') or exc.cause or exc}",
                                   report, type="RecoveryError", non_retryable=True) from exc
        self._step = "done"
        return await self._do(run, "failover_finish", app, site=target)


WORKFLOWS = [FailoverWorkflow]


def workflow_id(app: str) -> str:
    """One failover of an application at a time: a second start joins the running one."""
    return f"vmferry-failover-{app}"


async def start_failover(client, run: FailoverRun):
    from temporalio.common import WorkflowIDConflictPolicy

    return await client.start_workflow("Failover", run, id=workflow_id(run.request.app), task_queue=CONTROL_QUEUE,
                                       result_type=dict, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)


def failover_durably(address: str, run: FailoverRun) -> dict:
    """Start the failover workflow at ``address`` (or join the running one) and wait for its report."""
    import asyncio

    from temporalio.client import WorkflowFailureError

    from vmferry.errors import RecoveryError
    from vmferry.workflows.endpoint import connect

    async def go() -> dict:
        client = await connect(address)
        handle = await start_failover(client, run)
        try:
            return await handle.result()
        except WorkflowFailureError as exc:
            cause = exc.cause
            details = getattr(cause, "details", ()) or ()
            if details and isinstance(details[0], dict):
                return details[0]
            raise RecoveryError(f"the failover workflow failed: {cause or exc}") from exc

    return asyncio.run(go())
