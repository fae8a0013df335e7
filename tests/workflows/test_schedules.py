"""One Temporal Schedule per application from its RPO: created idempotently, starts real syncs, removed."""

from __future__ import annotations

import asyncio

from tests.workflows.conftest import run
from tests.workflows.filelib import FileCopyLibrary
from tests.workflows.test_durable_sync import FAST, make_app
from vmferry.workflows.endpoint import connect
from vmferry.workflows.protection import ScheduleRequest
from vmferry.workflows.schedules import (
    ensure_schedule,
    remove_schedule,
    schedule_id,
    sync_interval,
)


def test_interval_from_rpo():
    assert sync_interval(900) == 450
    assert sync_interval(4) == 10  # never more often than every 10 s


def test_schedule_starts_syncs_and_is_removed(temporal, start_worker, tmp_path):
    make_app(tmp_path, "shop", {"web.vda": 1024 * 1024})
    start_worker(temporal.address, tmp_path, "--site", "dc1", "--site", "dr", "--workflows")

    async def scenario():
        client = await connect(temporal.address)
        request = ScheduleRequest("shop", "dc1", "dr", 3600, FAST)
        sid = await ensure_schedule(client, request)
        assert sid == schedule_id("shop")
        assert await ensure_schedule(client, ScheduleRequest("shop", "dc1", "dr", 1800, FAST)) == sid  # update
        handle = client.get_schedule_handle(sid)
        described = await handle.describe()
        every = described.schedule.spec.intervals[0].every
        await handle.trigger()  # what the interval does every 15 minutes, now
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            described = await handle.describe()
            done = [a for a in described.info.recent_actions]
            runs = [client.get_workflow_handle(a.action.workflow_id) for a in done]
            statuses = [(await r.describe()).status.name for r in runs]
            if statuses and statuses[0] == "COMPLETED":
                break
            assert asyncio.get_running_loop().time() < deadline, statuses
            await asyncio.sleep(0.3)
        removed = await remove_schedule(client, "shop")
        again = await remove_schedule(client, "shop")
        return every, runs[0].id, removed, again

    every, workflow_id, removed, again = run(scenario())
    assert every.total_seconds() == 900
    assert workflow_id.startswith("vmferry-sync-shop")
    assert (removed, again) == (True, False)
    assert len(FileCopyLibrary(tmp_path).points("shop")) == 1


def test_protect_workflow_copies_at_the_target_then_schedules(temporal, start_worker, tmp_path):
    import io
    import json

    from tests.workflows.conftest import activity_runs, history_events
    from vmferry.progress import Reporter
    from vmferry.workflows.library import ProtectRequest, ProtectResult
    from vmferry.workflows.protection import ProtectRun
    from vmferry.workflows.runs import follow

    make_app(tmp_path, "erp", {"app.vda": 2 * 1024 * 1024}, seed=11)
    dc1 = start_worker(temporal.address, tmp_path, "--site", "dc1", "--workflows")
    dr = start_worker(temporal.address, tmp_path, "--site", "dr", env={"VMFERRY_TEST_CHUNK_DELAY": "0.4"})
    events = io.StringIO()

    async def scenario():
        client = await connect(temporal.address)
        request = ProtectRun(ProtectRequest(str(tmp_path / "sources" / "erp"), "dc1", "dr", 600), FAST)
        handle = await client.start_workflow("ProtectWorkflow", request, id="protect-erp", task_queue="vmferry",
                                             result_type=ProtectResult)
        result = await follow(handle, Reporter("json", events), client.data_converter, poll=0.2)
        every = (await client.get_schedule_handle(schedule_id("erp")).describe()).schedule.spec.intervals[0].every
        await remove_schedule(client, "erp")
        return client, result, every

    client, result, every = run(scenario())
    assert result.app == "erp" and result.point is not None
    assert FileCopyLibrary(tmp_path).verify("erp", result.point.point_id) == result.point
    assert every.total_seconds() == 300
    runs = activity_runs(run(history_events(client, "protect-erp")))
    placed = {r["type"]: r["started"].identity for r in runs.values()}
    assert placed == {"protect": dr.identity, "ensure_schedule": dc1.identity}
    shown = [json.loads(line) for line in events.getvalue().splitlines()]
    assert "first copy of app.vda" in {e["step"] for e in shown}  # progress came through the heartbeats


def test_unprotect_with_temporal_removes_the_schedule(temporal, tmp_path):
    from temporalio.service import RPCError

    from tests.conftest import run_vmferry
    from vmferry.replication import points
    from vmferry.replication.store import ProtectionGroup, Store

    store = Store(tmp_path / "state")
    replica = tmp_path / "dr" / "shop"
    replica.mkdir(parents=True)
    store.save(ProtectionGroup("shop", str(tmp_path / "app.yaml"), "dc1", "dr", "test:///default", None,
                               str(replica), 900, 3, points.now_iso(), (), created=(str(replica),)))

    async def make():
        await ensure_schedule(await connect(temporal.address), ScheduleRequest("shop", "dc1", "dr", 900, FAST))

    run(make())
    result = run_vmferry("unprotect", "shop", "--json", "--temporal", temporal.address,
                         env={"VMFERRY_STATE": str(store.root)})
    assert result.returncode == 0, result.stderr
    assert not store.exists("shop") and not replica.exists()

    async def gone() -> bool:
        try:
            await (await connect(temporal.address)).get_schedule_handle(schedule_id("shop")).describe()
        except RPCError:
            return True
        return False

    assert run(gone())


def test_the_schedule_follows_failover_and_reprotect(temporal):
    """A failover pauses the schedule with a note naming the run; the reprotect points it the other way
    (the reversed group's sites and RPO) and resumes it; nothing is created for an application without one."""
    from dataclasses import dataclass

    from vmferry.workflows.runs import follow_direction, schedule_of
    from vmferry.workflows.schedules import pause_schedule

    @dataclass
    class Reversed:             # the fields of a ProtectionGroup that the schedule reads
        app: str
        source_site: str
        target_site: str
        rpo_seconds: int

    async def protect_and_fail_over():
        client = await connect(temporal.address)
        await ensure_schedule(client, ScheduleRequest("crm", "dc1", "dr", 14 * 86400, FAST))
        first = await pause_schedule(client, "crm", "failover of crm to dr (planned), run vmferry-failover-crm/r1")
        again = await pause_schedule(client, "crm", "failover of crm to dr (planned), run vmferry-failover-crm/r1")
        none = await pause_schedule(client, "nothing-here", "x")
        return first, again, none

    assert run(protect_and_fail_over()) == (True, True, False)
    paused = schedule_of(temporal.address, "crm")
    assert paused["paused"] and "failover of crm to dr" in paused["note"]
    assert (paused["source_site"], paused["target_site"], paused["every_seconds"]) == ("dc1", "dr", 7 * 86400)

    after = follow_direction(temporal.address, Reversed("crm", "dr", "dc1", 2 * 86400))
    assert after == schedule_of(temporal.address, "crm")
    assert not after["paused"]
    assert (after["source_site"], after["target_site"], after["every_seconds"]) == ("dr", "dc1", 86400)
    assert follow_direction(temporal.address, Reversed("none", "dr", "dc1", 900)) is None
    assert schedule_of(temporal.address, "none") is None

    async def cleanup():
        await remove_schedule(await connect(temporal.address), "crm")

    run(cleanup())
