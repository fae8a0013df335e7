"""The test recovery as a Temporal workflow: one activity at the target site, the workflow only waits.

:class:`TestRecoveryWorkflow` runs the activity ``recover_test`` on the target site's queue
(``vmferry.site.<S>``). The activity calls :meth:`RecoveryLibrary.test_recovery` — in production
:class:`StoreRecoveryLibrary`: the protection group from the state directory, the plan
(:func:`vmferry.recovery.spec.plan_from_group`), :func:`vmferry.recovery.test.run_test` — and heartbeats
while the run lives. A worker killed mid-run leaves a cleanup journal nobody holds; the retried attempt's
run cleans it first (:func:`vmferry.recovery.journal.cleanup_pending`), so nothing is left twice.
The result is the report as a JSON document (``RecoveryReport.to_dict()``).

Run control (:mod:`vmferry.recovery.control`): ``pause_before`` steps stop the run at a gate — the
activity signals ``reached(step)`` to its workflow and waits until the workflow's ``resume`` signal
released that step (it asks the workflow's ``gates`` query); ``hooks`` run on the site's host around
boot groups. Cancelling the workflow cancels the activity (learnt through its heartbeats), which stops
the run where it is, removes what it created, and only then lets the workflow end as cancelled.

Workers register :data:`WORKFLOWS` on the control queue and :meth:`RecoveryActivities.activities` on
each site queue (the workflows helper wires them into ``vmferry worker``/``serve``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from vmferry.recovery.control import Hook
    from vmferry.workflows.endpoint import site_queue

NON_RETRYABLE = ["RecoveryError", "ReplicationError", "PlanError", "UsageError", "TypeError", "ValueError",
                 "KeyError"]


@dataclass(frozen=True)
class TestRecoveryRequest:
    """Test-recover ``app`` at ``site`` from ``point_id`` (None: the newest)."""

    app: str
    site: str
    point_id: str | None = None
    timeout: float = 300.0            # per VM, start to proof
    run_timeout: float = 4 * 3600.0   # one attempt of the whole run
    heartbeat: float = 60.0
    attempts: int = 2
    pause_before: tuple[str, ...] = ()    # steps (group-N, a component, checks) to stop before until resumed
    hooks: tuple[Hook, ...] = ()


@dataclass
class GateState:
    """What the workflow knows of its gates: where the run waits now, which steps were released."""

    paused_at: str | None = None
    released: list[str] = field(default_factory=list)


class RecoveryLibrary(Protocol):
    def test_recovery(self, request: TestRecoveryRequest, say=None, control=None) -> dict: ...


class StoreRecoveryLibrary:
    """The real one: protection records and run journals in ``state_dir``."""

    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.state_dir = os.fspath(state_dir)

    def test_recovery(self, request: TestRecoveryRequest, say=None, control=None) -> dict:
        from vmferry.errors import RecoveryError
        from vmferry.plans.manifest import load_app
        from vmferry.recovery.spec import plan_from_group
        from vmferry.recovery.test import run_test
        from vmferry.replication.store import Store

        group = Store(self.state_dir).load(request.app)
        if group.target_site != request.site:
            raise RecoveryError(f"application {request.app!r} is protected to site {group.target_site!r}, "
                                f"not {request.site!r}")
        from vmferry.recovery.record import record_report

        plan = plan_from_group(load_app(group.manifest), group, point_id=request.point_id, timeout=request.timeout)
        report = run_test(plan, self.state_dir, say=say, control=control)
        record_report(report, store=Store(self.state_dir))
        return report.to_dict()


class RecoveryActivities:
    def __init__(self, library: RecoveryLibrary, *, gate_poll: float = 0.5) -> None:
        self.library = library
        self.gate_poll = gate_poll

    @activity.defn(name="recover_test")
    async def recover_test(self, request: TestRecoveryRequest) -> dict:
        """The run on a thread; this coroutine heartbeats, answers its gates, and passes a cancellation
        on to the run — then waits for the run's cleanup before the cancellation ends the activity."""
        from vmferry.recovery.control import Control, RecoveryCancelled

        loop = asyncio.get_running_loop()
        info = activity.info()
        handle = activity.client().get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)
        cancel = threading.Event()
        latest = ["starting"]

        async def wait_released(step: str) -> None:
            await handle.signal("reached", step)
            while not cancel.is_set():
                state = await handle.query("gates", result_type=GateState)
                if step in state.released:
                    return
                await asyncio.sleep(self.gate_poll)
            raise RecoveryCancelled("the run was cancelled while paused")

        def wait_gate(step: str) -> None:
            latest[0] = f"paused before {step}"
            asyncio.run_coroutine_threadsafe(wait_released(step), loop).result()

        control = Control(pause_before=tuple(request.pause_before), hooks=tuple(request.hooks), wait_gate=wait_gate,
                          cancelled=cancel.is_set)
        run = loop.run_in_executor(None, lambda: self.library.test_recovery(
            request, say=lambda msg: latest.__setitem__(0, msg), control=control))
        every = max(0.5, request.heartbeat / 4)
        activity.heartbeat("starting")
        sent, last = "starting", loop.time()
        try:
            while not run.done():
                await asyncio.wait([run], timeout=0.25)
                if latest[0] != sent or loop.time() - last >= every:   # a new step at once: followers see it
                    sent, last = latest[0], loop.time()
                    activity.heartbeat(sent)
            return run.result()
        except asyncio.CancelledError:
            cancel.set()
            await asyncio.shield(run) if not run.done() else None   # the run cleans up; then we end cancelled
            raise

    def activities(self) -> list:
        return [self.recover_test]


@workflow.defn(name="TestRecovery")
class TestRecoveryWorkflow:
    def __init__(self) -> None:
        self._gates = GateState()

    @workflow.run
    async def run(self, request: TestRecoveryRequest) -> dict:
        return await workflow.execute_activity(
            "recover_test", request, task_queue=site_queue(request.site),
            start_to_close_timeout=timedelta(seconds=request.run_timeout),
            heartbeat_timeout=timedelta(seconds=request.heartbeat),
            retry_policy=RetryPolicy(maximum_attempts=request.attempts, non_retryable_error_types=NON_RETRYABLE),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            result_type=dict)

    @workflow.signal
    def reached(self, step: str) -> None:
        """The run waits at the gate before ``step``."""
        if step not in self._gates.released:
            self._gates.paused_at = step

    @workflow.signal
    def resume(self, step: str = "") -> None:
        """Open the gate the run waits at (or the gate of ``step``, also before the run reaches it)."""
        step = step or self._gates.paused_at or ""
        if step and step not in self._gates.released:
            self._gates.released.append(step)
        if step and self._gates.paused_at == step:
            self._gates.paused_at = None

    @workflow.query
    def gates(self) -> GateState:
        return self._gates


WORKFLOWS = [TestRecoveryWorkflow]
RUN_CONTROLLED = ("TestRecovery",)      # workflow types with gates (the resume signal, the gates query)


def workflow_id(app: str, site: str) -> str:
    return f"vmferry-recover-test-{app}-{site}"
