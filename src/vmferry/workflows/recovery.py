"""The test recovery as a Temporal workflow: one activity at the target site, the workflow only waits.

:class:`TestRecoveryWorkflow` runs the activity ``recover_test`` on the target site's queue
(``vmferry.site.<S>``). The activity calls :meth:`RecoveryLibrary.test_recovery` — in production
:class:`StoreRecoveryLibrary`: the protection group from the state directory, the plan
(:func:`vmferry.recovery.spec.plan_from_group`), :func:`vmferry.recovery.test.run_test` — and heartbeats
while the run lives. A worker killed mid-run leaves a cleanup journal nobody holds; the retried attempt's
run cleans it first (:func:`vmferry.recovery.journal.cleanup_pending`), so nothing is left twice.
The result is the report as a JSON document (``RecoveryReport.to_dict()``).

Workers register :data:`WORKFLOWS` on the control queue and :meth:`RecoveryActivities.activities` on
each site queue (the workflows helper wires them into ``vmferry worker``/``serve``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
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


class RecoveryLibrary(Protocol):
    def test_recovery(self, request: TestRecoveryRequest, say=None) -> dict: ...


class StoreRecoveryLibrary:
    """The real one: protection records and run journals in ``state_dir``."""

    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.state_dir = os.fspath(state_dir)

    def test_recovery(self, request: TestRecoveryRequest, say=None) -> dict:
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
        report = run_test(plan, self.state_dir, say=say)
        record_report(report, store=Store(self.state_dir))
        return report.to_dict()


class RecoveryActivities:
    def __init__(self, library: RecoveryLibrary) -> None:
        self.library = library

    @activity.defn(name="recover_test")
    def recover_test(self, request: TestRecoveryRequest) -> dict:
        with _Beat(max(1.0, request.heartbeat / 4)) as beat:
            return self.library.test_recovery(request, say=beat.say)

    def activities(self) -> list:
        return [self.recover_test]


class _Beat:
    """Heartbeats every ``every`` seconds while the run lives, carrying its latest message. The thread
    runs in a copy of the activity's context: Temporal's activity context is a context variable, which a
    plain new thread does not see."""

    def __init__(self, every: float) -> None:
        import contextvars
        import threading

        self.every = every
        self.latest = ""
        self._stop = threading.Event()
        self._changed = threading.Event()
        ctx = contextvars.copy_context()
        self._thread = threading.Thread(target=ctx.run, args=(self._run,), daemon=True, name="vmferry-recovery-beat")

    def say(self, msg: str) -> None:
        self.latest = msg
        self._changed.set()           # a new step is heartbeaten at once (followers see it live)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._changed.wait(self.every)
            self._changed.clear()
            if not self._stop.is_set():
                activity.heartbeat(self.latest)

    def __enter__(self) -> _Beat:
        activity.heartbeat("starting")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._changed.set()
        self._thread.join()


@workflow.defn(name="TestRecovery")
class TestRecoveryWorkflow:
    @workflow.run
    async def run(self, request: TestRecoveryRequest) -> dict:
        return await workflow.execute_activity(
            "recover_test", request, task_queue=site_queue(request.site),
            start_to_close_timeout=timedelta(seconds=request.run_timeout),
            heartbeat_timeout=timedelta(seconds=request.heartbeat),
            retry_policy=RetryPolicy(maximum_attempts=request.attempts, non_retryable_error_types=NON_RETRYABLE),
            result_type=dict)


WORKFLOWS = [TestRecoveryWorkflow]


def workflow_id(app: str, site: str) -> str:
    return f"vmferry-recover-test-{app}-{site}"
