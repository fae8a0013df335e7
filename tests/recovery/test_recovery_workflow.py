"""The test recovery as a Temporal workflow on vmferry's own local dev server (127.0.0.1): the workflow
runs one activity on the target site's queue, which boots a real replica in an isolated network on the
private libvirtd, proves it and cleans up; the workflow's result is the report."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.recovery import replicas, serviceguest
from tests.workflows.finished import run_to_end
from vmferry.recovery.model import Probe
from vmferry.recovery.test import run_test
from vmferry.tools import libvirt as lv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


class PlanLibrary:
    """A recovery library over a plan prepared by the test (protect's records are not needed here)."""

    def __init__(self, plan, state) -> None:
        self.plan, self.state, self.calls = plan, state, 0

    def test_recovery(self, request, say=None, control=None) -> dict:
        self.calls += 1
        assert request.app == self.plan.app and request.site == self.plan.site
        return run_test(self.plan, self.state, say=say, control=control).to_dict()


def test_workflow_runs_the_test_recovery_at_the_target_site(netlibvirtd, tmp_path):
    from temporalio.client import Client
    from temporalio.worker import Worker

    from vmferry.workflows.endpoint import CONTROL_QUEUE, site_queue
    from vmferry.workflows.recovery import (
        WORKFLOWS,
        RecoveryActivities,
        TestRecoveryRequest,
        TestRecoveryWorkflow,
        workflow_id,
    )
    from vmferry.workflows.server import DevServer

    storage = netlibvirtd.workdir / "dr-workflow"
    storage.mkdir()
    netlibvirtd.own(storage)
    vm = replicas.vm_spec(storage, "shop", "web", serviceguest.service_image(), 13, (Probe("http", 80, "/"),))
    plan = replicas.plan_for("shop", netlibvirtd.uri, storage, [vm], [])
    library = PlanLibrary(plan, tmp_path / "state")
    server = DevServer(tmp_path / "temporal").start()
    try:
        async def main():
            client = await Client.connect(server.address)
            with ThreadPoolExecutor(4) as pool:
                workers = [Worker(client, task_queue=CONTROL_QUEUE, workflows=WORKFLOWS),
                           Worker(client, task_queue=site_queue("dr"),
                                  activities=RecoveryActivities(library).activities(), activity_executor=pool)]
                async with workers[0], workers[1]:
                    return await run_to_end(client, TestRecoveryWorkflow.run,
                                            TestRecoveryRequest("shop", "dr", heartbeat=30), workflow_id("shop", "dr"))
        result, history = asyncio.run(main())
    finally:
        server.stop()
    assert library.calls == 1
    assert result["ok"] and result["rto_seconds"] > 0 and result["vms"][0]["proved"], json.dumps(result)[:2000]
    assert result["cleanup"]["clean"] and result["replicas_unchanged"]
    scheduled = [e.activity_task_scheduled_event_attributes for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    assert [(s.activity_type.name, s.task_queue.name) for s in scheduled] == [("recover_test", "vmferry.site.dr")]
    with lv.connect(netlibvirtd.uri) as conn:
        assert not [n for n in conn.names() if n.startswith("vmferry-test-")]
        assert not [n for n in conn.networks() if n.startswith("vmferry-test-")]
