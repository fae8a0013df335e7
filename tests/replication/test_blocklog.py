"""Seal digests taken during the copy (replication/blocklog.py): the seal reads no data again when the
copy logged its blocks, gives the same map as reading the layer back, falls back to reading what the
log does not name, and a deep verify still rechecks from disk (a wrong logged digest is caught)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.replication.test_points import MIB, SIZE, _group, _repack, pkg  # noqa: F401 - fixture
from vmferry.errors import ReplicationError
from vmferry.replication import blocklog, imageio, points
from vmferry.replication.model import Extent
from vmferry.replication.store import Store

BS = imageio.BLOCK_SIZE


def test_align_widens_to_whole_blocks_and_stops_at_the_disk_end():
    size = 10 * BS + 100
    assert blocklog.align([Extent(BS + 5, 10), Extent(0, 0)], BS, size) == [Extent(BS, BS)]
    assert blocklog.align([Extent(10 * BS + 3, 50)], BS, size) == [Extent(10 * BS, 100)]
    assert blocklog.align([Extent(2 * BS, 3 * BS)], BS, size) == [Extent(2 * BS, 3 * BS)]


def test_log_keeps_the_last_record_ignores_a_torn_one_and_refuses_a_foreign_block(tmp_path):
    path = str(tmp_path / "d.blocks")
    assert blocklog.read_log(path, 4 * BS, BS) is None
    with blocklog.BlockLog(path, BS, 4 * BS) as log:
        data = os.urandom(2 * BS)
        log.add(Extent(BS, 2 * BS), log.hash(Extent(BS, 2 * BS), data))
        log.add(Extent(BS, BS), [b"x" * 32])
        log.flush()
        with pytest.raises(ReplicationError, match="whole"):
            log.hash(Extent(BS + 1, BS), data[:BS])
    with open(path, "ab") as fh:
        fh.write(b"\0" * 17)   # a torn record
    got = blocklog.read_log(path, 4 * BS, BS)
    assert got == {1: b"x" * 32, 2: imageio.block_hash(data[BS:])}
    with open(path, "ab") as fh:
        fh.truncate(2 * blocklog.RECORD)
        fh.write((9).to_bytes(8, "big") + b"y" * 32)
    with pytest.raises(ReplicationError, match="block 9"):
        blocklog.read_log(path, 4 * BS, BS)


def _sync_keep_draft(store, ref):
    draft = points.begin_point("shop", store=store)
    points.sync_disk(draft, ref, store=store)
    return draft


def test_seal_uses_the_copy_digests_without_reading_the_layer(tmp_path, pkg, monkeypatch):  # noqa: F811
    raw, data, ova = pkg
    store = Store(tmp_path / "state")
    _, ref = _group(store, tmp_path, ova)
    draft = _sync_keep_draft(store, ref)
    assert os.path.getsize(os.path.join(draft.draft_dir, f"{ref.key}.blocks")) > 0

    def no_read(*_a, **_k):
        raise AssertionError("the seal read the layer again")

    with monkeypatch.context() as m:
        m.setattr(imageio, "open_image", no_read)
        p1 = points.seal_point(draft, store=store)
    group = store.load("shop")
    assert points.verify_point(group, p1.point_id, deep=True) == []
    assert not os.path.exists(os.path.join(points.point_dir(group, p1.point_id), f"{ref.key}.blocks"))

    # an incremental point: its logged map equals the map read back from the chain
    data[3 * MIB:3 * MIB + 10] = b"0123456789"
    _repack(raw, data, tmp_path)
    draft = _sync_keep_draft(store, ref)
    logged = points._point_map(store.load("shop"), draft, ref)
    assert logged == points._reread_map(store.load("shop"), draft, ref)
    with monkeypatch.context() as m:
        m.setattr(imageio, "open_image", no_read)
        p2 = points.seal_point(draft, store=store)
    assert points.verify_point(store.load("shop"), p2.point_id, deep=True) == []


def test_blocks_the_log_misses_are_read_back_and_a_wrong_log_fails_deep_verify(tmp_path, pkg):  # noqa: F811
    raw, data, ova = pkg
    store = Store(tmp_path / "state")
    _, ref = _group(store, tmp_path, ova)
    draft = _sync_keep_draft(store, ref)
    log = Path(draft.draft_dir, f"{ref.key}.blocks")
    log.write_bytes(b"")          # an empty log: every block the layer holds is read back
    p1 = points.seal_point(draft, store=store)
    assert points.verify_point(store.load("shop"), p1.point_id, deep=True) == []

    # what the guest repair does before it writes a draft's layer: no log, the seal reads the layer back
    data[1 * MIB:1 * MIB + 10] = b"abcdefghij"
    _repack(raw, data, tmp_path)
    draft = _sync_keep_draft(store, ref)
    points.forget_copy_digests(draft, ref)
    assert not Path(draft.draft_dir, f"{ref.key}.blocks").exists()
    p1 = points.seal_point(draft, store=store)
    assert points.verify_point(store.load("shop"), p1.point_id, deep=True) == []

    data[2 * MIB:2 * MIB + 10] = b"ABCDEFGHIJ"
    _repack(raw, data, tmp_path)
    draft = _sync_keep_draft(store, ref)
    log = Path(draft.draft_dir, f"{ref.key}.blocks")
    records = log.read_bytes()
    assert records, "the change was logged"
    log.write_bytes(records[:8] + b"\xff" * 32 + records[blocklog.RECORD:])   # a digest that is not the data's
    p2 = points.seal_point(draft, store=store)
    problems = points.verify_point(store.load("shop"), p2.point_id, deep=True)
    assert any("content differs" in p for p in problems)
    # the layer's file digest takes its data clusters' hashes from the same log: it shows too
    assert any("layer file digest differs" in p for p in problems)
