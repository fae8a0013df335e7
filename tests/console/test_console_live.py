"""The run page in Chromium against a real Temporal server without booting anything: the real
TestRecovery workflow and its real ``recover_test`` activity (heartbeats, gates) over a recovery library
that only says its steps and waits at its gate. Started from the application page with a gate before
'checks': the steps arrive live, the Resume button appears when the run waits, resuming finishes the run
and the page shows the report with its RTO."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.console.records import record
from vmferry.console.app import ConsoleState, create_app
from vmferry.console.server import ConsoleServer, bind
from vmferry.replication.store import Store

TOKEN = "console-live-test-token-0123"


class GatedLibrary:
    def __init__(self) -> None:
        self.requests = []

    def test_recovery(self, request, say=None, control=None) -> dict:
        self.requests.append(request)
        for step in ("isolated network dr-app", "group 1: starting shop-vm0", "shop-vm0 proved itself in 1.0 s"):
            say(step)
            time.sleep(1.2)
        if "checks" in control.pause_before:
            control.wait_gate("checks")
        say("application checks")
        time.sleep(1.2)
        return {"kind": "test", "app": request.app, "site": request.site, "point": "P", "point_taken_at": "T",
                "run": "r1", "started_at": "S", "finished_at": "F", "ok": True, "rto_seconds": 7.5, "error": None,
                "networks": [], "groups": [], "not_started": [], "checks": [], "replicas_unchanged": True,
                "cleanup": {"clean": True, "left": []},
                "vms": [{"group": 1, "vm": "shop-vm0", "address": "10.0.0.1", "started": 0.5, "proved": True,
                         "time_to_proof": 1.0, "checks": [{"what": "guest agent", "ok": True}],
                         "console_tail": None}]}


@pytest.fixture
def live(tmp_path):
    from temporalio.worker import Worker

    from vmferry.workflows.endpoint import CONTROL_QUEUE, connect, site_queue
    from vmferry.workflows.recovery import WORKFLOWS, RecoveryActivities
    from vmferry.workflows.server import DevServer

    record(Store(tmp_path / "state"), "shop", age=10, now=datetime.now(UTC))
    server = DevServer(tmp_path / "temporal").start()
    library = GatedLibrary()
    stop = threading.Event()
    ready = threading.Event()

    def workers() -> None:
        async def main() -> None:
            client = await connect(server.address)
            with ThreadPoolExecutor(4) as pool:
                async with Worker(client, task_queue=CONTROL_QUEUE, workflows=WORKFLOWS), \
                        Worker(client, task_queue=site_queue("dr"), activities=RecoveryActivities(library).activities(),
                               activity_executor=pool, max_heartbeat_throttle_interval=timedelta(seconds=1),
                               default_heartbeat_throttle_interval=timedelta(seconds=1)):
                    ready.set()
                    while not stop.is_set():
                        await asyncio.sleep(0.1)
        asyncio.run(main())

    thread = threading.Thread(target=workers, daemon=True)
    thread.start()
    assert ready.wait(60)
    console = ConsoleServer(create_app(ConsoleState(tmp_path / "state", server.address, TOKEN)),
                            bind("127.0.0.1:0")).start()
    try:
        yield console.url, library
    finally:
        console.stop()
        stop.set()
        thread.join(timeout=30)
        server.stop()


def test_run_page_live_steps_gate_resume_and_report(live, chromium):
    url, library = live
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto(url + "login?back=/apps/shop")
        page.get_by_label("Operator token").fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/apps/shop$"))
        page.get_by_text("Test failover…").click()
        page.get_by_label("Pause before").fill("checks")
        page.get_by_role("button", name="Start test failover").click()
        page.wait_for_url(re.compile(r".*/runs/vmferry-recover-test-shop-dr$"))
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while not page.get_by_role("button", name="Resume checks").count():
            assert time.monotonic() < deadline, seen
            seen += [t for t in page.locator("#steps li").all_inner_texts() if t and t not in seen]
            time.sleep(0.2)
        seen += [t for t in page.locator("#steps li").all_inner_texts() if t and t not in seen]
        assert library.requests[0].pause_before == ("checks",)
        assert "group 1: starting shop-vm0" in seen and "shop-vm0 proved itself in 1.0 s" in seen, seen
        page.get_by_role("button", name="Resume checks").click()
        page.wait_for_selector("#report", timeout=60_000)
        assert "Measured RTO: 7.5 s" in page.locator("#rto").inner_text()
        assert page.locator("#run-status").inner_text() == "completed"
        assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
        assert errors == [], errors
    finally:
        context.close()
