"""The planned failover's final point is the application's only sync while it is taken: a sync already
running (a scheduled one) is neither abandoned nor overtaken — the final sync waits for it to end, then
takes its own point, the newest (recovery/source.final_sync over real points of a package source)."""

from __future__ import annotations

import os
import threading

import pytest

from tests.replication.test_points import _group, pkg  # noqa: F401 - fixture
from vmferry.errors import RecoveryError
from vmferry.recovery.source import final_sync
from vmferry.replication import points, synclease
from vmferry.replication.store import Store


def test_the_final_point_waits_for_a_running_sync_and_is_the_newest(tmp_path, pkg):  # noqa: F811
    _raw, _data, ova = pkg
    store = Store(tmp_path / "state")
    group, ref = _group(store, tmp_path, ova)
    running = points.begin_point("shop", store=store, reuse_open=False, owner="workflow:vmferry-sync-shop/1")
    said: list[str] = []
    waited = threading.Event()

    def other_sync_ends() -> None:       # the scheduled sync finishes its copy and seals while we wait
        assert waited.wait(60)
        assert os.path.isdir(running.draft_dir)          # not abandoned by the final sync
        points.sync_disk(running, ref, store=store)
        points.seal_point(running, store=store)

    def say(msg: str) -> None:
        said.append(msg)
        if msg.startswith("waiting for the running sync"):
            waited.set()

    other = threading.Thread(target=other_sync_ends)
    other.start()
    try:
        final = final_sync(store.load("shop"), store=store, say=say, lease_wait=60)
    finally:
        waited.set()
        other.join(60)
    group = store.load("shop")
    assert [p.point_id for p in group.points] == [running.point_id, final.point_id]
    assert final.parent == running.point_id and group.newest.point_id == final.point_id
    assert group.draft is None and synclease.read(store, "shop") is None
    assert any("workflow:vmferry-sync-shop/1" in m for m in said)


def test_a_sync_that_never_ends_fails_the_final_sync_and_keeps_its_point(tmp_path, pkg):  # noqa: F811
    _raw, _data, ova = pkg
    store = Store(tmp_path / "state")
    _group(store, tmp_path, ova)
    running = points.begin_point("shop", store=store, reuse_open=False, owner="workflow:vmferry-sync-shop/1")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(RecoveryError, match=r"another sync of the application still holds its open point after "
                                            r"30 s .*workflow:vmferry-sync-shop/1"):
        final_sync(store.load("shop"), store=store, lease_wait=30, clock=lambda: now[0], sleep=sleep)
    assert 30 <= now[0] <= 33
    assert store.load("shop").draft == running and os.path.isdir(running.draft_dir)
    assert synclease.read(store, "shop")["owner"] == "workflow:vmferry-sync-shop/1"


def test_a_dead_owner_is_not_waited_for_a_live_one_is(tmp_path, pkg):  # noqa: F811
    """The durable final sync asks Temporal (real dev server) about a workflow owner and the kernel about a
    process owner: a run that no longer runs, or a dead process, has its open point abandoned at once; a
    workflow run that still runs is waited for."""
    import asyncio
    import socket
    import subprocess
    import sys
    import uuid

    from temporalio.client import Client

    from vmferry.workflows.activities import owner_alive
    from vmferry.workflows.server import DevServer

    _raw, _data, ova = pkg
    store = Store(tmp_path / "state")
    _group(store, tmp_path, ova)
    server = DevServer(tmp_path / "temporal").start()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        client = asyncio.run_coroutine_threadsafe(Client.connect(server.address), loop).result(60)
        # a workflow run that still runs (no worker serves its queue: it stays open)
        live = asyncio.run_coroutine_threadsafe(client.start_workflow(
            "SyncWorkflow", "x", id="vmferry-sync-shop", task_queue="nobody-serves-this"), loop).result(60)
        alive = owner_alive(client, loop)
        dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                  text=True, check=True).stdout.strip()
        ended = asyncio.run_coroutine_threadsafe(client.start_workflow(
            "SyncWorkflow", "x", id="vmferry-sync-old", task_queue="nobody-serves-this"), loop).result(60)
        asyncio.run_coroutine_threadsafe(ended.terminate(), loop).result(60)
        owners = {f"workflow:vmferry-sync-shop/{uuid.uuid4()}": False,              # no such run
                  f"workflow:vmferry-sync-old/{ended.result_run_id}": False,        # a run that ended
                  f"process:{socket.gethostname()}:{dead_pid}": False,
                  f"workflow:vmferry-sync-shop/{live.result_run_id}": True}
        for owner, expected in owners.items():
            stale = points.begin_point("shop", store=store, reuse_open=False, owner=owner)
            now = [0.0]

            def sleep(seconds: float, now=now) -> None:
                now[0] += seconds

            if expected:
                with pytest.raises(RecoveryError, match="still holds its open point after 20 s"):
                    final_sync(store.load("shop"), store=store, lease_wait=20, clock=lambda now=now: now[0],
                               sleep=sleep, alive=alive)
                assert store.load("shop").draft == stale
                points.abandon_point(stale, store=store)
            else:
                final = final_sync(store.load("shop"), store=store, lease_wait=20, clock=lambda now=now: now[0],
                                   sleep=sleep, alive=alive)
                assert now[0] == 0.0, owner                              # not waited for
                assert not os.path.isdir(stale.draft_dir)                 # its open point abandoned
                assert store.load("shop").newest.point_id == final.point_id
        asyncio.run_coroutine_threadsafe(live.terminate(), loop).result(60)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.stop()
