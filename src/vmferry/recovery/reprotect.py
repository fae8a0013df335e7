"""Reprotect: after a failover, the copies running at the recovery site become the source, and the old
source site's disks receive only what changed there since the failover point.

    mark_failover(group, report.point_id)     # right after the failover started the domains
    report = reprotect("shop")                # later: dc1 -> dr becomes dr -> dc1

1. **The failover point of each disk** is read from the running domains at the recovery site: a failover
   runs each disk on a qcow2 layer whose backing file is the point's layer
   (``<replica>/points/<point>/<vm>.<disk>.qcow2``); every disk of the application must name the same
   point of the protection group.
2. **The old source disks** (running-domain sources: the source domain's disks at the old source site)
   are used only if the domain is not running and each disk, read whole, gives the content digest the
   failover point recorded for it (:func:`vmferry.replication.imageio.map_digest` of its 64 KiB block
   hashes). Otherwise that disk is copied whole, and the report says why.
3. **What changed at the recovery site since the failover point**, per disk, read from one pull-mode
   backup of each running domain (:mod:`vmferry.replication.tracking`, which also starts the checkpoint
   the next point is incremental from):

   * ``bitmap``: the domain has the checkpoint :func:`mark_failover` created when it started
     (:func:`vmferry.replication.tracking.checkpoint_name` of the failover point): the backup is
     incremental from it, and its dirty bitmap names the changed blocks;
   * ``hash``: no such checkpoint: every block of the running disk is hashed and compared with the
     failover point's block map (``<vm>.<disk>.map``); the blocks that differ are the changes;
   * ``full``: no usable old disk: every allocated extent.
4. **The reversed protection group** replaces the record: source = the recovery site (its running
   domains), target = the old source site, replica directory ``<old source storage>/<app>``. Its first
   point is made by the ordinary point machinery (:mod:`vmferry.replication.points`): the old disk is
   moved into the draft as the point's layer (copied locally when it has a backing chain or lives on
   another file system), only the changes are written over it, then the point is sealed (digests).
   (The old disk gets a second name first and loses the old one only once the point is sealed; a reprotect
   interrupted before that is undone by the next one.) The old source domain's definition is kept in the replica directory (it is what the application
   runs as when it fails back) and the domain is undefined. The forward group's record is kept inside
   the new one (``extra``): its replica still backs the running copies.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from lxml import etree

from vmferry.errors import RecoveryError, VmferryError
from vmferry.replication import imageio, points, tracking
from vmferry.replication.hashsync import as_extents
from vmferry.replication.model import DiskRef, Extent, VmSession, dumps, make_point_id
from vmferry.replication.store import ProtectionGroup, ReplicaVm, Store
from vmferry.tools import libvirt as lv
from vmferry.tools import nbd, proc
from vmferry.tools.qemu_img import ImageSpec

Say = Callable[[str], None]
EXTRA_KIND = "vmferry.reprotect"
HASH_READ = 1 << 20


# -- the report ---------------------------------------------------------------------------------------
@dataclass
class DiskDelta:
    key: str
    method: str                 # bitmap | hash | full
    reason: str = ""            # why a whole copy, when it is one
    old_disk: str | None = None
    adopted: str = "none"       # moved | copied-locally | none
    bytes_read: int = 0
    bytes_written: int = 0
    extents: int = 0


@dataclass
class ReprotectReport:
    app: str
    source_site: str            # the new source: where the application runs now
    target_site: str            # the old source, now receiving the replica
    failover_point: str
    point_id: str = ""
    disks: list[DiskDelta] = field(default_factory=list)
    undefined: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bytes_written(self) -> int:
        return sum(d.bytes_written for d in self.disks)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["bytes_written"] = self.bytes_written
        return out


def render_text(report: ReprotectReport) -> str:
    lines = [f"reprotected {report.app}: {report.source_site} -> {report.target_site} from failover point "
             f"{report.failover_point}; first point {report.point_id} in {report.seconds:.1f} s, "
             f"{report.bytes_written} bytes written"]
    for d in report.disks:
        lines.append(f"  {d.key}: {d.method}, {d.bytes_written} bytes in {d.extents} extents"
                     + (f", old disk {d.adopted}" if d.adopted != "none" else "")
                     + (f" ({d.reason})" if d.reason else ""))
    lines += [f"  undefined the old source domain {n}" for n in report.undefined]
    return "\n".join(lines) + "\n"


# -- the failover point ------------------------------------------------------------------------------
def _xml(text: str):
    return etree.fromstring(text.encode(), etree.XMLParser(resolve_entities=False, no_network=True))


def disk_files(xml: str) -> dict[str, tuple[str, str]]:
    """Target -> (file, format) of the domain's file disks."""
    out = {}
    for d in _xml(xml).iter("disk"):
        target, source, driver = d.find("target"), d.find("source"), d.find("driver")
        if d.get("device", "disk") != "disk" or target is None or source is None or not source.get("file"):
            continue
        out[target.get("dev")] = (source.get("file"), (driver.get("type") if driver is not None else None) or "raw")
    return out


