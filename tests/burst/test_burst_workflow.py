"""The burst control loop as a Temporal workflow on vmferry's local dev server (127.0.0.1): its rounds run
as activities on the burst site's queue over the real library (protection record → target → HAProxy's
metric → decision), durable timers between them; the decisions land in the burst record too."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from tests.burst.group import write_group
from tests.burst.servers import HAProxy, Primary
from tests.burst.test_burst_cli import _manifest
from tests.workflows.finished import run_to_end
from vmferry.burst import store


def test_watch_workflow_rounds_run_at_the_site(tmp_path):
    from temporalio.client import Client

    from vmferry.workflows.activities import default_library
    from vmferry.workflows.burst import BurstWatchRequest, BurstWatchWorkflow, workflow_id
    from vmferry.workflows.server import DevServer
    from vmferry.workflows.worker import WorkerPlan, build_workers

    primary = Primary()
    haproxy = HAProxy(tmp_path / "haproxy", primary.port).start()
    server = DevServer(tmp_path / "temporal").start()
    state = tmp_path / "state"
    try:
        write_group(state, _manifest(tmp_path, f"unix:{haproxy.socket}"), tmp_path / "store", uri="test:///default")

        async def main():
            client = await Client.connect(server.address)
            with ThreadPoolExecutor(8) as pool:     # the workers `vmferry worker --workflows --site cloud` runs
                workers = build_workers(client, WorkerPlan(("cloud",), True), default_library(state), pool)
                async with contextlib.AsyncExitStack() as stack:
                    for worker in workers:
                        await stack.enter_async_context(worker)
                    return await run_to_end(client, BurstWatchWorkflow.run,
                                            BurstWatchRequest("shop", "web", "cloud", rounds=3, interval=0.2),
                                            workflow_id("shop", "web"))
        result, history = asyncio.run(main())
    finally:
        server.stop()
        haproxy.close()
        primary.close()
    assert [d["action"] for d in result] == ["hold"] * 3
    assert all(d["metric"] == "sessions" and d["value"] == 0 for d in result)
    scheduled = [e.activity_task_scheduled_event_attributes for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    assert [(s.activity_type.name, s.task_queue.name) for s in scheduled] == [("burst_round", "vmferry.site.cloud")] * 3
    assert sum(1 for e in history.events if e.HasField("timer_started_event_attributes")) == 2
    record = store.load(state, "shop", "web", "cloud")
    assert [d.to_dict() for d in record.decisions] == result
