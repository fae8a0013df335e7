"""Protect an application at another site, keep its recovery points, say how old they are.

``protect``: each component's first full copy is converted and repaired for the target by the
``convert --to kvm`` library path (:func:`vmferry.targets.kvm.convert_to_kvm`), and kept as a
ready-to-launch replica: its domain definition for the target (networks mapped by the target site's
``libvirt.networks``), its OVF environment, and the first recovery point. ``unprotect`` removes the
replica directory protect created and the record, nothing else. ``sync_app`` takes one recovery point
of every VM at one moment. Status and verification: :mod:`vmferry.replication.status`; launching a point:
:mod:`vmferry.replication.launch` (see docs/replication.md).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import replace

from lxml import etree

from vmferry.errors import ReplicationError, VmferryError
from vmferry.replication import points, retention, synclease
from vmferry.replication.hashsync import PackageChanges, write_source_map
from vmferry.replication.model import DiskRef, RecoveryPoint
from vmferry.replication.store import GuestNote, ProtectionGroup, ReplicaVm, Store

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


_RATE = re.compile(r"^(\d{1,12})([kmgKMG]?)(?:i?[bB])?(?:/s)?$")
_RATE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_rate(text: str | int) -> int:
    """Bytes per second from ``0`` (no limit), ``512k``, ``50M``, ``1G`` (binary units; ``/s``, ``B``
    and ``iB`` suffixes taken), or an integer of bytes per second."""
    from vmferry.replication.copy import check_rate

    if isinstance(text, int) and not isinstance(text, bool):
        rate = text
    else:
        match = _RATE.match(str(text).strip())
        if not match:
            raise ReplicationError(f"{text!r} is not a bandwidth (bytes per second: a number, optionally k, M or G)")
        rate = int(match.group(1)) * _RATE_UNITS[match.group(2).lower()]
    check_rate(rate)
    return rate


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
            reporter=None, max_rate: str | int = 0) -> ProtectionGroup:
    """Make the application of ``manifest`` a protection group from ``source_site`` to ``target_site``:
    a converted, repaired first copy of every component at the target, recorded as the first point.
    ``max_rate`` (bytes/s, or ``50M``-style text; 0: none) limits every disk copy of its syncs."""
    from vmferry.plans.manifest import load_app

    store = store or Store()
    app = load_app(manifest)
    rpo_seconds = parse_duration(rpo)
    rate = parse_rate(max_rate)
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
    staging = tempfile.mkdtemp(prefix=f".{app.name}.protecting-", dir=storage)   # renamed when complete
    os.chmod(staging, 0o755)
    os.makedirs(os.path.join(staging, "vms"))
    try:
        vms, first_copies = [], {}
        domains = [c for c in app.components.values() if c.source_kind == "domain"]
        if domains and (source.platform != "libvirt" or source.libvirt is None):
            raise ReplicationError(f"component {domains[0].name!r} runs at site {source_site!r}, which has no "
                                   "platform: libvirt to reach it", path=app.path)
        for comp in app.components.values():
            if comp.source_kind == "domain":
                vms.append(_protect_domain(app, comp, source, target, staging, replica_dir, domain_type))
                continue
            vm, copies = _protect_package(app, comp, target, staging, replica_dir, domain_type, reporter)
            vms.append(vm)
            first_copies.update(copies)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    capture_dir = None
    if domains:
        capture_dir = os.path.join(storage_dir(source.libvirt), ".cap", app.name)
        os.makedirs(capture_dir, exist_ok=True)
        _same_owner(capture_dir, storage_dir(source.libvirt))
    group = ProtectionGroup(app.name, os.path.abspath(os.fspath(manifest)), source_site, target_site,
                            target.libvirt.uri, source.libvirt.uri if source.libvirt else None, replica_dir,
                            rpo_seconds, keep, points.now_iso(), tuple(vms),
                            created=(replica_dir, capture_dir) if capture_dir else (replica_dir,),
                            capture_dir=capture_dir, max_rate=rate)
    with store.locked(app.name):
        if store.exists(app.name):
            shutil.rmtree(staging, ignore_errors=True)
            raise ReplicationError(f"application {app.name!r} was protected meanwhile")
        store.save(group)           # first the record (unprotect finds what follows), then the replica
    try:
        os.rename(staging, replica_dir)
        draft = points.begin_point(app.name, store=store)
        try:
            for ref in draft.disks:
                if ref.key in first_copies:      # converted by convert_to_kvm: it becomes the first layer
                    copy, srcmap = (os.path.join(replica_dir, os.path.relpath(p, staging))
                                    for p in first_copies[ref.key])
                    os.replace(copy, points.draft_layer(draft, ref))
                    os.replace(srcmap, os.path.join(draft.draft_dir, f"{ref.key}.srcmap"))
                else:                            # a running domain: its first full copy
                    points.sync_disk(draft, ref, store=store)
            points.seal_point(draft, store=store)
        except BaseException:
            points.abandon_point(draft, store=store)
            raise
        shutil.rmtree(os.path.join(replica_dir, "convert"), ignore_errors=True)   # what was not kept
        group = store.load(app.name)
        if domains:
            group = _domain_readiness(store, group)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_group(store, app.name, group)
        raise
    return group


def _same_owner(path: str, like: str) -> None:
    """QEMU (the daemon's user) writes backup sockets and scratch files into the capture directory."""
    st = os.stat(like)
    if os.geteuid() == 0:
        for p in (os.path.dirname(path), path):
            os.chown(p, st.st_uid, st.st_gid)


def _protect_domain(app, comp, source, target, staging: str, replica_dir: str, domain_type) -> ReplicaVm:
    """The target's definition of a running source domain: its own XML, renamed, disks on the replica's
    launch layers, NICs on the target's networks, console into the replica directory."""
    from vmferry.replication.tracking import tracked_disks
    from vmferry.tools.libvirt import connect

    vm_name = f"{app.name}-{comp.name}"
    with connect(source.libvirt.uri) as conn:
        dom = conn.domain(comp.domain)
        if not dom.isActive():
            raise ReplicationError(f"component {comp.name!r}: domain {comp.domain!r} at site {source.name!r} is not "
                                   "running (change tracking needs the running domain)")
        xml = dom.XMLDesc(0)
        disks = tracked_disks(dom)
        sizes = {d: int(dom.blockInfo(d, 0)[0]) for d in disks}
    root = etree.fromstring(xml.encode())
    final_dir = os.path.join(replica_dir, "vms", vm_name)
    os.makedirs(os.path.join(staging, "vms", vm_name))
    refs = []
    for el in root.iter("disk"):
        dev = el.find("target").get("dev") if el.find("target") is not None else None
        if el.get("device") != "disk" or dev not in sizes:
            continue
        ref = DiskRef(app.name, comp.name, vm_name, dev, sizes[dev])
        refs.append(ref)
        for child in list(el):
            if child.tag in ("backingStore", "source", "alias", "address"):
                el.remove(child)
        el.set("type", "file")
        driver = el.find("driver")
        if driver is not None:
            driver.set("type", "qcow2")
        etree.SubElement(el, "source", file=os.path.join(final_dir, f"{ref.key}.launch.qcow2"))
    root.find("name").text = vm_name
    for tag in ("uuid", "seclabel"):
        for el in root.findall(tag):
            root.remove(el)
    if domain_type:
        root.set("type", domain_type)
    root.attrib.pop("id", None)
    devices = root.find("devices")
    for i, iface in enumerate(root.iter("interface")):
        net = comp.nics[i].network if i < len(comp.nics) else None
        mapped = target.libvirt.network(net) if net else None
        if mapped is None:
            raise ReplicationError(f"NIC {i} of domain {comp.domain!r}: site {target.name!r} maps no libvirt network "
                                   f"for {net or 'it (list the NIC under nics: with its network)'}", path=app.path)
        for child in list(iface):
            if child.tag in ("source", "target", "alias", "address"):
                iface.remove(child)
        iface.set("type", "network")
        etree.SubElement(iface, "source", network=mapped)
    for tag in ("serial", "console", "channel"):
        for el in devices.findall(tag):
            devices.remove(el)
    serial = etree.SubElement(devices, "serial", type="file")
    etree.SubElement(serial, "source", path=os.path.join(final_dir, "console.log"))
    etree.SubElement(serial, "target", port="0")
    with open(os.path.join(staging, "vms", vm_name, "domain.xml"), "wb") as fh:
        fh.write(etree.tostring(root, pretty_print=True))
    return ReplicaVm(comp.name, vm_name, "domain", comp.domain, None, tuple(refs),
                     os.path.join("vms", vm_name, "domain.xml"), None, False, "unknown")


def _domain_readiness(store: Store, group: ProtectionGroup) -> ProtectionGroup:
    """Readiness of each running-domain replica for kvm, read from its first point's boot layer (a first
    layer stands alone, so the usual header check applies to it)."""
    from vmferry.guest import inspect_image
    from vmferry.guest.readiness import readiness

    point = group.newest
    vms = []
    for vm in group.vms:
        if vm.source_kind != "domain" or not vm.disks:
            vms.append(vm)
            continue
        layer = os.path.join(points.point_dir(group, point.point_id), point.disk(vm.disks[0].key).file)
        try:
            result = readiness(inspect_image(layer), "kvm")
            notes = tuple(GuestNote(f.rule, f.severity, f.message) for f in result.reasons)
            vms.append(replace(vm, readiness=result.status, notes=notes))
        except VmferryError as exc:
            vms.append(replace(vm, readiness="unknown", notes=(GuestNote("VMF-KVM-003", "warning",
                                                                         f"guest inspection failed: {exc}"),)))
    with store.locked(group.app):
        group = replace(store.load(group.app), vms=tuple(vms))
        store.save(group)
    return group


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
    severities = {n.severity for n in notes}
    readiness = "will-not-boot" if "error" in severities else "needs-fixes" if "warning" in severities else "ready"
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
    if group.draft is not None and store.exists(app):
        points.abandon_point(group.draft, store=store)     # stops a running capture's backup jobs
    with store.locked(app):
        removed += _remove_checkpoints(group)
        for path in group.created:
            if os.path.abspath(path) not in {os.path.abspath(p) for p in (group.replica_dir, group.capture_dir) if p}:
                continue   # protect creates the replica and capture directories; nothing else is ever removed
            if os.path.isdir(path) and not os.path.islink(path):
                for root, dirs, _files in os.walk(path):
                    for name in dirs:
                        os.chmod(os.path.join(root, name), 0o700)
                shutil.rmtree(path)
                removed.append(path)
                parent = os.path.dirname(path)
                if os.path.basename(parent) == ".cap" and not os.listdir(parent):
                    os.rmdir(parent)
        if store.exists(app):
            current = store.load(app)
            if current.replica_dir == group.replica_dir:
                store.delete(app)
    return removed


def _remove_checkpoints(group: ProtectionGroup) -> list[str]:
    """The libvirt checkpoints vmferry made on the source domains for this application."""
    domains = [vm for vm in group.vms if vm.source_kind == "domain"]
    if not domains or not group.source_uri:
        return []
    from vmferry.replication.tracking import checkpoint_name
    from vmferry.tools.libvirt import connect

    prefix = checkpoint_name(group.app, "")
    removed = []
    with connect(group.source_uri) as conn:
        for vm in domains:
            if vm.source not in conn.names():
                continue
            dom = conn.domain(vm.source)
            for ck in dom.listAllCheckpoints(0):
                if ck.getName().startswith(prefix):
                    ck.delete(0)
                    removed.append(f"checkpoint {ck.getName()} of domain {vm.source}")
    return removed


# -- sync ---------------------------------------------------------------------------------------------
def sync_app(app: str, *, store: Store | None = None, heartbeat=None, max_rate: int | None = None,
             alive: synclease.Alive | None = None) -> RecoveryPoint:
    """One recovery point of every VM of ``app`` at one moment; older points beyond the group's
    retention are merged. A failure leaves no draft behind. ``max_rate`` (bytes/s) limits this sync's
    disk copies instead of the group's own limit. ``alive`` tells whether the owner of another sync's open
    point still runs (default: processes of this host asked, other owners taken as running)."""
    store = store or Store()
    draft = points.begin_point(app, store=store, reuse_open=False, owner=synclease.process_owner(),
                               alive=alive or synclease.process_alive)
    try:
        for ref in draft.disks:
            points.sync_disk(draft, ref, heartbeat=heartbeat, store=store, max_rate=max_rate)
        point = seal_repaired(draft, store=store)
    except BaseException:
        points.abandon_point(draft, store=store)
        raise
    retention.apply_retention(app, store=store)
    return point


def seal_repaired(draft, *, store: Store) -> RecoveryPoint:
    """Seal ``draft`` as a point, repairing again first the guests that protect repaired (the blocks the
    source changed may have undone the first repair). Idempotent: a draft already sealed is not repaired
    again, and :func:`points.seal_point` returns its point."""
    group = store.load(draft.app)
    if group.draft is not None and group.draft.point_id == draft.point_id:   # not sealed yet
        for vm in group.vms:
            if vm.repaired:
                repair_draft(group, draft, vm)
    return points.seal_point(draft, store=store)


def repair_draft(group: ProtectionGroup, draft, vm: ReplicaVm) -> None:
    """Repair the guest on the draft's boot layer again for the target, as protect did on the first copy
    (blocks the source changed may have undone the first repair)."""
    from vmferry.guest.repair import merge_settings, repair_image

    root = etree.parse(os.path.join(group.replica_dir, vm.domain_xml)).getroot()
    macs = [m.get("address") for m in root.iter("mac")]
    image = points.draft_layer(draft, vm.disks[0])
    points.forget_copy_digests(draft, vm.disks[0])   # the repair writes the layer: the seal reads it back
    try:
        repair_image(image, ["kvm"], nics=merge_settings(macs, []), trusted_chain=True)
    except VmferryError as exc:
        raise ReplicationError(f"repairing {vm.vm} in point {draft.point_id} failed: {exc}") from exc