def _backing(path: str) -> str | None:
    info = proc.run_json(["qemu-img", "info", "-U", "--output=json", "-f", "qcow2", path], timeout=60)
    name = info.get("full-backing-filename") or info.get("backing-filename")
    if name and not os.path.isabs(name):
        name = os.path.join(os.path.dirname(path), name)
    return os.path.abspath(name) if name else None


def failover_point(group: ProtectionGroup, conn) -> str:
    """The point the application's running copies at the group's target started from (one for all disks)."""
    from vmferry.recovery.spec import disk_targets

    found: dict[str, str] = {}
    for vm in group.vms:
        if vm.vm not in conn.names() or not conn.info(vm.vm).active:
            raise RecoveryError(f"VM {vm.vm} does not run at site {group.target_site!r}: fail the application "
                                "over first")
        with open(os.path.join(group.replica_dir, vm.domain_xml), encoding="utf-8") as fh:
            targets = disk_targets(fh.read(), vm)
        files = disk_files(conn.domain(vm.vm).XMLDesc(0))
        for ref in vm.disks:
            layer = files.get(targets[ref.key], (None, None))[0]
            backing = _backing(layer) if layer else None
            pdir = os.path.dirname(backing) if backing else ""
            if not backing or os.path.dirname(pdir) != os.path.abspath(group.points_dir) \
                    or os.path.basename(backing) != points.layer_name(ref):
                raise RecoveryError(f"VM {vm.vm} at site {group.target_site!r}: disk {targets[ref.key]} does not "
                                    "run on a recovery point of the application (was it failed over by vmferry?)")
            found[ref.key] = os.path.basename(pdir)
    ids = sorted(set(found.values()))
    if len(ids) != 1:
        raise RecoveryError(f"the running copies of {group.app!r} started from different points ({', '.join(ids)})")
    group.point(ids[0])
    return ids[0]


def mark_failover(group: ProtectionGroup, point_id: str, *, domains: list[str] | None = None) -> list[str]:
    """Start change tracking on the failed-over domains (running at the group's target): a checkpoint named
    for the failover point, so a later reprotect reads the changed blocks from its dirty bitmap instead of
    hashing whole disks. Call it as soon as each domain is started (best: still paused): blocks written
    before it are seen only by hashing. Returns the domains marked."""
    names = domains if domains is not None else [vm.vm for vm in group.vms]
    name = tracking.checkpoint_name(group.app, point_id)
    libvirt = lv.binding()
    marked = []
    with lv.connect(group.target_uri) as conn:
        for dom_name in names:
            dom = conn.domain(dom_name)
            disks = tracking.tracked_disks(dom)
            items = "".join(f"<disk name='{d}' checkpoint='bitmap'/>" for d in disks)
            try:
                if name not in {c.getName() for c in dom.listAllCheckpoints(0)}:
                    dom.checkpointCreateXML(f"<domaincheckpoint><name>{name}</name><description>vmferry failover "
                                            f"from point {point_id}</description><disks>{items}</disks>"
                                            "</domaincheckpoint>", 0)
            except libvirt.libvirtError as exc:
                raise RecoveryError(f"domain {dom_name}: change tracking could not start: {lv.message(exc)}") from exc
            marked.append(dom_name)
    return marked


# -- the old source disks -----------------------------------------------------------------------------
@dataclass(frozen=True)
class OldDisk:
    path: str
    fmt: str
    standalone: bool          # a qcow2 without backing file (can become a point's layer as it is)


