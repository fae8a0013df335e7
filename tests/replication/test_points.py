"""Recovery points on real qcow2 chains (qemu-img, qemu-nbd through libnbd) and the package change
source: first full copy, changed blocks only, data of one sync in the next point and not the previous,
sealing digests and verification, resumable copies, abandon, retention merges."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.replication.conftest import make_ova
from vmferry.errors import ReplicationError
from vmferry.replication import imageio, points, retention
from vmferry.replication.model import DiskRef, Extent
from vmferry.replication.store import ProtectionGroup, ReplicaVm, Store

MIB = 1 << 20
SIZE = 6 * MIB
BS = imageio.BLOCK_SIZE


def _raw(path: Path) -> bytearray:
    data = bytearray(SIZE)
    data[0:MIB] = os.urandom(MIB)                 # some data, the rest zeros (sparse in the VMDK)
    data[4 * MIB:4 * MIB + 300_000] = os.urandom(300_000)
    path.write_bytes(data)
    return data


@pytest.fixture
def pkg(tmp_path):
    raw = tmp_path / "disk.raw"
    data = _raw(raw)
    ova = make_ova(raw, tmp_path, "web")
    return raw, data, ova


def _group(store: Store, tmp_path: Path, ova: Path, keep: int = 3) -> tuple[ProtectionGroup, DiskRef]:
    ref = DiskRef("shop", "web", "shop-web", "vmdisk1", SIZE)
    vm = ReplicaVm("web", "shop-web", "package", str(ova), "web", (ref,), "vms/shop-web/domain.xml", None,
                   False, "ready")
    group = ProtectionGroup("shop", str(tmp_path / "app.yaml"), "dc1", "dr", "test:///default", None,
                            str(tmp_path / "dr" / "shop"), 900, keep, points.now_iso(), (vm,))
    store.save(group)
    return group, ref


def _content(store: Store, point_id: str, key: str = "shop-web.vmdisk1") -> bytes:
    group = store.load("shop")
    with imageio.open_image(points.chain_spec(group, group.point(point_id), key)) as image:
        return image.pread(image.size, 0)


def _sync(store: Store, ref: DiskRef, **kw):
    draft = points.begin_point("shop", store=store)
    result = points.sync_disk(draft, ref, store=store, **kw)
    return result, points.seal_point(draft, store=store)


def _repack(raw: Path, data: bytearray, tmp_path: Path) -> None:
    raw.write_bytes(data)
    make_ova(raw, tmp_path, "web")


def test_package_sync_writes_only_changed_blocks_and_points_keep_their_data(tmp_path, pkg):
    raw, data, ova = pkg
    store = Store(tmp_path / "state")
    _group(store, tmp_path, ova)
    first, p1 = _sync(store, DiskRef("shop", "web", "shop-web", "vmdisk1", SIZE))
    assert first.full and first.bytes_written == SIZE and first.bytes_read == SIZE
    assert _content(store, p1.point_id) == bytes(data)

    # the package is refreshed: 10 bytes in block 1, 10 bytes across blocks 40/41, one zero block made data
    data[100_000:100_010] = b"0123456789"
    data[41 * BS - 5:41 * BS + 5] = b"ABCDEFGHIJ"
    data[5 * MIB:5 * MIB + 100] = b"z" * 100
    _repack(raw, data, tmp_path)
    ref = store.load("shop").vms[0].disks[0]
    second, p2 = _sync(store, ref)
    changed = 4 * BS   # blocks 1, 40, 41, 80
    assert (second.bytes_read, second.bytes_written, second.extents, second.full) == (changed, changed, 3, False)
    group = store.load("shop")
    layer = os.path.join(points.point_dir(group, p2.point_id), "shop-web.vmdisk1.qcow2")
    assert sum(n for _, n in points.layer_extents(layer)) == changed      # the layer holds just those blocks
    new, old = _content(store, p2.point_id), _content(store, p1.point_id)
    assert new == bytes(data)
    assert new[100_000:100_010] == b"0123456789" and old[100_000:100_010] != b"0123456789"
    assert old[5 * MIB:5 * MIB + 100] == bytes(100)
    assert p2.parent == p1.point_id and p2.bytes_written == changed

    # nothing changed: nothing written, and the point still reads the same
    third, p3 = _sync(store, ref)
    assert (third.bytes_written, third.extents) == (0, 0)
    assert _content(store, p3.point_id) == bytes(data)
    group = store.load("shop")
    assert all(points.verify_point(group, p.point_id) == [] for p in group.points)


def test_verify_detects_a_changed_layer_and_a_changed_ancestor(tmp_path, pkg):
    raw, data, ova = pkg
    store = Store(tmp_path / "state")
    _, ref = _group(store, tmp_path, ova)
    _, p1 = _sync(store, ref)
    data[0:4] = b"XXXX"
    _repack(raw, data, tmp_path)
    _, p2 = _sync(store, ref)
    group = store.load("shop")
    layer1 = Path(points.point_dir(group, p1.point_id)) / "shop-web.vmdisk1.qcow2"
    assert not os.access(layer1, os.W_OK) or os.geteuid() == 0
    assert oct(layer1.stat().st_mode & 0o222) == "0o0"        # sealed layers are read-only
    # flip one guest byte inside the base layer through qemu-io-free means: qemu-nbd on the layer alone
    layer1.chmod(0o600)
    with imageio.open_image(points.ImageSpec(str(layer1), "qcow2"), writable=True) as image:
        image.pwrite(b"\xff", 3 * MIB)
    problems1 = points.verify_point(group, p1.point_id)
    problems2 = points.verify_point(group, p2.point_id)
    assert any("file digest" in p for p in problems1) and any("content differs" in p for p in problems1)
    assert any("content differs" in p for p in problems2)      # p2 reads that block through p1
    assert points.verify_point(group, p2.point_id, deep=False) == []   # its own layer is untouched


def test_resumed_copy_moves_at_most_the_remainder_plus_one_chunk(tmp_path, pkg):
    _, data, ova = pkg
    store = Store(tmp_path / "state")
    _, ref = _group(store, tmp_path, ova)
    draft = points.begin_point("shop", store=store)
    beats: list[int] = []

    def dying(done: int) -> None:
        beats.append(done)
        if done >= points.COPY_CHUNK:
            raise KeyboardInterrupt("worker killed")

    with pytest.raises(KeyboardInterrupt):   # at 2 MiB/s the second chunk waits: a heartbeat comes first
        points.sync_disk(draft, ref, heartbeat=dying, store=store, max_rate=2 * MIB)
    assert beats[-1] == points.COPY_CHUNK and set(beats[:-1]) == {0} and len(beats) > 1   # 0: alive while hashing
    again = points.begin_point("shop", store=store)            # a retried begin returns the open draft
    assert again == draft
    later: list[int] = []
    resumed = points.sync_disk(draft, ref, resume_at=beats[-1], store=store, heartbeat=later.append)
    assert min(later) == points.COPY_CHUNK and later[-1] == SIZE   # never back to 0: a second kill resumes too
    assert resumed.resumed_at == points.COPY_CHUNK
    assert resumed.bytes_written <= SIZE - beats[-1] + points.COPY_CHUNK
    assert resumed.bytes_written == SIZE - points.COPY_CHUNK
    point = points.seal_point(draft, store=store)
    assert _content(store, point.point_id) == bytes(data)
    assert points.verify_point(store.load("shop"), point.point_id) == []


def test_abandoned_draft_leaves_nothing_and_is_never_a_point(tmp_path, pkg):
    _, _, ova = pkg
    store = Store(tmp_path / "state")
    group, ref = _group(store, tmp_path, ova)
    _, p1 = _sync(store, ref)
    before = sorted(os.listdir(group.points_dir))
    draft = points.begin_point("shop", store=store)
    points.sync_disk(draft, ref, store=store)
    assert store.load("shop").draft == draft and os.path.isdir(draft.draft_dir)
    assert [p.point_id for p in store.load("shop").points] == [p1.point_id]
    points.abandon_point(draft, store=store)
    assert store.load("shop").draft is None
    assert sorted(os.listdir(group.points_dir)) == before
    with pytest.raises(ReplicationError, match="not the open draft"):
        points.seal_point(draft, store=store)
    # a stale draft is dropped by a sync that must not reuse it
    stale = points.begin_point("shop", store=store)
    fresh = points.begin_point("shop", store=store, reuse_open=False)
    assert fresh.point_id != stale.point_id and not os.path.exists(stale.draft_dir)


def test_seal_interrupted_after_the_rename_is_finished_by_the_next_call(tmp_path, pkg, monkeypatch):
    _, _, ova = pkg
    store = Store(tmp_path / "state")
    _, ref = _group(store, tmp_path, ova)
    draft = points.begin_point("shop", store=store)
    points.sync_disk(draft, ref, store=store)
    real_save = Store.save
    calls = []

    def crash_on_publish(self, group):
        if group.draft is None and group.points:
            calls.append(group)
            raise KeyboardInterrupt("killed between rename and record")
        real_save(self, group)

    monkeypatch.setattr(Store, "save", crash_on_publish)
    with pytest.raises(KeyboardInterrupt):
        points.seal_point(draft, store=store)
    monkeypatch.setattr(Store, "save", real_save)
    assert calls and store.load("shop").points == ()
    point = points.seal_point(draft, store=store)
    assert [p.point_id for p in store.load("shop").points] == [point.point_id]
    assert store.load("shop").draft is None


def test_retention_merges_older_points_without_changing_what_kept_points_hold(tmp_path, pkg):
    raw, data, ova = pkg
    store = Store(tmp_path / "state")
    _, ref = _group(store, tmp_path, ova, keep=2)
    ids, contents = [], []
    for i in range(4):
        data[i * 2 * BS:i * 2 * BS + 8] = f"point{i:03d}".encode()
        _repack(raw, data, tmp_path)
        _, p = _sync(store, ref)
        ids.append(p.point_id)
        contents.append(_content(store, p.point_id))
    digests = {p.point_id: p.disks[0].content_digest for p in store.load("shop").points}
    group = store.load("shop")
    # the sealed layers' piece hashes sit beside them; one of them damaged is not trusted by the merge
    side = points.pieces_path(points.point_dir(group, ids[0]), ref.key)
    layer = os.path.join(points.point_dir(group, ids[0]), group.point(ids[0]).disks[0].file)
    assert open(side, "rb").read() == b"".join(imageio.layer_pieces(layer))
    os.chmod(side, 0o600)
    with open(side, "r+b") as fh:
        fh.write(b"\xff" * 32)
    merged = retention.apply_retention("shop", store=store)
    assert merged == ids[:2]
    group = store.load("shop")
    assert [p.point_id for p in group.points] == ids[2:]
    oldest = group.points[0]
    assert oldest.parent is None and oldest.merged_from == tuple(ids[:2])
    assert sorted(os.listdir(group.points_dir)) == sorted(ids[2:])
    for pid, content in zip(ids[2:], contents[2:], strict=True):
        assert _content(store, pid) == content
        assert group.point(pid).disks[0].content_digest == digests[pid]
        assert points.verify_point(group, pid) == []
        pdir, disk = points.point_dir(group, pid), group.point(pid).disks[0]
        assert open(points.pieces_path(pdir, ref.key), "rb").read() == \
            b"".join(imageio.layer_pieces(os.path.join(pdir, disk.file)))
    # the kept base stands alone; the newer layer still names it (libvirt and libguestfs follow the header)
    info = subprocess.run(["qemu-img", "info", "--backing-chain", "--output=json", "-f", "qcow2",
                           os.path.join(points.point_dir(group, ids[3]), "shop-web.vmdisk1.qcow2")],
                          capture_output=True, text=True, check=True)
    assert info.stdout.count('"filename"') == 2


def test_a_package_replaced_after_the_points_moment_is_refused(tmp_path, pkg):
    raw, data, ova = pkg
    store = Store(tmp_path / "state")
    _, ref = _group(store, tmp_path, ova)
    _sync(store, ref)
    draft = points.begin_point("shop", store=store)
    data[0:4] = b"late"
    _repack(raw, data, tmp_path)          # a new export lands between the moment and the copy
    with pytest.raises(ReplicationError, match="changed after the point's moment"):
        points.sync_disk(draft, ref, store=store)
    points.abandon_point(draft, store=store)
    _, p2 = _sync(store, ref)             # the next point takes it
    assert _content(store, p2.point_id)[0:4] == b"late"


def test_storage_pool_resolves_to_its_directory():
    from vmferry.plans.model import LibvirtPlatform
    from vmferry.replication.protect import storage_dir

    assert storage_dir(LibvirtPlatform("test:///default", storage_pool="default-pool")) == "/default-pool"
    with pytest.raises(ReplicationError, match="storage pool 'nope'"):
        storage_dir(LibvirtPlatform("test:///default", storage_pool="nope"))


def test_malformed_inputs_are_refused(tmp_path, pkg):
    _, _, ova = pkg
    store = Store(tmp_path / "state")
    group, ref = _group(store, tmp_path, ova)
    with pytest.raises(ReplicationError, match="not protected"):
        store.load("other")
    with pytest.raises(ReplicationError, match="not a valid application name"):
        store.load("../etc")
    with pytest.raises(ReplicationError, match="not a recovery point id"):
        points.point_dir(group, "../../x")
    draft = points.begin_point("shop", store=store)

    class Outside:
        def extents(self):
            return [Extent(SIZE - 10, 20)]

        def read(self, offset, length):
            return bytes(length)

        def close(self):
            pass

    with pytest.raises(ReplicationError, match="outside disk"):
        points.sync_disk(draft, ref, source=Outside(), store=store)
    (store.groups_dir and Path(store.groups_dir, "shop.json")).write_text('{"app": "shop"}')
    with pytest.raises(ReplicationError, match="malformed"):
        store.load("shop")
