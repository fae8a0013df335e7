"""Recovery points: a qcow2 layer chain per disk, sealed with digests, verified (retention: replication/retention.py).

Layout in the replica directory (the target site's storage)::

    points/<point_id>/<vm>.<disk>.qcow2   the point's layer: only what changed since the parent point,
                                          backed by ../<parent_id>/<vm>.<disk>.qcow2 (qcow2, relative)
    points/<point_id>/<vm>.<disk>.map     SHA-256 of every 64 KiB block of the disk as the guest sees it
    points/<point_id>/<vm>.<disk>.pieces  SHA-256 of every 64 KiB piece of the layer file (its file digest's
                                          parts: retention re-reads only the pieces a merge changed)
    points/<point_id>/<vm>.<disk>.sync.json   what sync_disk moved (bytes read/written, extents)
    points/.draft-<point_id>/<vm>.<disk>.blocks   block hashes taken while copying (replication/blocklog.py;
                                          folded into the .map at sealing, then removed)
    points/<point_id>/point.json          the sealed RecoveryPoint
    points/.draft-<point_id>/             a point being written: never read as a point

vmferry builds every chain it opens from its records (``ImageSpec`` with explicit backing nodes), never
from the qcow2 headers; the headers' relative names are for libvirt and libguestfs. Why a chain and how
retention merges without changing what any kept point holds: docs/replication.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

from vmferry.disks.qcow2_map import data_clusters, held_ranges
from vmferry.disks.qcow2_write import create_image
from vmferry.errors import ReplicationError, VmferryError
from vmferry.replication import blocklog, copy, imageio, synclease
from vmferry.replication.model import (
    ChangeSource,
    DiskRef,
    DiskSyncResult,
    Heartbeat,
    PointDisk,
    PointDraft,
    RecoveryPoint,
    VmSession,
    dumps,
    from_json,
    loads,
    make_point_id,
    parse_point_id,
    to_json,
)
from vmferry.replication.store import ProtectionGroup, Store
from vmferry.tools import proc
from vmferry.tools.files import fsync_dir
from vmferry.tools.qemu_img import ImageSpec

COPY_CHUNK = copy.CHUNK   # the unit of copying and resumption
DRAFT_PREFIX = ".draft-"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def layer_name(ref: DiskRef) -> str:
    return f"{ref.key}.qcow2"


def point_dir(group: ProtectionGroup, point_id: str) -> str:
    parse_point_id(point_id)   # a malformed id never becomes a path
    return os.path.join(group.points_dir, point_id)


def draft_layer(draft: PointDraft, ref: DiskRef) -> str:
    return os.path.join(draft.draft_dir, layer_name(ref))


def chain_spec(group: ProtectionGroup, point: RecoveryPoint, key: str) -> ImageSpec:
    """The image of disk ``key`` as of ``point``: its layer over its ancestors', from the records."""
    disk = point.disk(key)
    backing = None
    if point.parent is not None:
        backing = chain_spec(group, group.point(point.parent), key)
    return ImageSpec(os.path.join(point_dir(group, point.point_id), disk.file), "qcow2", backing=backing)


def draft_spec(group: ProtectionGroup, draft: PointDraft, ref: DiskRef) -> ImageSpec:
    backing = chain_spec(group, group.point(draft.parent), ref.key) if draft.parent else None
    return ImageSpec(draft_layer(draft, ref), "qcow2", backing=backing)


def qemu_img_step(argv: list[str], what: str, path: str, timeout: float = 3600) -> proc.Result:
    try:
        return proc.run(["qemu-img", *argv], timeout=timeout)
    except VmferryError as exc:
        raise ReplicationError(f"{what} failed: {exc}", path=path) from exc


def create_overlay(path: str, backing: str, size: int) -> None:
    """A new qcow2 layer over ``backing`` (a name relative to ``path``'s directory, or absolute)."""
    if not os.path.exists(os.path.join(os.path.dirname(path), backing)):
        raise ReplicationError(f"the layer below, {backing}, does not exist", path=path)
    create_layer(path, size, backing=backing)