def old_source(group: ProtectionGroup, vm: ReplicaVm) -> tuple[str | None, dict[str, OldDisk], str]:
    """The old source domain's inactive definition and its disks by target, or (None, {}, why not)."""
    if vm.source_kind != "domain" or not group.source_uri:
        return None, {}, "the source was a package, there is no disk to update"
    try:
        with lv.connect(group.source_uri) as conn:
            if vm.source not in conn.names():
                return None, {}, f"domain {vm.source} is gone from site {group.source_site!r}"
            if conn.info(vm.source).active:
                raise RecoveryError(f"domain {vm.source} still runs at site {group.source_site!r}: stop it before "
                                    "its disks are made a replica")
            xml = conn.domain(vm.source).XMLDesc(lv.binding().VIR_DOMAIN_XML_INACTIVE)
    except RecoveryError:
        raise
    except VmferryError as exc:
        return None, {}, f"site {group.source_site!r} does not answer ({exc})"
    disks = {}
    for target, (path, fmt) in disk_files(xml).items():
        if os.path.isfile(path):
            standalone = fmt == "qcow2" and _backing(path) is None
            disks[target] = OldDisk(path, fmt, standalone)
    return xml, disks, ""


def _disk_digest(disk: OldDisk, size: int) -> str | None:
    spec = ImageSpec(disk.path, disk.fmt) if disk.standalone or disk.fmt == "raw" else None
    if spec is None:   # a chain the domain itself uses: qemu resolves it from the header
        return _chain_digest(disk, size)
    with imageio.open_image(spec) as image:
        if image.size != size:
            return None
        return imageio.map_digest(imageio.block_hashes(image), size, imageio.BLOCK_SIZE)


def _chain_digest(disk: OldDisk, size: int) -> str | None:
    nbdmod = imageio.libnbd()
    h = nbdmod.NBD()
    h.connect_systemd_socket_activation(["qemu-nbd", "--read-only", "-f", disk.fmt, disk.path])
    try:
        if h.get_size() != size:
            return None
        hashes = []
        for off in range(0, size, HASH_READ):
            data = h.pread(min(HASH_READ, size - off), off)
            hashes += [imageio.block_hash(data[i:i + imageio.BLOCK_SIZE]) for i in range(0, len(data),
                                                                                        imageio.BLOCK_SIZE)]
        return imageio.map_digest(hashes, size, imageio.BLOCK_SIZE)
    finally:
        h.shutdown()


# -- what changed at the recovery site ------------------------------------------------------------------
class DeltaSource:
    """A :class:`~vmferry.replication.model.ChangeSource` over a running domain's backup export: the
    blocks changed since the failover point (``bitmap`` or ``hash``) or every allocated one (``full``)."""

    resync_reason = ""

    def __init__(self, session: VmSession, disk: str, method: str, point_map: list[bytes] | None = None) -> None:
        state = json.loads(session.state)
        since = state.get("since")
        dirty = nbd.dirty_bitmap_context(f"backup-{disk}")
        contexts = [nbd.BASE_ALLOCATION] + ([dirty] if since else [])
        if method == "bitmap" and not since:
            raise RecoveryError(f"VM {session.vm}: no checkpoint of the failover point to read changes from")
        self.size = int(state["disks"][disk])
        self.method = method
        self.full = method == "full"
        self.hashes: list[bytes] | None = None
        self._export = nbd.open_unix(state["socket"], disk, contexts=contexts)
        try:
            if method == "bitmap":
                self._extents = _merge(s for s in self._export.spans(dirty) if s.flags & nbd.STATE_DIRTY)
            elif method == "hash":
                self.hashes = self._hash()
                if point_map is None or len(point_map) != len(self.hashes):
                    raise RecoveryError(f"VM {session.vm}: the failover point's block map of {disk} does not fit")
                blocks = [i for i, h in enumerate(self.hashes) if h != point_map[i]]
                self._extents = as_extents(blocks, imageio.BLOCK_SIZE, self.size)
            else:
                self._extents = _merge(s for s in self._export.spans(nbd.BASE_ALLOCATION)
                                       if not s.flags & nbd.STATE_ZERO)
        except BaseException:
            self._export.close()
            raise

    def _hash(self) -> list[bytes]:
        out = []
        bs = imageio.BLOCK_SIZE
        for off in range(0, self.size, HASH_READ):
            data = self._export.pread(off, min(HASH_READ, self.size - off))
            out += [imageio.block_hash(data[i:i + bs]) for i in range(0, len(data), bs)]
        return out

    def extents(self) -> list[Extent]:
        return list(self._extents)

    def read(self, offset: int, length: int) -> bytes:
        return self._export.pread(offset, length)

    def close(self) -> None:
        self._export.close()


