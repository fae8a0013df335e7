"""Run control of a durable test recovery, on the real local Temporal server and the privileged private
libvirtd: a run paused at a gate (its VM up and proved, waiting) is resumed with ``vmferry runs
resume``, its hooks ran around the boot group with the run's environment and are in the report, ``vmferry
runs list/show`` tell where it is; a run cancelled at its gate still removes its isolated network; a
hook that overruns its timeout fails the run, which cleans up."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta

import pytest

from tests.conftest import run_vmferry
from tests.recovery import replicas, serviceguest
from vmferry.recovery.control import Control, Hook
from vmferry.recovery.journal import journal_dir
from vmferry.recovery.model import Probe
from vmferry.recovery.test import run_test
from vmferry.tools import libvirt as lv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200), pytest.mark.xdist_group("hostnet")]


class PlanLibrary:
    def __init__(self, plan, state) -> None:
        self.plan, self.state = plan, state

    def test_recovery(self, request, say=None, control=None) -> dict:
        return run_test(self.plan, self.state, say=say, control=control).to_dict()


@pytest.fixture(scope="module")
def site(netlibvirtd, tmp_path_factory):
    """One serving guest's replica at dr and its plan."""
    storage = netlibvirtd.workdir / "dr-control"
    storage.mkdir()
    netlibvirtd.own(storage)
    vm = replicas.vm_spec(storage, "shop", "web", serviceguest.service_image(), 13, (Probe("http", 80, "/"),))
    return replicas.plan_for("shop", netlibvirtd.uri, storage, [vm], []), tmp_path_factory.mktemp("state")


def _nothing_left(daemon, state) -> None:
    with lv.connect(daemon.uri) as conn:
        assert [n for n in conn.names() if n.startswith("vmferry-test-")] == []
        assert [n for n in conn.networks() if n.startswith("vmferry-test-")] == []
    assert not list(journal_dir(state).glob("*.jsonl"))


async def _until(check, timeout: float = 600.0, every: float = 0.5):
    """Poll ``check`` until it returns a value; it raises when the run can no longer get there."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert loop.time() < end, "timed out"
        await asyncio.sleep(every)


async def _shown_while_running(address, wid) -> dict:
    """``vmferry runs show WID --json``; a run that ended (it failed before its gate) fails the test at
    once with what the run said, instead of waiting for a pause that will never come."""
    res = await _cli(address, "show", wid, "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["status"] == "RUNNING", json.dumps(doc)[:3000]
    return doc


def _durable(plan, state, scenario):
    """Run ``scenario(client, address)`` with a real Temporal dev server and in-process workers."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    from vmferry.workflows.endpoint import CONTROL_QUEUE, site_queue
    from vmferry.workflows.recovery import WORKFLOWS, RecoveryActivities
    from vmferry.workflows.server import DevServer

    server = DevServer(state / "temporal").start()
    try:
        async def main():
            client = await Client.connect(server.address)
            workers = [Worker(client, task_queue=CONTROL_QUEUE, workflows=WORKFLOWS),
                       Worker(client, task_queue=site_queue("dr"),
                              activities=RecoveryActivities(PlanLibrary(plan, state)).activities(),
                              max_heartbeat_throttle_interval=timedelta(seconds=1))]
            async with workers[0], workers[1]:
                return await scenario(client, server.address)
        return asyncio.run(main())
    finally:
        server.stop()


def _cli(address, *args):
    return asyncio.to_thread(run_vmferry, "runs", *args, "--temporal", address)


