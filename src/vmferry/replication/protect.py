"""Protect an application at another site, keep its recovery points, say how old they are.

``protect``: each component's first full copy is converted and repaired for the target by the
``convert --to kvm`` library path (:func:`vmferry.targets.kvm.convert_to_kvm`), and kept as a
ready-to-launch replica: its domain definition for the target (networks mapped by the target site's
``libvirt.networks``), its OVF environment, and the first recovery point. ``unprotect`` removes the
replica directory protect created and the record, nothing else. ``sync_app`` takes one recovery point
of every VM at one moment. ``status`` reports per application and VM (see docs/replication.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime

from lxml import etree

from vmferry.errors import ReplicationError, VmferryError
from vmferry.findings import Finding
from vmferry.replication import points
from vmferry.replication.hashsync import PackageChanges, write_source_map
from vmferry.replication.model import DiskRef, RecoveryPoint, VmSession, to_json
from vmferry.replication.store import GuestNote, ProtectionGroup, ReplicaVm, Store, TestResult

DEFAULT_RPO = 15 * 60
DEFAULT_KEEP = 7
_DURATION = re.compile(r"^(\d{1,9})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int) -> int:
    """Seconds from ``90s``, ``15m``, ``4h``, ``1d`` (or an integer of seconds)."""
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    else:
        match = _DURATION.match(str(text).strip())
        if not match:
            raise ReplicationError(f"{text!r} is not a duration (a number and s, m, h or d, e.g. 15m)")
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 1:
        raise ReplicationError(f"an RPO of {seconds} s is not possible")
    return seconds


def _site(app, name: str, role: str):
    site = app.sites.get(name)
    if site is None:
        raise ReplicationError(f"the manifest has no site {name!r} (it has {', '.join(sorted(app.sites)) or 'none'})",
                               path=app.path)
    if role == "target" and (site.platform != "libvirt" or site.libvirt is None):
        raise ReplicationError(f"site {name!r} runs no VMs: give it platform: libvirt (docs/app.md)", path=app.path)
    return site


def storage_dir(platform) -> str:
    """The directory replicas go to: the site's ``storage`` directory, or its dir-type pool's path."""
    if platform.storage_dir:
        return platform.storage_dir
    from vmferry.tools.libvirt import connect

    with connect(platform.uri) as conn:
        raw = conn._conn   # noqa: SLF001 — pool lookup is not part of the adapter yet
        try:
            pool = raw.storagePoolLookupByName(platform.storage_pool)
            root = etree.fromstring(pool.XMLDesc(0).encode())
        except Exception as exc:
            raise ReplicationError(f"libvirt {platform.uri}: storage pool {platform.storage_pool!r}: {exc}") from exc
    if root.get("type") != "dir" or not root.findtext("target/path"):
        raise ReplicationError(f"storage pool {platform.storage_pool!r} is not a directory pool")
    return root.findtext("target/path")


# -- protect ------------------------------------------------------------------------------------------
def protect(manifest: str | os.PathLike, source_site: str, target_site: str, *, rpo: str | int = DEFAULT_RPO,
            keep: int = DEFAULT_KEEP, store: Store | None = None, domain_type: str | None = None,
            reporter=None) -> ProtectionGroup:
    """Make the application of ``manifest`` a protection group from ``source_site`` to ``target_site``:
    a converted, repaired first copy of every component at the target, recorded as the first point."""
    from vmferry.plans.manifest import load_app

    store = store or Store()
    app = load_app(manifest)
    rpo_seconds = parse_duration(rpo)
    if keep < 1:
        raise ReplicationError(f"retention must keep at least one point, not {keep}")
    if source_site == target_site:
        raise ReplicationError(f"source and target are the same site {source_site!r}")
    source = _site(app, source_site, "source")
    target = _site(app, target_site, "target")
    if store.exists(app.name):
        raise ReplicationError(f"application {app.name!r} is already protected (unprotect it first)")
    storage = storage_dir(target.libvirt)
    if not os.path.isdir(storage):
        raise ReplicationError(f"the storage directory of site {target_site!r} does not exist", path=storage)
    replica_dir = os.path.join(storage, app.name)
    if os.path.lexists(replica_dir):
        raise ReplicationError(f"{replica_dir} exists: it is not vmferry's to use", path=replica_dir)
    staging = os.path.join(storage, f".{app.name}.protecting")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(staging, "vms"))
    try:
        vms, sessions, first_copies = [], [], {}
        for comp in app.components.values():
            if comp.source_kind != "package":
                raise ReplicationError(f"component {comp.name!r}: protecting a running libvirt domain needs the "
                                       "change tracking of replication/tracking.py, which this vmferry lacks")
            vm, copies = _protect_package(app, comp, target, staging, replica_dir, domain_type, reporter)
            vms.append(vm)
            first_copies.update(copies)
            sessions.append(VmSession(vm.vm, "package", "crash", json.dumps({"source": vm.source})))
        os.rename(staging, replica_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    group = ProtectionGroup(app.name, os.path.abspath(os.fspath(manifest)), source_site, target_site,
                            target.libvirt.uri, source.libvirt.uri if source.libvirt else None, replica_dir,
                            rpo_seconds, keep, points.now_iso(), tuple(vms), created=(replica_dir,))
    try:
        with store.locked(app.name):
            if store.exists(app.name):
                raise ReplicationError(f"application {app.name!r} was protected meanwhile")
            store.save(group)
        draft = points.begin_point(app.name, store=store, sessions=sessions)
        for ref in draft.disks:
            copy, srcmap = first_copies[ref.key]
            os.replace(copy, points.draft_layer(draft, ref))
            os.replace(srcmap, os.path.join(draft.draft_dir, f"{ref.key}.srcmap"))
        points.seal_point(draft, store=store)
    except BaseException:
        _remove_group(store, app.name, group)
        raise
    return store.load(app.name)


def _protect_package(app, comp, target, staging: str, replica_dir: str, domain_type,
                     reporter) -> tuple[ReplicaVm, dict]:
    """Convert one package component for the target; (its ReplicaVm, {disk key: (qcow2, source map)})."""
    import contextlib

    from vmferry.dialects import read_package
    from vmferry.package import open_package
    from vmferry.targets.kvm import convert_to_kvm, domain_name

    vm_name = f"{app.name}-{comp.name}"
    portable = read_package(open_package(comp.package).envelope)
    system = next((s for s in portable.systems if comp.system in (None, s.id)), None)
    if system is None:
        raise ReplicationError(f"component {comp.name!r}: the package has no system {comp.system!r}", path=comp.package)
    netmap = []
    for nic in comp.nics:
        mapped = target.libvirt.network(nic.network)
        if mapped is None:
            raise ReplicationError(f"site {target.name!r} maps no libvirt network for network {nic.network!r} of "
                                   f"component {comp.name!r} (libvirt.networks)", path=app.path)
        netmap.append(f"{nic.network}={mapped}")
    out = os.path.join(staging, "convert", comp.name)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    report = convert_to_kvm(comp.package, out, network_map=netmap, domain_type=domain_type, reporter=reporter)
    xml_path = os.path.join(out, f"{domain_name(system)}.xml")
    root = etree.parse(xml_path).getroot()
    vm_dir = os.path.join(staging, "vms", vm_name)
    final_dir = os.path.join(replica_dir, "vms", vm_name)   # where vm_dir will be once protect succeeds
    os.makedirs(vm_dir)
    package_disks = system.disks_for(portable.default_profile)
    disk_elems = [d for d in root.iter("disk") if d.get("device") == "disk"]
    if len(disk_elems) != len(package_disks):
        raise ReplicationError(f"component {comp.name!r}: the conversion made {len(disk_elems)} disks of "
                               f"{len(package_disks)}", path=comp.package)
    refs, copies = [], {}
    from vmferry.tools import qemu_img

    for pdisk, el in zip(package_disks, disk_elems, strict=True):
        src = el.find("source").get("file")
        size = qemu_img.info(qemu_img.ImageSpec(src, "qcow2")).virtual_size
        ref = DiskRef(app.name, comp.name, vm_name, str(pdisk.id), size)
        refs.append(ref)
        el.find("source").set("file", os.path.join(final_dir, f"{ref.key}.launch.qcow2"))
        staged = ReplicaVm(comp.name, vm_name, "package", comp.package, system.id, (ref,), "", None, False, "")
        with contextlib.ExitStack():
            source = PackageChanges.open(staged, ref, None, None, out)
            try:
                srcmap = os.path.join(out, f"{ref.key}.srcmap")
                write_source_map(srcmap, source.hashes)
            finally:
                source.close()
        copies[ref.key] = (src, srcmap)
    env_iso = None
    for el in root.iter("disk"):
        if el.get("device") == "cdrom" and el.find("source") is not None:
            iso = el.find("source").get("file")
            if iso.endswith("-ovf-env.iso"):
                env_iso = "ovf-env.iso"
                shutil.copyfile(iso, os.path.join(vm_dir, env_iso))
                el.find("source").set("file", os.path.join(final_dir, env_iso))
    root.find("name").text = vm_name
    uuid = root.find("uuid")
    if uuid is not None:
        root.remove(uuid)
    for log in root.iter("log"):
        log.set("file", os.path.join(final_dir, "console.log"))
    with open(os.path.join(vm_dir, "domain.xml"), "wb") as fh:
        fh.write(etree.tostring(root, pretty_print=True))
    notes = tuple(GuestNote(f.rule, f.severity, f.message) for f in report.findings
                  if f.rule.startswith(("VMF-GUEST", "VMF-KVM")))
    readiness = "not-ready" if any(n.severity == "error" for n in notes) else "ready"
    repaired = any(r.get("changes") for r in report.repairs)
    vm = ReplicaVm(comp.name, vm_name, "package", comp.package, system.id, tuple(refs),
                   os.path.join("vms", vm_name, "domain.xml"),
                   os.path.join("vms", vm_name, env_iso) if env_iso else None, repaired, readiness, notes)
    return vm, copies


# -- unprotect ----------------------------------------------------------------------------------------
def unprotect(app: str, *, store: Store | None = None) -> list[str]:
    """Remove what protect created (the replica directory and the record); returns the paths removed."""
    store = store or Store()
    group = store.load(app)
    return _remove_group(store, app, group)


def _remove_group(store: Store, app: str, group: ProtectionGroup) -> list[str]:
    removed = []
    with store.locked(app):
        for path in group.created:
            if os.path.abspath(path) != os.path.abspath(group.replica_dir):
                continue   # protect creates exactly the replica directory; nothing else is ever removed
            if os.path.isdir(path) and not os.path.islink(path):
                for root, dirs, _files in os.walk(path):
                    for name in dirs:
                        os.chmod(os.path.join(root, name), 0o700)
                shutil.rmtree(path)
                removed.append(path)
        if store.exists(app):
            current = store.load(app)
            if current.replica_dir == group.replica_dir:
                store.delete(app)
    return removed


# -- sync ---------------------------------------------------------------------------------------------
def sync_app(app: str, *, store: Store | None = None, heartbeat=None) -> RecoveryPoint:
    """One recovery point of every VM of ``app`` at one moment; older points beyond the group's
    retention are merged. A failure leaves no draft behind."""
    store = store or Store()
    group = store.load(app)
    if any(vm.source_kind == "domain" for vm in group.vms):
        raise ReplicationError(f"application {app!r} has running-domain sources: their sync needs "
                               "replication/tracking.py, which this vmferry lacks")
    draft = points.begin_point(app, store=store, reuse_open=False)
    try:
        for ref in draft.disks:
            points.sync_disk(draft, ref, heartbeat=heartbeat, store=store)
        for vm in group.vms:
            if vm.repaired:
                repair_draft(group, draft, vm)
        point = points.seal_point(draft, store=store)
    except BaseException:
        points.abandon_point(draft, store=store)
        raise
    points.apply_retention(app, store=store)
    return point


def repair_draft(group: ProtectionGroup, draft, vm: ReplicaVm) -> None:
    """Repair the guest on the draft's boot layer again for the target, as protect did on the first copy
    (blocks the source changed may have undone the first repair)."""
    from vmferry.guest.repair import merge_settings, repair_image

    root = etree.parse(os.path.join(group.replica_dir, vm.domain_xml)).getroot()
    macs = [m.get("address") for m in root.iter("mac")]
    image = points.draft_layer(draft, vm.disks[0])
    try:
        repair_image(image, ["kvm"], nics=merge_settings(macs, []), trusted_chain=True)
    except VmferryError as exc:
        raise ReplicationError(f"repairing {vm.vm} in point {draft.point_id} failed: {exc}") from exc


# -- launching a point (test launches, and the recovery of the next issue) ------------------------------
def launch_xml(group: ProtectionGroup, vm_name: str, point_id: str, workdir: str, *,
               network: str | None = None) -> str:
    """A domain definition that runs ``vm_name`` as of ``point_id`` without changing the point: each disk
    is a new qcow2 layer in ``workdir`` over the point's layer. ``network``: every NIC joins it (the
    target's isolated test network for a test; ``user`` for user-mode networking)."""
    vm = group.vm(vm_name)
    point = group.point(point_id)
    root = etree.parse(os.path.join(group.replica_dir, vm.domain_xml)).getroot()
    vm_dir = os.path.join(group.replica_dir, "vms", vm.vm) + os.sep
    os.makedirs(workdir, exist_ok=True)
    for ref in vm.disks:
        layer = os.path.join(points.point_dir(group, point.point_id), point.disk(ref.key).file)
        overlay = os.path.join(workdir, f"{ref.key}.launch.qcow2")
        points.create_overlay(overlay, layer, ref.size)
    for el in root.iter("source", "log"):
        value = el.get("file")
        if value and value.startswith(vm_dir):
            rest = value[len(vm_dir):]
            if rest.endswith(".launch.qcow2") or rest == "console.log":
                el.set("file", os.path.join(workdir, rest))
    if network is not None:
        for iface in root.iter("interface"):
            for child in list(iface):
                if child.tag == "source":
                    iface.remove(child)
            if network == "user":
                iface.set("type", "user")
            else:
                iface.set("type", "network")
                etree.SubElement(iface, "source", network=network)
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def record_test(app: str, vm_name: str, point_id: str, ok: bool, detail: str = "", *,
                store: Store | None = None) -> None:
    store = store or Store()
    with store.locked(app):
        group = store.load(app)
        vm = group.vm(vm_name)
        result = TestResult(point_id, points.now_iso(), ok, detail)
        vms = tuple(replace(v, last_test=result) if v.vm == vm.vm else v for v in group.vms)
        store.save(replace(group, vms=vms))


