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