def test_paused_run_resumes_with_its_hooks_reported(netlibvirtd, site, tmp_path):
    from vmferry.workflows.endpoint import CONTROL_QUEUE
    from vmferry.workflows.recovery import TestRecoveryRequest, workflow_id

    plan, state = site
    out = tmp_path / "hooks.txt"
    hooks = (Hook("before", "web", f'echo "before $VMFERRY_STEP $VMFERRY_COMPONENTS $VMFERRY_ADDRESSES" >> {out}'),
             Hook("after", "group-1", f'echo "after $VMFERRY_STEP $VMFERRY_RUN" >> {out}; echo said-after', 30))
    request = TestRecoveryRequest("shop", "dr", heartbeat=10, pause_before=("checks",), hooks=hooks)

    async def scenario(client, address):
        wid = workflow_id("shop", "dr")
        handle = await client.start_workflow("TestRecovery", request, id=wid, task_queue=CONTROL_QUEUE,
                                             result_type=dict)

        async def paused():
            doc = await _shown_while_running(address, wid)
            return doc if doc["paused_at"] and doc["latest"].startswith("paused") else None   # heartbeat sent too
        shown = await _until(paused)
        assert shown["paused_at"] == "checks" and shown["status"] == "RUNNING"
        assert shown["activity"] == "recover_test" and shown["latest"] == "paused before checks"
        with lv.connect(netlibvirtd.uri) as conn:        # the group proved itself; the run waits, VM up
            (dom,) = [n for n in conn.names() if n.startswith("vmferry-test-web-")]
            assert conn.info(dom).active
        listed = json.loads((await _cli(address, "list", "--json")).stdout)
        assert [(r["workflow_id"], r["status"]) for r in listed["runs"]] == [(wid, "RUNNING")]
        text = (await _cli(address, "show", wid)).stdout
        assert "paused before checks (vmferry runs resume" in text
        res = await _cli(address, "resume", wid)
        assert res.returncode == 0 and "resumed at the gate before checks" in res.stdout, res.stderr
        result = await handle.result()
        again = await _cli(address, "resume", wid)
        assert again.returncode != 0 and "completed, not waiting" in again.stderr
        done = (await _cli(address, "show", wid)).stdout
        return result, done

    result, done = _durable(plan, state, scenario)
    assert result["ok"], json.dumps(result)[:3000]
    assert [p["step"] for p in result["pauses"]] == ["checks"] and result["pauses"][0]["seconds"] > 0
    assert result["rto_seconds"] < result["vms"][0]["proved_at"] + 30        # the pause is not in the RTO
    before, after = result["hooks"]
    assert (before["when"], before["step"], before["ok"], before["returncode"]) == ("before", "group-1", True, 0)
    assert (after["when"], after["ok"], after["output"]) == ("after", True, "said-after\n")
    assert out.read_text().splitlines() == ["before group-1 web 10.77.0.13", f"after group-1 {result['run']}"]
    assert "COMPLETED" in done and "RTO:" in done and "hook after group-1: ok" in done
    _nothing_left(netlibvirtd, state)


def test_cancelled_run_at_its_gate_still_cleans_up(netlibvirtd, site):
    from vmferry.workflows.endpoint import CONTROL_QUEUE
    from vmferry.workflows.recovery import TestRecoveryRequest, workflow_id

    plan, state = site
    request = TestRecoveryRequest("shop", "dr", heartbeat=10, pause_before=("web",))

    async def scenario(client, address):
        wid = workflow_id("shop", "dr")
        await client.start_workflow("TestRecovery", request, id=wid, task_queue=CONTROL_QUEUE, result_type=dict)

        async def paused():
            return (await _shown_while_running(address, wid))["paused_at"]
        assert await _until(paused) == "group-1"
        with lv.connect(netlibvirtd.uri) as conn:       # the isolated network exists; no VM started yet
            assert len([n for n in conn.networks() if n.startswith("vmferry-test-")]) == 1
            assert not [n for n in conn.names() if n.startswith("vmferry-test-")]
        res = await _cli(address, "cancel", wid, "--json")
        return res

    res = _durable(plan, state, scenario)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "CANCELED"
    _nothing_left(netlibvirtd, state)


def test_a_hook_over_its_timeout_fails_the_run_and_is_reported(netlibvirtd, site, tmp_path):
    plan, state = site
    marker = tmp_path / "late"
    control = Control(hooks=(Hook("before", "web", f"sleep 30; touch {marker}", timeout=1.0),))
    report = run_test(plan, state, control=control)
    assert not report.ok and "the hook before group-1 failed (timed out after 1 s)" in report.error
    (hook,) = report.hooks
    assert hook.returncode is None and 1.0 <= hook.seconds < 5 and not hook.ok
    assert report.vms == [] and report.cleanup.clean
    assert not marker.exists()                           # the hook's process group was killed
    os.sync()
    _nothing_left(netlibvirtd, state)