def _merge(spans) -> list[Extent]:
    out: list[Extent] = []
    for s in spans:
        if out and out[-1].end == s.offset:
            out[-1] = Extent(out[-1].offset, out[-1].length + s.length)
        else:
            out.append(Extent(s.offset, s.length))
    return out


# -- reprotect ------------------------------------------------------------------------------------------
def reversed_of(group: ProtectionGroup) -> ProtectionGroup | None:
    """The forward group a reprotected record was made from (None for a group protect made)."""
    for text in group.extra:
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("kind") == EXTRA_KIND:
            from vmferry.replication.model import loads

            return loads(ProtectionGroup, doc["forward"])
    return None


def home_site(group: ProtectionGroup) -> str:
    """The site the application was first protected from (through the reprotected records' chain)."""
    while (forward := reversed_of(group)) is not None:
        group = forward
    return group.source_site


def move_plan(app, group: ProtectionGroup):
    """The move plan of a recovery of ``group`` (source -> target): the manifest's move, or — when the target
    is the application's home site (a failback) — the return home
    (:func:`vmferry.plans.plan.return_plan`): addresses and surroundings go back to the manifest's."""
    from vmferry.plans.plan import build_plan, return_plan

    if reversed_of(group) is not None and group.target_site == home_site(group):
        return return_plan(app, group.source_site, group.target_site)
    return build_plan(app, group.source_site, group.target_site)


