"""Durable syncs over vmferry's own replication library (replication/points.py: qcow2 chain, package
change source by block hashes) run by the real ``vmferry worker`` command on a real Temporal server:
kill -9 of the worker in the middle of a disk copy, a restart, and the point is whole and verifies;
``vmferry sync --temporal`` then takes the next point through the workflow with JSON progress."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from tests.conftest import run_vmferry
from tests.replication.conftest import make_ova
from tests.workflows.conftest import activity_runs, history_events, run
from tests.workflows.test_durable_sync import FAST, pending_heartbeat
from vmferry.replication import imageio, points
from vmferry.replication.model import DiskRef, DiskSyncResult, RecoveryPoint
from vmferry.replication.store import ProtectionGroup, ReplicaVm, Store
from vmferry.workflows.endpoint import connect
from vmferry.workflows.protection import SyncRequest

MIB = 1024 * 1024
SIZE = 96 * MIB
CHUNK = points.COPY_CHUNK
RATE = 8 * MIB   # the group's bandwidth limit: the first copy takes 12 s, time to kill the worker in it


def disk_bytes(seed: int) -> bytearray:
    """Every 64 KiB block different (its index and the seed), compressible so the OVA packs fast."""
    data = bytearray(SIZE)
    for n in range(SIZE // 65536):
        block = f"block {n} seed {seed} ".encode() * 16
        data[n * 65536:n * 65536 + len(block)] = block
    return data


def content(store: Store, point_id: str, key: str) -> bytes:
    group = store.load("shop")
    with imageio.open_image(points.chain_spec(group, group.point(point_id), key)) as image:
        return image.pread(image.size, 0)


@pytest.fixture
def protected(tmp_path):
    """The application ``shop`` (one VM, one disk from an OVA refreshed from time to time) recorded as
    protected from dc1 to dr with a replication bandwidth limit, no point yet."""
    raw = tmp_path / "disk.raw"
    data = disk_bytes(1)
    raw.write_bytes(data)
    ova = make_ova(raw, tmp_path, "web")
    state = tmp_path / "state"
    store = Store(state)
    ref = DiskRef("shop", "web", "shop-web", "vmdisk1", SIZE)
    vm = ReplicaVm("web", "shop-web", "package", str(ova), "web", (ref,), "vms/shop-web/domain.xml", None, False,
                   "ready")
    store.save(ProtectionGroup("shop", str(tmp_path / "app.yaml"), "dc1", "dr", "test:///default", None,
                               str(tmp_path / "dr" / "shop"), 900, 3, points.now_iso(), (vm,), max_rate=RATE))
    return store, ref, raw, data


def test_kill9_of_vmferry_worker_mid_copy_then_restart(temporal, start_vmferry_worker, protected, tmp_path):
    store, ref, raw, data = protected
    env = {"VMFERRY_STATE": str(store.root)}
    worker_args = ("--site", "dc1", "--site", "dr", "--workflows", "--temporal", temporal.address)
    first = start_vmferry_worker(*worker_args, env=env)

    async def scenario():
        client = await connect(temporal.address)
        handle = await client.start_workflow("SyncWorkflow", SyncRequest("shop", "dc1", "dr", FAST),
                                             id="real-kill9", task_queue="vmferry", result_type=RecoveryPoint)
        deadline = time.monotonic() + 120
        while await pending_heartbeat(handle, client.data_converter) < CHUNK:
            assert time.monotonic() < deadline, "the copy never heartbeat"
            await asyncio.sleep(0.05)
        os.kill(first.pid, signal.SIGSTOP)  # frozen mid-copy: the moment of the kill is this one
        known = await pending_heartbeat(handle, client.data_converter)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        second = start_vmferry_worker(*worker_args, env=env)
        point = await asyncio.wait_for(handle.result(), 180)
        return client, handle, known, second, point

    client, handle, known, second, point = run(scenario())
    assert CHUNK <= known < SIZE, "killed in the middle of the copy"
    runs = activity_runs(run(history_events(client, handle.id)))
    copy = [r for r in runs.values() if r["type"] == "sync_disk"]
    assert len(copy) == 1
    started = copy[0]["started"]
    assert started.attempt >= 2 and started.last_failure.timeout_failure_info.timeout_type == 4  # heartbeat
    assert started.identity.startswith(f"{second.pid}@")
    result = run(client.data_converter.decode(copy[0]["completed"].result.payloads, [DiskSyncResult]))[0]
    assert known - CHUNK < result.resumed_at <= known
    assert result.bytes_read <= SIZE - known + CHUNK and result.bytes_written <= SIZE - known + CHUNK
    # whole, verified, and nothing of the interrupted attempt left to be picked up
    group = store.load("shop")
    assert [p.point_id for p in group.points] == [point.point_id] and group.draft is None
    assert points.verify_point(group, point.point_id) == []
    assert content(store, point.point_id, ref.key) == bytes(data)
    assert [n for n in os.listdir(group.points_dir) if n.startswith(".")] == []

    # the next point through `vmferry sync` on the Temporal service: only the changed blocks travel
    data[40 * MIB:40 * MIB + 200_000] = os.urandom(200_000)
    raw.write_bytes(data)
    make_ova(raw, tmp_path, "web")
    synced = run_vmferry("sync", "shop", "--json", "--temporal", temporal.address, env={"VMFERRY_STATE": str(store.root)},
                         timeout=180)
    assert synced.returncode == 0, synced.stderr
    second_point = json.loads(synced.stdout)
    assert second_point["parent"] == point.point_id
    events = [json.loads(line) for line in synced.stderr.splitlines()]
    assert {e["step"] for e in events} == {f"sync {ref.key}"} and events[-1]["event"] == "end"
    assert 200_000 <= second_point["bytes_written"] <= 200_000 + 2 * imageio.BLOCK_SIZE
    assert events[-1]["done"] == second_point["disks"][0]["bytes_written"]
    assert content(store, second_point["point_id"], ref.key) == bytes(data)
    assert content(store, point.point_id, ref.key) != bytes(data)  # the older point is unchanged


def test_two_vmferry_workers_two_sites_each_runs_its_own_disks(temporal, start_vmferry_worker, tmp_path):
    """``shop`` runs at dc1 (replica at dr), ``crm`` runs at dr (replica at dc1); one ``vmferry worker``
    per site: every disk copy runs on the worker of the site holding the running disk, every seal on
    the worker of the replica's site (from the histories)."""
    store = Store(tmp_path / "state")
    for app, source, target in (("shop", "dc1", "dr"), ("crm", "dr", "dc1")):
        refs, vms = [], []
        for name in ("web", "db"):
            raw = tmp_path / f"{app}-{name}.raw"
            raw.write_bytes(bytes(disk_bytes(len(app) + len(name))[:8 * MIB]))
            ova = make_ova(raw, tmp_path, f"{app}-{name}")
            ref = DiskRef(app, name, f"{app}-{name}", "vmdisk1", 8 * MIB)
            refs.append(ref)
            vms.append(ReplicaVm(name, f"{app}-{name}", "package", str(ova), f"{app}-{name}", (ref,),
                                 f"vms/{app}-{name}/domain.xml", None, False, "ready"))
        store.save(ProtectionGroup(app, str(tmp_path / f"{app}.yaml"), source, target, "test:///default", None,
                                   str(tmp_path / target / app), 900, 3, points.now_iso(), tuple(vms)))
    env = {"VMFERRY_STATE": str(store.root)}
    dc1 = start_vmferry_worker("--site", "dc1", "--workflows", "--temporal", temporal.address, env=env)
    dr = start_vmferry_worker("--site", "dr", "--temporal", temporal.address, env=env)

    async def scenario():
        client = await connect(temporal.address)
        handles = [await client.start_workflow("SyncWorkflow", SyncRequest(app, source, target, FAST),
                                               id=f"two-sites-{app}", task_queue="vmferry")
                   for app, source, target in (("shop", "dc1", "dr"), ("crm", "dr", "dc1"))]
        await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 180)
        return client, [await history_events(client, h.id) for h in handles]

    client, histories = run(scenario())
    pid_of = {"dc1": dc1.pid, "dr": dr.pid}
    for (app, source, target), events in zip((("shop", "dc1", "dr"), ("crm", "dr", "dc1")), histories, strict=True):
        runs = activity_runs(events)
        where = {"begin_point": source, "sync_disk": source, "seal_point": target}
        assert sorted(r["type"] for r in runs.values()) == ["begin_point", "seal_point", "sync_disk", "sync_disk"]
        for item in runs.values():
            assert item["started"].identity.startswith(f"{pid_of[where[item['type']]]}@"), (app, item["type"])
        group = store.load(app)
        assert len(group.points) == 1 and points.verify_point(group, group.points[0].point_id) == []