# -- status -------------------------------------------------------------------------------------------
def rpo_finding(group: ProtectionGroup, now: datetime) -> Finding | None:
    """VMF-DR-001 when the newest point is older than the RPO (or there is none)."""
    newest = group.newest
    if newest is None:
        return Finding("VMF-DR-001", "error", f"application {group.app!r} has no recovery point; its RPO is "
                       f"{group.rpo_seconds} s", group.app, "run vmferry sync")
    age = (now - datetime.fromisoformat(newest.taken_at)).total_seconds()
    if age > group.rpo_seconds:
        return Finding("VMF-DR-001", "error", f"the newest recovery point of {group.app!r} ({newest.point_id}) is "
                       f"{int(age)} s old, older than its RPO of {group.rpo_seconds} s", group.app,
                       "run vmferry sync, and check that its schedule runs")
    return None


def status(app: str | None = None, *, store: Store | None = None, now: datetime | None = None) -> dict:
    """Per application and VM: sites, newest point and its age against the RPO, last sync's bytes and
    time, replica readiness, last test; ``findings`` holds the RPO breaches (VMF-DR-001)."""
    store = store or Store()
    now = now or datetime.now(UTC)
    names = [app] if app else store.apps()
    apps, findings = [], []
    for name in names:
        group = store.load(name)
        newest = group.newest
        age = (now - datetime.fromisoformat(newest.taken_at)).total_seconds() if newest else None
        breach = rpo_finding(group, now)
        if breach:
            findings.append(breach)
        vms = []
        for vm in group.vms:
            vms.append({
                "vm": vm.vm, "component": vm.component, "source": {"kind": vm.source_kind, "name": vm.source},
                "protected_site": group.target_site,
                "newest_point": newest.point_id if newest else None,
                "age_seconds": round(age, 1) if age is not None else None,
                "rpo_seconds": group.rpo_seconds,
                "rpo": "breached" if breach else "ok",
                "consistency": next((s.consistency for s in newest.sessions if s.vm == vm.vm), None) if newest else None,
                "last_sync": _vm_sync(newest, vm),
                "readiness": vm.readiness, "guest_findings": [to_json(n) for n in vm.notes],
                "last_test": to_json(vm.last_test) if vm.last_test else None,
            })
        apps.append({
            "app": group.app, "source_site": group.source_site, "target_site": group.target_site,
            "replica_dir": group.replica_dir, "rpo_seconds": group.rpo_seconds, "keep": group.keep,
            "points": [{"id": p.point_id, "taken_at": p.taken_at, "consistency": p.consistency,
                        "merged_from": list(p.merged_from)} for p in group.points],
            "newest_point": newest.point_id if newest else None,
            "age_seconds": round(age, 1) if age is not None else None,
            "rpo": "breached" if breach else "ok",
            "sync_in_progress": group.draft.point_id if group.draft else None,
            "last_sync": ({"point": newest.point_id, "bytes_read": newest.bytes_read,
                           "bytes_written": newest.bytes_written, "seconds": newest.seconds} if newest else None),
            "vms": vms,
        })
    return {"applications": apps, "findings": [f.to_dict() for f in findings], "now": now.isoformat(timespec="seconds")}


def _vm_sync(point: RecoveryPoint | None, vm: ReplicaVm) -> dict | None:
    if point is None:
        return None
    disks = [d for d in point.disks if d.ref.vm == vm.vm]
    return {"point": point.point_id, "bytes_written": sum(d.bytes_written for d in disks),
            "seconds": point.seconds}


def verify_app(app: str, *, point_id: str | None = None, deep: bool = True, store: Store | None = None) -> dict:
    """Verify one point or all of them; a failing point is the finding VMF-DR-002."""
    store = store or Store()
    group = store.load(app)
    ids = [point_id] if point_id else [p.point_id for p in group.points]
    results, findings = [], []
    for pid in ids:
        problems = points.verify_point(group, pid, deep=deep)
        results.append({"id": pid, "problems": problems})
        if problems:
            findings.append(Finding("VMF-DR-002", "error", f"recovery point {pid} of {app!r} does not verify: "
                                    f"{problems[0]}", app, "take a new point with vmferry sync; do not launch "
                                    "this one").to_dict())
    return {"app": app, "points": results, "findings": findings}
