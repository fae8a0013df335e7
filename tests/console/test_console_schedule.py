"""The application page shows the sync schedule as the real Temporal server has it (direction, interval,
running or paused with its note) and a recorded failover (where the application runs, no sync until a
reprotect); without Temporal the page still renders and says why the schedule is not shown."""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime

from tests.console.records import record
from vmferry.console.app import ConsoleState, create_app
from vmferry.recovery import failover_record
from vmferry.replication.store import Store

TOKEN = "operator-token-0123456789"


def test_the_app_page_shows_the_schedule_and_the_failover(tmp_path):
    from starlette.testclient import TestClient

    from vmferry.workflows.endpoint import connect
    from vmferry.workflows.protection import ScheduleRequest
    from vmferry.workflows.schedules import ensure_schedule, pause_schedule
    from vmferry.workflows.server import DevServer

    state = tmp_path / "state"
    record(Store(state), "shop", age=10, now=datetime.now(UTC))
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    server = DevServer(tmp_path / "temporal").start()
    try:
        client = TestClient(create_app(ConsoleState(state, server.address, TOKEN)))
        page = client.get("/apps/shop", headers=bearer)
        assert page.status_code == 200 and "Sync schedule:" in page.text and "none (syncs run when asked" in page.text

        async def schedule(pause: bool) -> None:
            temporal = await connect(server.address)
            await ensure_schedule(temporal, ScheduleRequest("shop", "dc1", "dr", 1800))
            if pause:
                await pause_schedule(temporal, "shop", "failover of shop to dr (planned), run r1")

        asyncio.run(schedule(False))
        text = html.unescape(client.get("/apps/shop", headers=bearer).text)
        assert 'data-schedule="running"' in text and "dc1 → dr every 15 min" in text

        asyncio.run(schedule(True))
        failover_record.save(state, {"version": failover_record.VERSION, "app": "shop", "run": "20261201T060000Z-ab",
                                     "mode": "planned", "source_site": "dc1", "target_site": "dr",
                                     "status": "done", "steps": {}, "vms": {"shop-vm0": {"state": "started"}}})
        text = html.unescape(client.get("/apps/shop", headers=bearer).text)
        assert 'data-schedule="paused"' in text and "failover of shop to dr (planned), run r1" in text
        assert "Failover to dr (planned, run 20261201T060000Z-ab): done." in text
        assert "no sync from dc1 until it is reprotected" in text
    finally:
        server.stop()
    # Temporal gone: the page still answers, and says the schedule cannot be read
    text = TestClient(create_app(ConsoleState(state, None, TOKEN))).get("/apps/shop", headers=bearer).text
    assert "Sync schedule:" in text and "cannot be read" in text and "no Temporal service is configured" in text