def reprotect(app: str, *, store: Store | None = None, method: str = "auto", say: Say | None = None,
              clock: Callable[[], float] = time.monotonic) -> ReprotectReport:
    """Reverse the protection of ``app`` after a failover (see the module's description). ``method``:
    ``auto`` (the dirty bitmap when the failover started one, else hashing), or ``hash`` (always hash)."""
    if method not in ("auto", "hash"):
        raise RecoveryError(f"unknown change method {method!r} (auto or hash)")
    say = say or (lambda _m: None)
    store = store or Store()
    t0 = clock()
    group = store.load(app)
    if reversed_of(group) is not None and not group.points:
        group = _undo_interrupted(store, group)
    from vmferry.recovery import failover_record

    failover = failover_record.load(store.root, app)
    if failover is not None and failover.get("status") != "done":
        raise RecoveryError(f"the failover of {app!r} to {failover.get('target_site')!r} (run {failover.get('run')}) "
                            f"is {failover.get('status')}: finish it first")
    if group.draft is not None:
        raise RecoveryError(f"application {app!r} has a point being taken; let it end (or abandon it) first")
    with lv.connect(group.target_uri) as conn:
        pid = failover_point(group, conn)
        marked = tracking.checkpoint_name(app, pid)
        has_bitmap = {vm.vm: marked in {c.getName() for c in conn.domain(vm.vm).listAllCheckpoints(0)}
                      for vm in group.vms}
    point = group.point(pid)
    say(f"the copies at {group.target_site} run from point {pid}")
    report = ReprotectReport(app, group.target_site, group.source_site, pid)
    olds = {}
    for vm in group.vms:
        olds[vm.vm] = old_source(group, vm)
    new = _reversed_group(group, olds, pid)
    if os.path.lexists(new.replica_dir) and os.listdir(new.replica_dir):
        raise RecoveryError(f"site {new.target_site!r} already has a replica directory for {app!r}",
                            path=new.replica_dir)
    # which disks can be updated in place: the old disk holds exactly the failover point
    usable: dict[str, OldDisk] = {}
    reasons: dict[str, str] = {}
    for vm in group.vms:
        _xml_text, disks, why = olds[vm.vm]
        for ref in vm.disks:
            old = disks.get(ref.disk)
            if old is None:
                reasons[ref.key] = why or f"the old source domain has no disk {ref.disk}"
                continue
            say(f"checking {old.path} against point {pid}")
            if _disk_digest(old, ref.size) != point.disk(ref.key).content_digest:
                reasons[ref.key] = f"{old.path} does not hold the failover point's content"
                continue
            usable[ref.key] = old
    # write the reversed record, then take its first point from the running copies
    os.makedirs(new.replica_dir, exist_ok=True)
    _same_owner(new.replica_dir, os.path.dirname(new.replica_dir))
    os.makedirs(new.capture_dir, exist_ok=True)
    _same_owner(new.capture_dir, os.path.dirname(os.path.dirname(new.capture_dir)))
    for vm, nvm in zip(group.vms, new.vms, strict=True):
        xml_text = olds[vm.vm][0]
        if xml_text is None:
            with open(os.path.join(group.replica_dir, vm.domain_xml), encoding="utf-8") as fh:
                xml_text = fh.read()
        path = os.path.join(new.replica_dir, nvm.domain_xml)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        root = _xml(xml_text)
        root.find("name").text = nvm.vm
        with open(path, "wb") as fh:
            fh.write(etree.tostring(root, pretty_print=True))
    with store.locked(app):
        store.save(new)
    moment = datetime.now(UTC)
    new_pid = make_point_id(moment, new.last_seq + 1)
    requests = [tracking.CaptureRequest(new.source_uri, nvm.source, tracking.checkpoint_name(app, new_pid),
                                        marked if has_bitmap[vm.vm] and method == "auto" else None)
                for vm, nvm in zip(group.vms, new.vms, strict=True)]
    moved: list[tuple[str, str]] = []
    draft = None
    try:
        say(f"capturing the running copies at {new.source_site}")
        sessions = [replace(s, vm=nvm.vm) for s, nvm in
                    zip(tracking.begin_captures(requests, new.capture_dir), new.vms, strict=True)]
        draft = points.begin_point(app, store=store, sessions=sessions, reuse_open=False, moment=moment)
        for vm, nvm, session in zip(group.vms, new.vms, sessions, strict=True):
            point_maps = os.path.join(points.point_dir(group, pid))
            for ref, nref in zip(vm.disks, nvm.disks, strict=True):
                old = usable.get(ref.key)
                since = json.loads(session.state).get("since")
                how = "full" if old is None else ("bitmap" if since else "hash")
                pmap = points.read_map(os.path.join(point_maps, f"{ref.key}.map"), ref.size, imageio.BLOCK_SIZE) \
                    if how == "hash" else None
                delta = DiskDelta(nref.key, how, reasons.get(ref.key, ""), old.path if old else None)
                if old is not None:
                    delta.adopted = _adopt(old, points.draft_layer(draft, nref), moved)
                say(f"{nref.key}: {how}" + (f" ({delta.reason})" if delta.reason else ""))
                source = DeltaSource(session, nref.disk, how, pmap)
                try:
                    res = points.sync_disk(draft, nref, source=source, store=store)
                finally:
                    source.close()
                delta.bytes_read, delta.bytes_written, delta.extents = res.bytes_read, res.bytes_written, res.extents
                if source.hashes is not None:
                    _check_same(draft, nref, source.hashes, store)
                report.disks.append(delta)
        sealed = points.seal_point(draft, store=store)
    except BaseException:
        # the old disks are still at their place (hard links): the draft and the reversed record go
        if draft is not None:
            points.abandon_point(draft, store=store)
        with store.locked(app):
            store.save(group)
        shutil.rmtree(new.replica_dir, ignore_errors=True)
        raise
    for old_path, _layer in moved:
        os.unlink(old_path)                 # the disk lives on as the point's layer only
    if failover is not None:
        failover_record.remove(store.root, app)     # history now: the next failover is the failback
    report.point_id = sealed.point_id
    with lv.connect(new.target_uri) as conn:
        for vm in group.vms:
            if olds[vm.vm][0] is not None and vm.source in conn.names():
                conn.undefine(vm.source)
                report.undefined.append(vm.source)
    report.seconds = clock() - t0
    return report


def _undo_interrupted(store: Store, group: ProtectionGroup) -> ProtectionGroup:
    """A reprotect that died before its first point was sealed: its draft, replica directory and record go,
    the forward record comes back (the old disks were only linked, never moved away)."""
    forward = reversed_of(group)
    if group.draft is not None:
        points.abandon_point(group.draft, store=store)
    with store.locked(group.app):
        store.save(forward)
    shutil.rmtree(group.replica_dir, ignore_errors=True)
    return forward


