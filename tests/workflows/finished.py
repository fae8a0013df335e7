"""A workflow run to its end in the tests that drive a real Temporal with their own workers."""

from __future__ import annotations


async def run_to_end(client, workflow, request, workflow_id: str):
    """Start ``workflow`` with ``request`` on vmferry's control queue and wait for it: its result and its
    history."""
    from vmferry.workflows.endpoint import CONTROL_QUEUE

    handle = await client.start_workflow(workflow, request, id=workflow_id, task_queue=CONTROL_QUEUE)
    return await handle.result(), await handle.fetch_history()
