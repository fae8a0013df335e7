"""Runs as the console shows them, read from Temporal through :mod:`vmferry.workflows.runs`.

A run's steps: the disk copies of a sync or protection (:func:`vmferry.workflows.runs.snapshot`), or
the step a test recovery is at (the message its activity last heartbeated: the recovery's own
``say``). Gates: the workflow types of :data:`vmferry.workflows.recovery.RUN_CONTROLLED` answer the
``gates`` query (:class:`~vmferry.workflows.recovery.GateState`: the step the run waits before) and are
resumed by the ``resume`` signal with that step. Starting runs: :func:`start_test`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from vmferry.replication.model import to_json
from vmferry.workflows.run_summary import RunSummary, failure_text, heading

RECOVER_ACTIVITY = "recover_test"
GATES_QUERY = "gates"
RESUME_SIGNAL = "resume"


@dataclass(frozen=True)
class RunState(RunSummary):
    steps: list[dict] = field(default_factory=list)
    gates: list[str] = field(default_factory=list)
    result: object = None
    error: str = ""

    @property
    def running(self) -> bool:
        return self.status == "RUNNING"

    def to_dict(self) -> dict:
        return {"workflow_id": self.workflow_id, "run_id": self.run_id, "type": self.workflow_type,
                "status": self.status, "start_time": self.start_time, "close_time": self.close_time,
                "steps": self.steps, "gates": self.gates, "error": self.error}


async def list_runs(client, limit: int = 50) -> list[dict]:
    from vmferry.workflows.runs import list_runs as _list

    return [to_json(r) for r in await _list(client, limit)]


async def _recover_step(description, data_converter) -> dict | None:
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name != RECOVER_ACTIVITY or not pending.heartbeat_details.payloads:
            continue
        values = await data_converter.decode(pending.heartbeat_details.payloads)
        if values and isinstance(values[0], str) and values[0]:
            return {"key": "recover", "title": values[0], "done": 0, "finished": False,
                    "attempt": pending.attempt}
    return None


async def run_state(client, workflow_id: str, *, with_result: bool = True) -> RunState:
    """The run ``workflow_id`` (its latest run) now: status, steps, gates, and its result or failure once
    it has closed. Raises the client's error when there is no such run."""
    from vmferry.workflows.runs import RESULT_TYPES, snapshot

    handle = client.get_workflow_handle(workflow_id)
    description = await handle.describe()
    wtype = description.workflow_type
    status = description.status.name if description.status else "UNKNOWN"
    steps: list[dict] = []
    gates: list[str] = []
    result, error = None, ""
    if status == "RUNNING":
        if wtype == "TestRecovery":
            step = await _recover_step(description, client.data_converter)
            steps = [step] if step else []
        else:
            handle = client.get_workflow_handle(workflow_id, run_id=description.run_id)
            _, copies = await snapshot(handle, client.data_converter)
            steps = [{"key": c.key, "title": c.title, "done": c.done, "finished": c.finished,
                      "attempt": c.attempt} for c in copies]
        from vmferry.workflows.recovery import RUN_CONTROLLED, GateState

        if wtype in RUN_CONTROLLED:            # a query is a workflow task: only asked where it is answered
            try:
                gate_state = await handle.query(GATES_QUERY, result_type=GateState,
                                                rpc_timeout=timedelta(seconds=1))
                gates = [gate_state.paused_at] if gate_state.paused_at else []
            except Exception:  # noqa: BLE001 - no worker answers now: no gate shown this time
                gates = []
    elif with_result:
        handle = client.get_workflow_handle(workflow_id, run_id=description.run_id,
                                            result_type=RESULT_TYPES.get(wtype))
        try:
            result = await handle.result()
            result = result if isinstance(result, dict) else to_json(result)
        except Exception as exc:  # noqa: BLE001 - a failed, cancelled or terminated run: say why
            error = failure_text(exc)
    return RunState(**heading(description, workflow_id), steps=steps, gates=gates, result=result, error=error)


async def start_test(client, app: str, site: str, pause_before: tuple[str, ...] = ()):
    """Start a test recovery of ``app`` at ``site`` (or join the one running), stopping at a gate before
    each step of ``pause_before``; its workflow id."""
    from temporalio.common import WorkflowIDConflictPolicy

    from vmferry.workflows.endpoint import CONTROL_QUEUE
    from vmferry.workflows.recovery import TestRecoveryRequest, workflow_id

    handle = await client.start_workflow("TestRecovery", TestRecoveryRequest(app, site, pause_before=pause_before),
                                         id=workflow_id(app, site),
                                         task_queue=CONTROL_QUEUE, result_type=dict,
                                         id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    return handle.id


async def start_failover(client, app: str, site: str, source_site: str, mode: str) -> str:
    """Start the failover of ``app`` to ``site`` (``planned`` or ``disaster``), or join the one running; its
    workflow id."""
    from vmferry.recovery.failover_steps import FailoverRequest
    from vmferry.workflows.failover import FailoverRun
    from vmferry.workflows.failover import start_failover as start

    handle = await start(client, FailoverRun(FailoverRequest(app, site, mode), source_site))
    return handle.id


async def resume(client, workflow_id: str, gate: str) -> None:
    await client.get_workflow_handle(workflow_id).signal(RESUME_SIGNAL, gate)