def _check_same(draft, ref: DiskRef, hashes: list[bytes], store: Store) -> None:
    """Hash mode: the layer now reads, block for block, what the running copy read when captured."""
    group = store.load(draft.app)
    with imageio.open_image(points.draft_spec(group, draft, ref)) as image:
        mine = imageio.block_hashes(image)
    if mine != hashes:
        bad = sum(1 for a, b in zip(mine, hashes, strict=True) if a != b)
        raise RecoveryError(f"disk {ref.key}: {bad} blocks of the reversed replica differ from the running copy")


def _adopt(old: OldDisk, layer: str, moved: list) -> str:
    """Make the old disk the draft's layer: moved when it is a standalone qcow2 on the same file system,
    else converted locally (the bytes stay on the site)."""
    if old.standalone and os.stat(old.path).st_dev == os.stat(os.path.dirname(layer)).st_dev:
        # a second name first; the old one goes once the point is sealed. Interrupted before that, the old
        # disk is still in its place (changed, maybe: the digest check then says a whole copy is needed)
        link = layer + ".adopt"
        os.link(old.path, link)
        os.replace(link, layer)
        moved.append((old.path, layer))
        _drop_bitmaps(layer)
        return "moved"
    tmp = layer + ".adopt"
    proc.run(["qemu-img", "convert", "-q", "-f", old.fmt, "-O", "qcow2", "-o", "cluster_size=65536", old.path, tmp],
             timeout=24 * 3600)
    os.replace(tmp, layer)
    return "copied-locally"


def _drop_bitmaps(layer: str) -> None:
    """The old source's persistent dirty bitmaps (its checkpoints) mean nothing in a replica."""
    info = proc.run_json(["qemu-img", "info", "--output=json", "-f", "qcow2", layer], timeout=60)
    for bm in (info.get("format-specific", {}).get("data", {}).get("bitmaps") or []):
        proc.run(["qemu-img", "bitmap", "--remove", "-f", "qcow2", layer, bm["name"]], timeout=60)


def _same_owner(path: str, like: str) -> None:
    st = os.stat(like)
    if os.geteuid() == 0:
        os.chown(path, st.st_uid, st.st_gid)


def _reversed_group(group: ProtectionGroup, olds: dict, pid: str) -> ProtectionGroup:
    from vmferry.plans.manifest import load_app
    from vmferry.replication.protect import storage_dir

    app = load_app(group.manifest)
    site = app.sites.get(group.source_site)
    if site is None or site.libvirt is None:
        raise RecoveryError(f"site {group.source_site!r} runs no VMs (no libvirt platform): it cannot receive a "
                            "replica", path=app.path)
    target_storage = storage_dir(site.libvirt)
    dr = app.sites[group.target_site]
    source_storage = storage_dir(dr.libvirt) if dr.libvirt is not None else os.path.dirname(group.replica_dir)
    replica_dir = os.path.join(target_storage, group.app)
    n = 1
    while os.path.lexists(replica_dir) and os.listdir(replica_dir):   # an earlier direction's replica
        n += 1
        replica_dir = os.path.join(target_storage, f"{group.app}.{n}")
    capture_dir = os.path.join(source_storage, ".cap", group.app)
    vms = []
    for vm in group.vms:
        name = vm.source if olds[vm.vm][0] is not None else vm.vm
        with open(os.path.join(group.replica_dir, vm.domain_xml), encoding="utf-8") as fh:
            from vmferry.recovery.spec import disk_targets

            targets = disk_targets(fh.read(), vm)
        refs = tuple(DiskRef(group.app, vm.component, name, targets[r.key], r.size) for r in vm.disks)
        vms.append(ReplicaVm(vm.component, name, "domain", vm.vm, None, refs,
                             os.path.join("vms", name, "domain.xml"), None, False, "ready"))
    extra = json.dumps({"kind": EXTRA_KIND, "failover_point": pid, "forward": dumps(group),
                        "at": datetime.now(UTC).isoformat(timespec="seconds")}, sort_keys=True)
    return ProtectionGroup(app=group.app, manifest=group.manifest, source_site=group.target_site,
                           target_site=group.source_site, target_uri=site.libvirt.uri,
                           source_uri=group.target_uri, replica_dir=replica_dir, rpo_seconds=group.rpo_seconds,
                           keep=group.keep, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                           vms=tuple(vms), created=(replica_dir, capture_dir), last_seq=group.last_seq,
                           capture_dir=capture_dir, extra=(extra,))
