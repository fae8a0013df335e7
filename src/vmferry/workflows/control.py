"""The client side of run control: start a durable test recovery, show a run, resume it at its gate,
cancel it.

A test recovery's workflow (:class:`vmferry.workflows.recovery.TestRecoveryWorkflow`) answers the
``gates`` query (where it waits, which gates were opened) and takes the ``resume`` signal. A cancelled
run ends only after its activity removed what the run created.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from vmferry.errors import WorkflowError
from vmferry.workflows.endpoint import CONTROL_QUEUE, DEFAULT_NAMESPACE, connect
from vmferry.workflows.run_summary import RunSummary, failure_text, heading


@dataclass(frozen=True)
class RunInfo(RunSummary):
    """One run as ``vmferry runs show`` gives it."""

    paused_at: str | None = None           # the gate the run waits at (run-controlled runs)
    released: tuple[str, ...] = ()
    activity: str | None = None            # the pending activity and its last heartbeat
    latest: str = ""
    attempt: int = 0
    result: dict | None = None              # a completed run's result document
    failure: str = ""


def _run(coro):
    return asyncio.run(coro)


async def _handle(client, workflow_id: str):
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except Exception as exc:  # noqa: BLE001 - RPCError NOT_FOUND and friends
        raise WorkflowError(f"no run {workflow_id!r}: {exc}") from exc
    return handle, description


async def _info(client, workflow_id: str) -> RunInfo:
    from vmferry.workflows.recovery import RUN_CONTROLLED, GateState

    handle, d = await _handle(client, workflow_id)
    status = d.status.name if d.status else "UNKNOWN"
    paused_at, released = None, ()
    if d.workflow_type in RUN_CONTROLLED and status == "RUNNING":
        try:
            gates = await handle.query("gates", result_type=GateState, rpc_timeout=timedelta(seconds=3))
            paused_at, released = gates.paused_at, tuple(gates.released)
        except Exception:  # noqa: BLE001 - no workflow worker answers now: the rest still tells
            pass
    activity, latest, attempt = None, "", 0
    for pending in d.raw_description.pending_activities:
        activity, attempt = pending.activity_type.name, pending.attempt
        if pending.heartbeat_details.payloads:
            values = await client.data_converter.decode(pending.heartbeat_details.payloads)
            latest = str(values[0]) if values else ""
    result, failure = None, ""
    if status == "COMPLETED":
        try:
            result = await handle.result(rpc_timeout=timedelta(seconds=5))
        except Exception as exc:  # noqa: BLE001
            failure = str(exc)
        if not isinstance(result, dict):
            result = {"result": str(result)}
    elif status in ("FAILED", "TERMINATED", "TIMED_OUT"):
        try:
            await handle.result(rpc_timeout=timedelta(seconds=5))
        except Exception as exc:  # noqa: BLE001 - the failure is what we want
            failure = failure_text(exc)
    return RunInfo(**heading(d), paused_at=paused_at, released=released, activity=activity, latest=latest,
                   attempt=attempt, result=result, failure=failure)


def show_run(address: str, workflow_id: str, namespace: str = DEFAULT_NAMESPACE) -> RunInfo:
    async def go() -> RunInfo:
        return await _info(await connect(address, namespace), workflow_id)

    return _run(go())


def resume_run(address: str, workflow_id: str, step: str = "", namespace: str = DEFAULT_NAMESPACE) -> RunInfo:
    """Open the gate the run ``workflow_id`` waits at (or the gate of ``step``); refused when the run is
    not running, not run-controlled, or (without ``step``) waits at no gate."""
    from vmferry.workflows.recovery import RUN_CONTROLLED

    async def go() -> RunInfo:
        client = await connect(address, namespace)
        info = await _info(client, workflow_id)
        if info.workflow_type not in RUN_CONTROLLED:
            raise WorkflowError(f"run {workflow_id!r} ({info.workflow_type}) has no gates")
        if info.status != "RUNNING":
            raise WorkflowError(f"run {workflow_id!r} is {info.status.lower()}, not waiting")
        if not step and info.paused_at is None:
            raise WorkflowError(f"run {workflow_id!r} is not paused at a gate")
        await client.get_workflow_handle(workflow_id).signal("resume", step)
        return info

    return _run(go())


def cancel_run(address: str, workflow_id: str, namespace: str = DEFAULT_NAMESPACE, *,
               wait: float = 600.0) -> RunInfo:
    """Cancel the run and wait (up to ``wait`` seconds) until it has ended: a cancelled recovery ends only
    after it removed what it created."""

    async def go() -> RunInfo:
        client = await connect(address, namespace)
        info = await _info(client, workflow_id)
        if info.status != "RUNNING":
            raise WorkflowError(f"run {workflow_id!r} is {info.status.lower()}, nothing to cancel")
        handle = client.get_workflow_handle(workflow_id)
        await handle.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            info = await _info(client, workflow_id)
            if info.status != "RUNNING":
                return info
            if loop.time() > deadline:
                raise WorkflowError(f"run {workflow_id!r} did not end within {wait:g} s of its cancellation")
            await asyncio.sleep(0.5)

    return _run(go())


def run_test_recovery(address: str, request, *, on_event: Callable[[str], None] | None = None,
                      namespace: str = DEFAULT_NAMESPACE, detach: bool = False) -> tuple[str, dict | None]:
    """Start a test recovery as a durable run (refused while one of the same application and site runs)
    and, unless ``detach``, wait for its report; ``on_event`` hears where it is (started, paused at a gate,
    resumed). Returns (run id, report document or None when detached)."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

    from vmferry.workflows.recovery import workflow_id

    say = on_event or (lambda _msg: None)
    wid = workflow_id(request.app, request.site)

    async def go() -> tuple[str, dict | None]:
        client = await connect(address, namespace)
        try:
            handle = await client.start_workflow(
                "TestRecovery", request, id=wid, task_queue=CONTROL_QUEUE, result_type=dict,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        except Exception as exc:  # noqa: BLE001 - WorkflowAlreadyStartedError and RPC failures
            raise WorkflowError(f"a test recovery of {request.app!r} at {request.site!r} cannot start: {exc}") \
                from exc
        say(f"run {wid} started")
        if detach:
            return wid, None
        result = asyncio.ensure_future(handle.result())
        paused = None
        try:
            while not result.done():
                await asyncio.wait([result], timeout=1.0)
                if result.done():
                    break
                try:
                    info = await _info(client, wid)
                except WorkflowError:
                    continue
                if info.paused_at != paused:
                    say(f"run {wid} paused before {info.paused_at}" if info.paused_at else f"run {wid} resumed")
                    paused = info.paused_at
            return wid, result.result()
        except Exception as exc:
            raise WorkflowError(f"run {wid} did not complete: {failure_text(exc)}") from exc
        finally:
            if not result.done():
                result.cancel()

    return _run(go())
