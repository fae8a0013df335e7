"""Benchmark of issue 16, the web console: the overview of 200 applications, and how soon a run's step
reaches the page.

* **overview**: 200 protected applications (3 VMs and 7 points each, records written through the library's
  Store, tests/console/records.py); ``GET /`` on the console app, server time from its ``Server-Timing``
  header: the first request (every record parsed) and the median of the next ones (records unchanged,
  kept parsed). Baseline in the same run: the library's own ``status()`` over the same records with a
  fresh Store, what ``vmferry status --json`` computes. Goal: < 300 ms.
* **live progress**: vmferry's local Temporal server, the real TestRecovery workflow and its real
  ``recover_test`` activity (heartbeats as vmferry's workers send them) over a recovery library that only
  says steps, every ``--step-every`` s; the console served by uvicorn on 127.0.0.1 and followed as a
  browser does (``GET /runs/ID/events``). Latency = when the step appears in the event stream minus when
  the activity said it. Baseline in the same run: a client polling the run's description directly
  (Temporal alone, same poll period). Goal: < 1 s.

``PYTHONPATH=src:. .venv/bin/python bench/console.py [--apps 200] [--steps 12]``
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]   # bench/inspect.py shadows inspect
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def bench_overview(apps: int, repeat: int) -> dict:
    import warnings

    from starlette.testclient import TestClient

    from tests.console.records import fleet
    from vmferry.console.app import ConsoleState, create_app
    from vmferry.replication.status import status
    from vmferry.replication.store import Store

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="vmferry-console-bench-") as root:
        fleet(Store(root), apps)
        base = []
        for _ in range(repeat):
            t = time.perf_counter()
            status(store=Store(root))
            base.append((time.perf_counter() - t) * 1000)
        cold = TestClient(create_app(ConsoleState(root, None, "bench-token-0123456789")))
        first = float(cold.get("/").headers["server-timing"].split("dur=")[1])
        state = ConsoleState(root, None, "bench-token-0123456789")
        state.warm()                                  # what vmferry serve does before it serves
        client = TestClient(create_app(state))
        timings = []
        for _ in range(repeat):
            res = client.get("/")
            assert res.status_code == 200 and res.text.count("<tr data-app=") == apps
            timings.append(float(res.headers["server-timing"].split("dur=")[1]))
    return {"apps": apps, "first_ms": first, "warm_ms": statistics.median(timings), "max_ms": max(timings),
            "status_ms": statistics.median(base)}


class SayingLibrary:
    """A recovery library that only says its steps (the real activity heartbeats them)."""

    def __init__(self, steps: int, every: float) -> None:
        self.steps, self.every, self.said = steps, every, {}

    def test_recovery(self, request, say=None, control=None) -> dict:
        for i in range(self.steps):
            time.sleep(self.every)
            msg = f"step {i + 1} of {self.steps}"
            self.said[msg] = time.time()
            say(msg)
        time.sleep(self.every)
        return {"kind": "test", "ok": True}


def bench_live(steps: int, every: float) -> dict:
    import httpx
    from temporalio.worker import Worker

    from vmferry.console.app import EVENT_POLL, ConsoleState, create_app
    from vmferry.console.server import ConsoleServer, bind
    from vmferry.workflows.endpoint import CONTROL_QUEUE, connect, site_queue
    from vmferry.workflows.recovery import WORKFLOWS, RecoveryActivities, TestRecoveryRequest
    from vmferry.workflows.server import DevServer

    library = SayingLibrary(steps, every)
    with tempfile.TemporaryDirectory(prefix="vmferry-console-live-") as root:
        server = DevServer(Path(root) / "temporal").start()
        state = ConsoleState(root, server.address, "bench-token-0123456789")
        console = ConsoleServer(create_app(state), bind("127.0.0.1:0")).start()
        try:
            seen_console: dict[str, float] = {}
            seen_direct: dict[str, float] = {}

            def follow_console(wid: str) -> None:
                with httpx.stream("GET", f"{console.url}runs/{wid}/events", timeout=120) as res:
                    event = None
                    for line in res.iter_lines():
                        if line.startswith("event: "):
                            event = line[7:]
                        elif line.startswith("data: ") and event == "steps":
                            import json

                            for step in json.loads(line[6:])["steps"]:
                                seen_console.setdefault(step["title"], time.time())
                        elif event == "done":
                            return

            async def main() -> None:
                from datetime import timedelta

                client = await connect(server.address)
                with __import__("concurrent.futures").futures.ThreadPoolExecutor(4) as pool:
                    workers = [Worker(client, task_queue=CONTROL_QUEUE, workflows=WORKFLOWS),
                               Worker(client, task_queue=site_queue("dr"),
                                      activities=RecoveryActivities(library).activities(), activity_executor=pool,
                                      max_heartbeat_throttle_interval=timedelta(seconds=1),
                                      default_heartbeat_throttle_interval=timedelta(seconds=1))]
                    async with workers[0], workers[1]:
                        handle = await client.start_workflow("TestRecovery", TestRecoveryRequest("bench", "dr"),
                                                             id="bench-live", task_queue=CONTROL_QUEUE)
                        follower = threading.Thread(target=follow_console, args=(handle.id,), daemon=True)
                        follower.start()
                        result = asyncio.ensure_future(handle.result())
                        while not result.done():           # the baseline: Temporal polled directly
                            desc = await handle.describe()
                            for pending in desc.raw_description.pending_activities:
                                if pending.heartbeat_details.payloads:
                                    (msg,) = await client.data_converter.decode(pending.heartbeat_details.payloads)
                                    seen_direct.setdefault(msg, time.time())
                            await asyncio.wait([result], timeout=EVENT_POLL)
                        follower.join(timeout=30)

            asyncio.run(main())
        finally:
            console.stop()
            server.stop()
    lat_console = [seen_console[m] - t for m, t in library.said.items() if m in seen_console]
    lat_direct = [seen_direct[m] - t for m, t in library.said.items() if m in seen_direct]
    return {"steps": steps, "seen": len(lat_console), "console_median": statistics.median(lat_console),
            "console_max": max(lat_console), "direct_median": statistics.median(lat_direct),
            "direct_max": max(lat_direct)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--step-every", type=float, default=1.5)
    args = parser.parse_args(argv)
    ov = bench_overview(args.apps, args.repeat)
    print(f"overview of {ov['apps']} applications, server time: {ov['warm_ms']:.0f} ms median, {ov['max_ms']:.0f} ms "
          f"max of {args.repeat} (as served: records parsed at start); a console that skipped the start-up "
          f"parse: {ov['first_ms']:.0f} ms for its first; baseline status() with a fresh Store "
          f"{ov['status_ms']:.0f} ms -> {ov['warm_ms'] / ov['status_ms']:.2f}x; goal < 300 ms: "
          f"{'met' if ov['warm_ms'] < 300 else 'MISSED'} (median)")
    lv = bench_live(args.steps, args.step_every)
    print(f"live progress: {lv['seen']}/{lv['steps']} steps reached the page, latency median "
          f"{lv['console_median'] * 1000:.0f} ms, max {lv['console_max'] * 1000:.0f} ms; baseline (Temporal "
          f"polled directly) median {lv['direct_median'] * 1000:.0f} ms, max {lv['direct_max'] * 1000:.0f} ms "
          f"-> {lv['console_median'] / max(lv['direct_median'], 1e-3):.2f}x; goal < 1 s: "
          f"{'met' if lv['console_max'] < 1.0 and lv['seen'] == lv['steps'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
