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
