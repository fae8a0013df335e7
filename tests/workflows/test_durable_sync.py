"""Durable syncs on a real Temporal dev server with real worker processes (file-copy library):
kill -9 of the worker mid-copy and a restart resume from the last heartbeat; a cancelled run leaves
nothing behind; each site's activities run on that site's worker; the per-host copy limit holds."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import defaultdict

from tests.workflows.conftest import activity_runs, history_events, run
from tests.workflows.filelib import CHUNK, FileCopyLibrary, sha256_file
from vmferry.replication.model import DiskSyncResult, RecoveryPoint
from vmferry.workflows.endpoint import connect, copy_queue, site_queue
from vmferry.workflows.protection import RunOptions, SyncRequest

FAST = RunOptions(heartbeat=5.0, step=60.0, disk=600.0, retry_first=0.5, retry_max=1.0)


def make_app(root, app: str, disks: dict[str, int], seed: int = 1) -> None:
    folder = root / "sources" / app
    folder.mkdir(parents=True)
    for n, (key, size) in enumerate(sorted(disks.items())):
        block = bytes((seed * 31 + n * 7 + i) % 251 for i in range(4096))
        (folder / key).write_bytes(block * (size // 4096))


def writes_by_pid(root) -> dict[int, int]:
    totals: dict[int, int] = defaultdict(int)
    for line in (root / "writes.log").read_text().splitlines():
        record = json.loads(line)
        totals[record["pid"]] += record["length"]
    return totals


async def pending_heartbeat(handle, data_converter) -> int:
    description = await handle.describe()
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name == "sync_disk" and pending.heartbeat_details.payloads:
            return (await data_converter.decode(pending.heartbeat_details.payloads))[0]
    return 0


def test_kill9_mid_copy_resumes_from_last_heartbeat(temporal, start_worker, tmp_path):
    # 32 chunks of 256 KiB, read one at a time, 0.25 s each: the copy spans several heartbeats (the worker
    # sends one a second at most), so the server keeps one past a quarter of the disk while the copy runs
    size = 8 * 1024 * 1024
    make_app(tmp_path, "shop", {"web.vda": size})
    slow = {"VMFERRY_TEST_CHUNK_DELAY": "0.25"}
    first = start_worker(temporal.address, tmp_path, "--site", "dc1", "--site", "dr", "--workflows", env=slow)

    async def scenario():
        client = await connect(temporal.address)
        handle = await client.start_workflow("SyncWorkflow", SyncRequest("shop", "dc1", "dr", FAST),
                                             id="kill9-shop", task_queue="vmferry",
                                             result_type=RecoveryPoint)
        deadline = time.monotonic() + 60
        while await pending_heartbeat(handle, client.data_converter) < size // 4:
            assert time.monotonic() < deadline, "the copy never heartbeat a quarter of the disk"
            await asyncio.sleep(0.1)
        first.kill9()
        known = await pending_heartbeat(handle, client.data_converter)  # what the server kept
        second = start_worker(temporal.address, tmp_path, "--site", "dc1", "--site", "dr", "--workflows")
        point = await asyncio.wait_for(handle.result(), 120)
        return client, handle, known, second, point

    client, handle, known, second, point = run(scenario())
    assert size // 4 <= known < size, "killed in the middle of the copy"

    events = run(history_events(client, handle.id))
    runs = activity_runs(events)
    sync = [r for r in runs.values() if r["type"] == "sync_disk"]
    assert len(sync) == 1
    started = sync[0]["started"]
    # the history says: a second attempt, after a heartbeat timeout carrying the last byte count
    assert started.attempt >= 2
    assert started.last_failure.timeout_failure_info.timeout_type == 4  # TIMEOUT_TYPE_HEARTBEAT
    assert started.identity == second.identity
    # the completed attempt resumed at the last heartbeat the server kept (rounded down to a chunk)
    result = run(client.data_converter.decode(sync[0]["completed"].result.payloads, [DiskSyncResult]))[0]
    last_beat = known
    remainder = size - last_beat
    assert last_beat - CHUNK < result.resumed_at <= last_beat
    assert result.bytes_written <= remainder + CHUNK
    # ... and so say the bytes each process really read from the source disk
    moved = writes_by_pid(tmp_path)
    assert moved[second.pid] == result.bytes_read <= remainder + CHUNK
    assert moved[first.pid] >= last_beat
    # the point is whole and verifies; nothing half-written remains for a later point or a launch
    library = FileCopyLibrary(tmp_path)
    assert library.points("shop") == [point.point_id]
    assert library.verify("shop", point.point_id) == point
    assert point.disks[0].content_digest == sha256_file(tmp_path / "sources" / "shop" / "web.vda")
    check = subprocess.run(["qemu-img", "check", "-f", "qcow2", tmp_path / "replicas" / "shop" / point.point_id /
                            point.disks[0].file], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert not list((tmp_path / "replicas" / "shop").glob(".*"))
    assert [r["type"] for r in runs.values()].count("seal_point") == 1
    assert "abandon_point" not in [r["type"] for r in runs.values()]


def test_cancelled_run_abandons_its_draft(temporal, start_worker, tmp_path):
    make_app(tmp_path, "crm", {"db.vda": 4 * 1024 * 1024, "db.vdb": 4 * 1024 * 1024})
    start_worker(temporal.address, tmp_path, "--site", "dc1", "--site", "dr", "--workflows",
                 env={"VMFERRY_TEST_CHUNK_DELAY": "0.3"})   # the copy outlasts its first heartbeats

    async def scenario():
        client = await connect(temporal.address)
        handle = await client.start_workflow("SyncWorkflow", SyncRequest("crm", "dc1", "dr", FAST),
                                             id="cancel-crm", task_queue="vmferry")
        deadline = time.monotonic() + 60
        while await pending_heartbeat(handle, client.data_converter) < CHUNK:
            assert time.monotonic() < deadline, "the copy never heartbeat"
            await asyncio.sleep(0.1)
        assert list((tmp_path / "replicas" / "crm").glob(".draft-*"))
        await handle.cancel()
        try:
            await asyncio.wait_for(handle.result(), 60)
        except Exception as exc:  # noqa: BLE001 - the run ends cancelled
            outcome = type(exc).__name__
        else:
            outcome = "completed"
        return client, handle, outcome

    client, handle, outcome = run(scenario())
    assert outcome == "WorkflowFailureError"
    runs = activity_runs(run(history_events(client, handle.id)))
    abandon = [r for r in runs.values() if r["type"] == "abandon_point"]
    assert len(abandon) == 1 and "completed" in abandon[0]
    assert all("completed" not in r for r in runs.values() if r["type"] == "seal_point")
    assert not list((tmp_path / "replicas" / "crm").iterdir()), "neither a draft nor a point remains"


def test_each_site_runs_its_own_activities(temporal, start_worker, tmp_path):
    make_app(tmp_path, "shop", {"web.vda": 1024 * 1024, "db.vda": 1024 * 1024}, seed=3)
    make_app(tmp_path, "crm", {"app.vda": 1024 * 1024}, seed=5)
    dc1 = start_worker(temporal.address, tmp_path, "--site", "dc1", "--workflows")
    dr = start_worker(temporal.address, tmp_path, "--site", "dr")

    async def scenario():
        client = await connect(temporal.address)
        shop = await client.start_workflow("SyncWorkflow", SyncRequest("shop", "dc1", "dr", FAST),
                                           id="sites-shop", task_queue="vmferry")
        crm = await client.start_workflow("SyncWorkflow", SyncRequest("crm", "dr", "dc1", FAST),
                                          id="sites-crm", task_queue="vmferry")
        await asyncio.gather(shop.result(), crm.result())
        return client, [await history_events(client, h.id) for h in (shop, crm)]

    client, (shop_events, crm_events) = run(scenario())
    expect = {  # protected from dc1 to dr: begin and disk copies where the running disks are (dc1),
        # sealing where the replica is (dr)
        "shop": {"begin_point": (dc1, site_queue("dc1")), "sync_disk": (dc1, copy_queue("dc1")),
                 "seal_point": (dr, site_queue("dr"))},
        "crm": {"begin_point": (dr, site_queue("dr")), "sync_disk": (dr, copy_queue("dr")),
                "seal_point": (dc1, site_queue("dc1"))},
    }
    for app, events in (("shop", shop_events), ("crm", crm_events)):
        runs = activity_runs(events)
        kinds = [r["type"] for r in runs.values()]
        assert kinds.count("sync_disk") == (2 if app == "shop" else 1)
        for item in runs.values():
            worker, queue = expect[app][item["type"]]
            assert item["queue"] == queue
            assert item["started"].identity == worker.identity, (app, item["type"])
        workflow_tasks = {e.workflow_task_started_event_attributes.identity for e in events
                          if e.HasField("workflow_task_started_event_attributes")}
        assert workflow_tasks == {dc1.identity}


def test_copies_per_host_are_bounded(temporal, start_worker, tmp_path):
    make_app(tmp_path, "erp", {f"vm{n}.vda": 1024 * 1024 for n in range(3)}, seed=7)
    start_worker(temporal.address, tmp_path, "--site", "dc1", "--site", "dr", "--workflows", "--max-copies", "1",
                 env={"VMFERRY_TEST_CHUNK_DELAY": "0.02"})

    async def scenario():
        client = await connect(temporal.address)
        handle = await client.start_workflow("SyncWorkflow", SyncRequest("erp", "dc1", "dr", FAST),
                                             id="bounded-erp", task_queue="vmferry",
                                             result_type=RecoveryPoint)
        return await handle.result()

    point = run(scenario())
    assert len(point.disks) == 3
    order = [json.loads(line)["disk"] for line in (tmp_path / "writes.log").read_text().splitlines()]
    runs_of_disk = [key for n, key in enumerate(order) if n == 0 or order[n - 1] != key]
    assert sorted(runs_of_disk) == sorted(set(order)), f"copies overlapped: {runs_of_disk}"


def test_a_dead_runs_draft_is_never_picked_up(temporal, start_worker, tmp_path):
    """A run killed with its worker and then terminated (no abandon could run) leaves a half-written
    draft; the next run starts fresh: its point holds only what it copied, and no draft remains."""
    size = 4 * 1024 * 1024
    make_app(tmp_path, "hr", {"app.vda": size}, seed=9)
    first = start_worker(temporal.address, tmp_path, "--site", "dc1", "--site", "dr", "--workflows",
                         env={"VMFERRY_TEST_CHUNK_DELAY": "0.3"})   # the copy outlasts its first heartbeats

    async def scenario():
        client = await connect(temporal.address)
        dead = await client.start_workflow("SyncWorkflow", SyncRequest("hr", "dc1", "dr", FAST),
                                           id="dead-hr", task_queue="vmferry")
        deadline = time.monotonic() + 60
        while await pending_heartbeat(dead, client.data_converter) < CHUNK:
            assert time.monotonic() < deadline, "the copy never heartbeat"
            await asyncio.sleep(0.1)
        first.kill9()
        await dead.terminate("operator gave up on it")
        stale = list((tmp_path / "replicas" / "hr").glob(".draft-*"))
        # the source changes before the next run: a picked-up half-written draft would mix both
        (tmp_path / "sources" / "hr" / "app.vda").write_bytes(bytes(range(256)) * (size // 256))
        start_worker(temporal.address, tmp_path, "--site", "dc1", "--site", "dr", "--workflows")
        fresh = await client.start_workflow("SyncWorkflow", SyncRequest("hr", "dc1", "dr", FAST),
                                            id="fresh-hr", task_queue="vmferry", result_type=RecoveryPoint)
        return stale, await asyncio.wait_for(fresh.result(), 60)

    stale, point = run(scenario())
    assert len(stale) == 1  # the dead run's half-written draft existed
    library = FileCopyLibrary(tmp_path)
    assert library.points("hr") == [point.point_id] and stale[0].name != point.point_id
    assert library.verify("hr", point.point_id).disks[0].content_digest == \
        sha256_file(tmp_path / "sources" / "hr" / "app.vda")
    assert not list((tmp_path / "replicas" / "hr").glob(".*"))