def create_layer(path: str, size: int, *, backing: str | None = None) -> None:
    """A new, empty qcow2 layer (64 KiB clusters, as ``qemu-img create`` makes it), written here: no
    ``qemu-img`` run per disk and point."""
    try:
        create_image(path, size, backing=backing)
    except (OSError, VmferryError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ReplicationError(f"creating a point layer failed: {detail}", path=path) from exc


# -- a sync: begin, one call per disk, seal or abandon -------------------------------------------------
def begin_point(app: str, *, store: Store | None = None, sessions: list[VmSession] | None = None,
                reuse_open: bool = True, moment: datetime | None = None, owner: str = "",
                alive: synclease.Alive | None = None) -> PointDraft:
    """Start a recovery point of the whole application at one moment. With ``reuse_open`` an open draft
    is returned as it is (a retried call does not start a second one); otherwise it is abandoned first.
    ``sessions`` (one per VM) come from the change sources; without them every VM is a package source.
    ``owner`` names the sync (:mod:`vmferry.replication.synclease`): an open draft another owner holds
    is neither reused nor abandoned while ``alive(that owner)`` — :class:`synclease.SyncRunning`."""
    store = store or Store()
    with store.locked(app):
        group = store.load(app)
        if group.draft is not None:
            held = synclease.holder(store, group.draft, owner, alive) if owner else None
            if held is not None:
                raise synclease.refusal(app, held)
            lease = synclease.read(store, app) if owner else None
            unowned = lease is None or lease.get("point_id") != group.draft.point_id
            if reuse_open and (not owner or unowned or lease.get("owner") == owner):
                return group.draft
            _remove_draft(group, group.draft)
            group = replace(group, draft=None)
        moment = moment or datetime.now(UTC)
        seq = max([group.last_seq, *(parse_point_id(p.point_id)[1] for p in (*group.points, *group.retiring))]) + 1
        point_id = make_point_id(moment, seq)
        parent = group.newest.point_id if group.newest else None
        disks = tuple(d for vm in group.vms for d in vm.disks)
        os.makedirs(group.points_dir, exist_ok=True)
        tmp = os.path.join(group.points_dir, DRAFT_PREFIX + point_id)
        if os.path.lexists(tmp):
            raise ReplicationError(f"a draft of point {point_id} already exists", path=tmp)
        os.mkdir(tmp)
        try:
            if sessions is None:
                sessions = capture_sessions(group, point_id)
            draft = PointDraft(app, point_id, moment.astimezone(UTC).isoformat(timespec="seconds"), parent, tmp,
                               disks, tuple(sessions))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            for ref in disks:   # a first point's layer starts empty; later ones over the parent's layer
                if parent is not None:
                    create_overlay(draft_layer(draft, ref), f"../{parent}/{layer_name(ref)}", ref.size)
                else:
                    create_layer(draft_layer(draft, ref), ref.size)
        except BaseException:
            _end_captures(draft, sealed=False)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if owner:
            synclease.write(store, draft, owner, now_iso())
        store.save(replace(group, draft=draft, last_seq=seq))
        return draft


def capture_sessions(group: ProtectionGroup, point_id: str) -> list[VmSession]:
    """One session per VM for a point: package VMs need nothing at this moment; every running domain is
    captured now, all together (frozen through its guest agent when one answers, then a pull backup and
    a new checkpoint each: :func:`vmferry.replication.tracking.begin_captures`)."""
    sessions = {vm.vm: VmSession(vm.vm, "package", "crash", json.dumps(package_state(vm.source)))
                for vm in group.vms if vm.source_kind == "package"}
    domains = [vm for vm in group.vms if vm.source_kind == "domain"]
    if domains:
        from vmferry.replication import tracking

        if not group.source_uri or not group.capture_dir:
            raise ReplicationError(f"application {group.app!r} has running-domain sources but no source libvirt "
                                   "connection or capture directory in its record")
        newest = group.newest
        requests = []
        for vm in domains:
            since = None
            if newest is not None:
                previous = next((x for x in newest.sessions if x.vm == vm.vm and x.source_kind == "domain"), None)
                since = tracking.checkpoint_of(previous) if previous is not None else None
            requests.append(tracking.CaptureRequest(group.source_uri, vm.source,
                                                    tracking.checkpoint_name(group.app, point_id), since))
        captured = tracking.begin_captures(requests, group.capture_dir)
        for vm, session in zip(domains, captured, strict=True):
            sessions[vm.vm] = replace(session, vm=vm.vm)
    return [sessions[vm.vm] for vm in group.vms]


def package_state(path: str) -> dict:
    """What a package was at the point's moment (size and modification time, to the nanosecond): the
    point is of that package, and a package replaced before its disks were read is refused."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ReplicationError(f"cannot read the package: {exc.strerror}", path=path) from exc
    return {"source": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def check_package_unchanged(session: VmSession) -> None:
    state = json.loads(session.state)
    if "mtime_ns" in state and package_state(state["source"]) != state:
        raise ReplicationError(f"the package of VM {session.vm} changed after the point's moment; take the point "
                               "again", path=state["source"])


def _end_captures(draft: PointDraft, *, sealed: bool) -> None:
    """Stop the backup jobs of the draft's running domains (sealed: older checkpoints are retired;
    abandoned: the draft's own checkpoint is deleted so the next point is incremental from the last)."""
    domain_sessions = [s for s in draft.sessions if s.source_kind == "domain"]
    if not domain_sessions:
        return
    from vmferry.replication import tracking

    for session in domain_sessions:
        tracking.end_capture(session, sealed=sealed)


def _stop_jobs(draft: PointDraft) -> None:
    """Stop the backup jobs of the draft's running domains (their checkpoints stay as they are)."""
    domain_sessions = [s for s in draft.sessions if s.source_kind == "domain"]
    if domain_sessions:
        from vmferry.replication import tracking

        for session in domain_sessions:
            tracking.stop_job(session)


def sync_disk(draft: PointDraft, ref: DiskRef, resume_at: int = 0, heartbeat: Heartbeat | None = None, *,
              source: ChangeSource | None = None, store: Store | None = None,
              max_rate: int | None = None) -> DiskSyncResult:
    """Copy the disk's changed extents into the draft's layer (the parallel resumable copy of
    :func:`vmferry.replication.copy.copy_into_image`, ``COPY_CHUNK`` pieces in offset order).
    ``heartbeat`` gets the bytes of the change set done so far, each time after a flush of the layer;
    called again with ``resume_at`` = the last heartbeat's count, the copy restarts at the piece that
    count falls in (idempotent: the same bytes land at the same offsets), so it moves at most the
    remainder plus one chunk. ``max_rate`` (bytes/s) limits the copy; None: the group's own limit
    (0: none). Without ``source`` the VM's own change source is opened."""
    store = store or Store()
    group = store.load(draft.app)
    if group.draft is None or group.draft.point_id != draft.point_id:
        raise ReplicationError(f"point {draft.point_id} of {draft.app!r} is not the open draft")
    if ref not in draft.disks:
        raise ReplicationError(f"disk {ref.key} is not part of point {draft.point_id}")
    rate = group.max_rate if max_rate is None else max_rate
    copy.check_rate(rate)
    owned = source is None
    if source is None:   # hashing a package disk takes a while: the heartbeat keeps saying where the copy is
        keepalive = (lambda _hashed: heartbeat(max(0, resume_at))) if heartbeat is not None else None
        source = open_change_source(group, draft, ref, progress=keepalive)
    try:
        extents = source.extents()
        for ext in extents:
            if ext.offset < 0 or ext.length < 0 or ext.end > ref.size:
                raise ReplicationError(f"changed extent {ext.offset}+{ext.length} is outside disk {ref.key} "
                                       f"({ref.size} bytes)")
        full = bool(getattr(source, "full", False))
        reason = str(getattr(source, "resync_reason", ""))
        extents = blocklog.align(extents, imageio.BLOCK_SIZE, ref.size)   # whole blocks: hashed as they pass
        with blocklog.BlockLog(_log_path(draft, ref), imageio.BLOCK_SIZE, ref.size) as digests:
            moved = copy.copy_into_image(source, draft_spec(group, draft, ref), extents=extents, chunk=COPY_CHUNK,
                                         resume_at=max(0, resume_at), heartbeat=heartbeat, max_rate=rate,
                                         digests=digests)
        result = DiskSyncResult(moved.bytes_read, moved.bytes_written, moved.extents, full=full,
                                resumed_at=moved.resumed_at, resync_reason=reason)
        write_json(os.path.join(draft.draft_dir, f"{ref.key}.sync.json"), to_json(result))
        return result
    finally:
        if owned:
            source.close()


def open_change_source(group: ProtectionGroup, draft: PointDraft, ref: DiskRef, *,
                       progress: Heartbeat | None = None) -> ChangeSource:
    """The change source of the VM that owns ``ref``: the package one here; a running domain's comes
    from :mod:`vmferry.replication.tracking` (change tracking through libvirt checkpoints)."""
    vm = group.vm(ref.vm)
    if vm.source_kind == "package":
        from vmferry.replication.hashsync import PackageChanges

        check_package_unchanged(draft.session(vm.vm))
        source = PackageChanges.for_draft(group, draft, ref, progress=progress)
        try:
            check_package_unchanged(draft.session(vm.vm))   # not replaced while it was read either
        except BaseException:
            source.close()
            raise
        return source
    from vmferry.replication import tracking

    return tracking.open_source(draft.session(vm.vm), ref.disk)


def seal_point(draft: PointDraft, *, store: Store | None = None) -> RecoveryPoint:
    """Record the digests of every disk of the draft, make it read-only and publish it as a point."""
    store = store or Store()
    with store.locked(draft.app):
        group = store.load(draft.app)
        if group.draft is None or group.draft.point_id != draft.point_id or not os.path.isdir(draft.draft_dir):
            adopted = _adopt_sealed(store, group, draft)
            if adopted is not None:
                synclease.release(store, draft.app, draft.point_id)
                return adopted
            raise ReplicationError(f"point {draft.point_id} of {draft.app!r} is not the open draft")
        disks = []
        bytes_read = bytes_written = 0
        for ref in draft.disks:
            layer = draft_layer(draft, ref)
            if not os.path.exists(layer):
                raise ReplicationError(f"disk {ref.key} of point {draft.point_id} was never copied", path=layer)
        # every layer is written: the backup jobs go and the layers' file digests are taken on other
        # threads while the block maps are put together here (hashing and libvirt calls release the GIL)
        with ThreadPoolExecutor(max_workers=len(draft.disks) + 1, thread_name_prefix="vmferry-seal") as pool:
            stopping = pool.submit(_stop_jobs, draft)
            logs = {ref.key: blocklog.read_log(_log_path(draft, ref), ref.size, imageio.BLOCK_SIZE)
                    for ref in draft.disks}
            file_pieces = {ref.key: pool.submit(_layer_pieces, draft_layer(draft, ref), logs[ref.key], ref.size)
                           for ref in draft.disks}
            for ref in draft.disks:
                layer = draft_layer(draft, ref)
                hashes = _point_map(group, draft, ref, logged=logs[ref.key])
                write_hashes(os.path.join(draft.draft_dir, f"{ref.key}.map"), hashes)
                with contextlib.suppress(FileNotFoundError):   # the map holds it now (a re-seal re-reads)
                    os.unlink(_log_path(draft, ref))
                sync = _read_sync(draft, ref)
                bytes_read += sync.bytes_read if sync else 0
                bytes_written += sync.bytes_written if sync else 0
                pieces = file_pieces[ref.key].result()
                write_hashes(pieces_path(draft.draft_dir, ref.key), b"".join(pieces))
                disks.append(PointDisk(ref, layer_name(ref), imageio.map_digest(hashes, ref.size, imageio.BLOCK_SIZE),
                                       imageio.pieces_digest(pieces), imageio.BLOCK_SIZE,
                                       sync.bytes_written if sync else _allocated_bytes(layer)))
            with contextlib.suppress(VmferryError):   # not needed to seal: end_capture stops it otherwise
                stopping.result()
        taken = datetime.fromisoformat(draft.taken_at)
        sealed_at = datetime.now(UTC)
        point = RecoveryPoint(draft.app, draft.point_id, draft.taken_at, sealed_at.isoformat(timespec="seconds"),
                              draft.parent, draft.consistency, draft.sessions, tuple(disks), bytes_read,
                              bytes_written, round((sealed_at - taken).total_seconds(), 3))
        write_json(os.path.join(draft.draft_dir, "point.json"), to_json(point))
        for name in os.listdir(draft.draft_dir):
            make_read_only(os.path.join(draft.draft_dir, name))
        final = point_dir(group, draft.point_id)
        os.rename(draft.draft_dir, final)
        fsync_dir(group.points_dir)
        store.save(replace(group, points=(*group.points, point), draft=None))
        # the backup jobs end and older checkpoints retire before the lease goes: a next sync could
        # otherwise begin its own job on a domain whose job this seal then aborts
        try:
            _end_captures(draft, sealed=True)
        finally:
            synclease.release(store, draft.app, draft.point_id)
    return point


def _adopt_sealed(store: Store, group: ProtectionGroup, draft: PointDraft) -> RecoveryPoint | None:
    """A seal that renamed the draft but died before the record was written: finish it."""
    if any(p.point_id == draft.point_id for p in group.points):
        _end_captures(draft, sealed=True)    # idempotent: a seal retried after the record was written
        return group.point(draft.point_id)
    record = os.path.join(point_dir(group, draft.point_id), "point.json")
    if not os.path.exists(record):
        return None
    with open(record, encoding="utf-8") as fh:
        point = loads(RecoveryPoint, fh.read())
    store.save(replace(group, points=(*group.points, point), draft=None))
    _end_captures(draft, sealed=True)
    return point


def abandon_point(draft: PointDraft, *, store: Store | None = None) -> None:
    """Remove everything the draft wrote; the group is as before the draft began."""
    store = store or Store()
    with store.locked(draft.app):
        group = store.load(draft.app)
        _remove_draft(group, draft)
        if group.draft is not None and group.draft.point_id == draft.point_id:
            store.save(replace(group, draft=None))
        synclease.release(store, draft.app, draft.point_id)


def _remove_draft(group: ProtectionGroup, draft: PointDraft) -> None:
    expected = os.path.join(group.points_dir, DRAFT_PREFIX + draft.point_id)
    if os.path.abspath(draft.draft_dir) != expected:
        raise ReplicationError(f"draft directory {draft.draft_dir} is not where drafts of {group.app!r} live")
    _end_captures(draft, sealed=False)
    shutil.rmtree(expected, ignore_errors=True)


# -- digests -----------------------------------------------------------------------------------------
def _log_path(draft: PointDraft, ref: DiskRef) -> str:
    return os.path.join(draft.draft_dir, f"{ref.key}.blocks")


def forget_copy_digests(draft: PointDraft, ref: DiskRef) -> None:
    """Drop the block digests ``sync_disk`` took of ``ref``: call before anything else writes the draft's
    layer (the guest repair); the seal then re-reads every block the layer holds."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_log_path(draft, ref))


def pieces_path(directory: str, key: str) -> str:
    """The SHA-256 of each 64 KiB piece of the layer file of disk ``key`` (:func:`imageio.layer_pieces`),
    kept beside it so that retention re-reads only the pieces a merge changed."""
    return os.path.join(directory, f"{key}.pieces")


def _layer_pieces(layer: str, logged: dict[int, bytes] | None, size: int) -> list[bytes]:
    """The piece hashes of the layer file (:func:`imageio.layer_pieces`): a data cluster holding a whole
    guest block the copy logged is not read again, its SHA-256 is the one the copy took of those very bytes
    (:mod:`vmferry.replication.blocklog`); the header, the tables and anything else are read."""
    bs = imageio.BLOCK_SIZE
    mapping = data_clusters(layer) if logged else None
    if mapping is None or mapping[0] != bs or imageio.LAYER_PIECE != bs:
        return imageio.layer_pieces(layer)
    hosts = mapping[1]
    whole = os.path.getsize(layer) // bs    # pieces of the file that are whole clusters

    def known(index: int) -> bytes | None:
        guest = hosts.get(index)
        if guest is None or index >= whole or (guest + 1) * bs > size:
            return None
        return logged.get(guest)

    return imageio.layer_pieces(layer, known)


def _point_map(group: ProtectionGroup, draft: PointDraft, ref: DiskRef, *,
               logged: dict[int, bytes] | None | bool = True) -> bytes:
    """The block hashes of the disk in the draft: the parent's map (a first point: an all-zero disk's)
    with the hashes ``sync_disk`` took of the bytes it copied (:mod:`vmferry.replication.blocklog`); a
    block the layer holds that the log does not name is re-read through the chain and hashed. Without
    a log, every block the layer holds is re-read (a first point: the whole disk). The map as the
    ``.map`` file holds it: the 32-byte hashes one after the other."""
    bs = imageio.BLOCK_SIZE
    if logged is True:   # not read by the caller
        logged = blocklog.read_log(_log_path(draft, ref), ref.size, bs)
    if logged is None:
        return _reread_map(group, draft, ref)
    if draft.parent is None:
        hashes = bytearray(b"".join(blocklog.zero_hashes(ref.size, bs)))
    else:
        hashes = bytearray(_map_bytes(os.path.join(point_dir(group, draft.parent), f"{ref.key}.map"), ref.size, bs))
    held = {block for start, length in layer_extents(draft_layer(draft, ref))
            for block in range(start // bs, (start + length - 1) // bs + 1)}
    missing = sorted(held.difference(logged))
    if missing:
        with imageio.open_image(draft_spec(group, draft, ref)) as image:
            for block in missing:
                off = block * bs
                hashes[block * 32:block * 32 + 32] = imageio.block_hash(image.pread(min(bs, ref.size - off), off))
    for block, digest in logged.items():
        hashes[block * 32:block * 32 + 32] = digest
    return bytes(hashes)


def _reread_map(group: ProtectionGroup, draft: PointDraft, ref: DiskRef) -> bytes:
    """The block map read back through the chain (drafts without a digest log)."""
    bs = imageio.BLOCK_SIZE
    spec = draft_spec(group, draft, ref)
    with imageio.open_image(spec) as image:
        if draft.parent is None:
            return b"".join(imageio.block_hashes(image, bs))
        hashes = read_map(os.path.join(point_dir(group, draft.parent), f"{ref.key}.map"), ref.size, bs)
        for start, length in layer_extents(draft_layer(draft, ref)):
            first, last = start // bs, (start + length - 1) // bs
            for block in range(first, last + 1):
                off = block * bs
                hashes[block] = imageio.block_hash(image.pread(min(bs, ref.size - off), off))
        return b"".join(hashes)


def layer_extents(layer: str) -> list[tuple[int, int]]:
    """The byte ranges the layer itself holds (data or zeros written in it), its backing ignored: from
    its L1/L2 tables read here (:mod:`vmferry.disks.qcow2_map`), else from ``qemu-img map``."""
    try:
        held = held_ranges(layer)
    except OSError as exc:
        raise ReplicationError(f"cannot read the point layer: {exc.strerror}", path=layer) from exc
    if held is not None:
        return held
    result = qemu_img_step(["map", "--output=json", *ImageSpec(layer, "qcow2").argv()], "mapping a point layer", layer)
    try:
        doc = json.loads(result.stdout)
    except ValueError as exc:
        raise ReplicationError("qemu-img map printed output that is not JSON", path=layer) from exc
    return [(int(e["start"]), int(e["length"])) for e in doc if e.get("present") and e.get("depth", 0) == 0]


def _allocated_bytes(layer: str) -> int:
    return sum(length for _, length in layer_extents(layer))


def read_map(path: str, size: int, block_size: int) -> list[bytes]:
    data = _map_bytes(path, size, block_size)
    return [data[i:i + 32] for i in range(0, len(data), 32)]


def _map_bytes(path: str, size: int, block_size: int) -> bytes:
    """The ``.map`` file at ``path`` as it is (32 bytes per block), its length checked."""
    count = -(-size // block_size)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ReplicationError(f"cannot read the block map: {exc.strerror}", path=path) from exc
    if len(data) != count * 32:
        raise ReplicationError(f"the block map holds {len(data) // 32} blocks, the disk has {count}", path=path)
    return data


def write_hashes(path: str, hashes: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(hashes)
        fh.flush()
        os.fsync(fh.fileno())


def write_json(path: str, data: object) -> None:
    temp = path + ".tmp"
    with open(temp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


def _read_sync(draft: PointDraft, ref: DiskRef) -> DiskSyncResult | None:
    path = os.path.join(draft.draft_dir, f"{ref.key}.sync.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return from_json(DiskSyncResult, json.load(fh))


def make_read_only(path: str) -> None:
    mode = os.stat(path).st_mode
    os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def verify_point(group: ProtectionGroup, point_id: str, *, deep: bool = True) -> list[str]:
    """Problems found (empty: the point is whole). Shallow: every layer file of the point still has the
    digest recorded when it was sealed. Deep: also every disk, read through its chain, gives the
    content digest recorded at sealing (which no merge changes)."""
    point = group.point(point_id)
    problems = []
    for disk in point.disks:
        layer = os.path.join(point_dir(group, point_id), disk.file)
        if not os.path.exists(layer):
            problems.append(f"{disk.ref.key}: layer {layer} is missing")
            continue
        if not imageio.digest_matches(layer, disk.file_digest):
            problems.append(f"{disk.ref.key}: layer file digest differs from the one recorded at sealing")
        if deep:
            try:
                with imageio.open_image(chain_spec(group, point, disk.ref.key)) as image:
                    hashes = imageio.block_hashes(image, disk.block_size)
            except ReplicationError as exc:
                problems.append(f"{disk.ref.key}: cannot read the disk: {exc}")
                continue
            if imageio.map_digest(hashes, disk.ref.size, disk.block_size) != disk.content_digest:
                problems.append(f"{disk.ref.key}: the disk's content differs from the digest recorded at sealing")
    return problems


def dump_point(point: RecoveryPoint) -> str:
    return dumps(point)
