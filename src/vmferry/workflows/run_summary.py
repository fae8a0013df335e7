"""One run's heading (id, type, status, times) as every view of runs starts it: ``vmferry runs``,
``vmferry runs show`` (:class:`vmferry.workflows.control.RunInfo`) and the console
(:class:`vmferry.console.runs.RunState`) extend it; and what a failed run says (:func:`failure_text`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunSummary:
    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    start_time: str
    close_time: str | None


def heading(item, workflow_id: str | None = None) -> dict:
    """The :class:`RunSummary` fields of a Temporal workflow description or listing item, as keywords;
    ``workflow_id`` instead of the item's own id when given."""
    return {"workflow_id": workflow_id or item.id, "run_id": item.run_id, "workflow_type": item.workflow_type,
            "status": item.status.name if item.status else "UNKNOWN",
            "start_time": item.start_time.isoformat() if item.start_time else "",
            "close_time": item.close_time.isoformat() if item.close_time else None}


def failure_text(exc: BaseException) -> str:
    """What a failed run says: the innermost cause of a Temporal failure (a workflow failure wraps the
    activity failure that wraps the application error), else ``exc`` itself."""
    cause = exc
    while getattr(cause, "cause", None) is not None:
        cause = cause.cause
    return str(cause)
