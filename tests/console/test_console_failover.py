"""The Failover button: a failover confirmed on the application page (name typed, planned or disaster)
starts vmferry's Failover workflow on the real local Temporal server, with the protection group's sites;
the runs page lists it. No worker serves it here, so nothing runs: what is asserted is the request the
console made."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from tests.console.records import record
from vmferry.console.app import ConsoleState, create_app
from vmferry.replication.store import Store

TOKEN = "operator-token-0123456789"


def test_a_confirmed_failover_starts_the_failover_workflow(tmp_path):
    from starlette.testclient import TestClient
    from temporalio.client import Client

    from vmferry.workflows.server import DevServer

    group = record(Store(tmp_path / "state"), "shop", age=10, now=datetime.now(UTC))
    server = DevServer(tmp_path / "temporal").start()
    try:
        client = TestClient(create_app(ConsoleState(tmp_path / "state", server.address, TOKEN)))
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        res = client.post("/apps/shop/failover", data={"confirm_name": "shop", "mode": "sideways"}, headers=bearer)
        assert res.status_code == 400 and "planned or disaster" in res.text
        res = client.post("/apps/shop/failover", data={"confirm_name": "shop", "mode": "disaster"}, headers=bearer,
                          follow_redirects=False)
        assert res.status_code == 303 and res.headers["location"] == "/runs/vmferry-failover-shop"
        # Temporal's list of runs (its visibility store) follows a start a moment later: the page as an
        # operator reloading it sees it, within seconds
        deadline = time.monotonic() + 20
        while "vmferry-failover-shop" not in (page := client.get("/runs", headers=bearer).text):
            assert time.monotonic() < deadline, page[-500:]
            time.sleep(0.2)

        async def started():
            temporal = await Client.connect(server.address)
            handle = temporal.get_workflow_handle("vmferry-failover-shop")
            description = await handle.describe()
            history = await handle.fetch_history()
            first = history.events[0].workflow_execution_started_event_attributes
            return description.workflow_type, first.input.payloads[0].data
        wtype, payload = asyncio.run(started())
    finally:
        server.stop()
    assert wtype == "Failover"
    text = payload.decode()
    assert '"app":"shop"' in text.replace(" ", "") and '"mode":"disaster"' in text.replace(" ", "")
    assert f'"site":"{group.target_site}"' in text.replace(" ", "")
    assert f'"source_site":"{group.source_site}"' in text.replace(" ", "")
