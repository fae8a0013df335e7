"""What a failed run says: the innermost cause of Temporal's failure chain (workflows/run_summary.py)."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from vmferry.workflows.run_summary import failure_text


def test_the_innermost_cause_of_a_failure_chain_is_what_the_run_says():
    inner = ApplicationError("the target storage is full")
    middle = ApplicationError("activity task failed")
    middle.__cause__ = inner
    outer = ApplicationError("workflow execution failed")
    outer.__cause__ = middle
    assert outer.cause is middle                       # temporalio's own chain, followed to its end
    assert failure_text(outer) == "the target storage is full"
    assert failure_text(middle) == "the target storage is full"


def test_an_error_without_a_cause_says_itself():
    assert failure_text(ApplicationError("no worker")) == "no worker"
    assert failure_text(TimeoutError("rpc timed out")) == "rpc timed out"