def test_a_second_sync_while_one_runs_is_refused_and_the_first_point_is_whole(temporal, start_vmferry_worker,
                                                                              protected, tmp_path):
    """A hand-started sync (``vmferry-sync-<app>-now``) while a scheduled-like one copies: the second is
    refused with a clear message (replication/synclease.py), the first one's point is not discarded."""
    store, ref, raw, data = protected
    env = {"VMFERRY_STATE": str(store.root)}
    start_vmferry_worker("--site", "dc1", "--site", "dr", "--workflows", "--temporal", temporal.address, env=env)

    async def scenario():
        client = await connect(temporal.address)
        first = await client.start_workflow("SyncWorkflow", SyncRequest("shop", "dc1", "dr", FAST),
                                            id="vmferry-sync-shop-2026-12-01T06:00:00Z", task_queue="vmferry",
                                            result_type=RecoveryPoint)
        deadline = time.monotonic() + 120
        while await pending_heartbeat(first, client.data_converter) < CHUNK:
            assert time.monotonic() < deadline, "the copy never heartbeat"
            await asyncio.sleep(0.05)
        second = await client.start_workflow("SyncWorkflow", SyncRequest("shop", "dc1", "dr", FAST),
                                             id="vmferry-sync-shop-now", task_queue="vmferry",
                                             result_type=RecoveryPoint)
        try:
            await asyncio.wait_for(second.result(), 60)
        except Exception as exc:   # WorkflowFailureError, its cause the activity's error
            failure = exc
        else:
            failure = None
        still_open = store.load("shop").draft
        point = await asyncio.wait_for(first.result(), 180)
        return failure, still_open, point

    failure, still_open, point = run(scenario())
    assert failure is not None, "the second sync ran beside the first"
    text = repr(failure) + repr(getattr(failure, "cause", None)) + repr(getattr(getattr(failure, "cause", None),
                                                                              "cause", None))
    assert "already running" in text and "vmferry-sync-shop-2026-12-01T06:00:00Z" in text
    assert "'attempt': 2" not in (tmp_path / "worker-0.log").read_text(), "a refusal is not retried"
    assert still_open is not None and still_open.point_id == point.point_id   # the first draft was kept
    group = store.load("shop")
    assert [p.point_id for p in group.points] == [point.point_id] and group.draft is None
    assert points.verify_point(group, point.point_id) == []
    assert content(store, point.point_id, ref.key) == bytes(data)
    assert not os.path.exists(os.path.join(store.groups_dir, "shop.sync")), "the lease went with the seal"
