"""One sync of an application at a time (replication/synclease.py) on real points of a package source:
another owner's open draft is neither reused nor abandoned while that owner lives; a dead owner's is."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.replication.test_points import _group, pkg  # noqa: F401 - fixture
from vmferry.replication import points, synclease
from vmferry.replication.store import Store


def test_a_live_owners_draft_is_kept_a_dead_owners_is_abandoned(tmp_path, pkg):  # noqa: F811
    _raw, _data, ova = pkg
    store = Store(tmp_path / "state")
    _, ref = _group(store, tmp_path, ova)
    first = points.begin_point("shop", store=store, reuse_open=False, owner="workflow:sched/1")
    assert synclease.read(store, "shop")["owner"] == "workflow:sched/1"
    for reuse in (False, True):
        with pytest.raises(synclease.SyncRunning, match=r"already running \(workflow:sched/1, point "):
            points.begin_point("shop", store=store, reuse_open=reuse, owner="workflow:now/2", alive=lambda o: True)
    with pytest.raises(synclease.SyncRunning):   # cannot tell whether it lives: kept
        points.begin_point("shop", store=store, reuse_open=False, owner="workflow:now/2")
    assert store.load("shop").draft == first and os.path.isdir(first.draft_dir)
    # its own retry gets its draft back
    assert points.begin_point("shop", store=store, owner="workflow:sched/1", alive=lambda o: True) == first
    # the owner died: its draft is abandoned and the new sync begins
    second = points.begin_point("shop", store=store, reuse_open=False, owner="workflow:now/2", alive=lambda o: False)
    assert second.point_id != first.point_id and not os.path.exists(first.draft_dir)
    points.sync_disk(second, ref, store=store)
    points.seal_point(second, store=store)
    assert synclease.read(store, "shop") is None
    # abandon releases too
    third = points.begin_point("shop", store=store, reuse_open=False, owner="workflow:x/3")
    points.abandon_point(third, store=store)
    assert synclease.read(store, "shop") is None and store.load("shop").draft is None


def test_process_owners_are_alive_while_their_process_runs():
    assert synclease.process_alive(synclease.process_owner())
    child = subprocess.Popen(["true"])
    child.wait()
    host = synclease.process_owner().split(":")[1]
    assert not synclease.process_alive(f"process:{host}:{child.pid}")
    assert synclease.process_alive("process:other-host:1")   # cannot be asked here: kept
