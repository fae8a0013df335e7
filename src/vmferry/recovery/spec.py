"""From a protection group and its application manifest to a :class:`RecoveryPlan`.

* the point: the one asked for, else the newest sealed point of the group;
* per VM: the replica's domain definition and OVF environment (protect wrote both), the point's layer
  of each disk (``<replica dir>/points/<point>/<vm>.<disk>.qcow2``);
* addresses, target networks and boot groups: the move plan's (:func:`vmferry.plans.plan.build_plan`
  from the group's source site to its target site) — the same addresses a failover gives them;
* health checks: a TCP connect to every port the component declares (``ports:``) and, for each load
  balancer pool it is a member of, the pool's health check on the pool's port (HTTP path or TCP);
* application checks: each pool's health check against each member, run last (the test network has no
  load balancer of its own yet).
"""

from __future__ import annotations

import os

from vmferry.errors import RecoveryError, VmferryError
from vmferry.plans.model import App
from vmferry.recovery.model import AppCheck, Probe, RecoveryPlan, RecoveryVm, TargetNetwork, VmDisk, VmNic

DEFAULT_TIMEOUT = 300.0


def _env(group, vm) -> tuple[tuple[str, str], ...]:
    if not vm.env_iso:
        return ()
    from vmferry.ovfenv.document import parse_environment
    from vmferry.ovfenv.iso import read_iso_file

    path = os.path.join(group.replica_dir, vm.env_iso)
    return tuple(parse_environment(read_iso_file(path), path=path).properties.items())


def disk_targets(xml: str, vm) -> dict[str, str]:
    """Disk key (``vm.disk``) -> libvirt target (``vda``) in the replica's definition: the disk whose source
    is the key's launch layer (package sources name disks by their package id), else the disk whose
    target is the key's disk (running-domain sources name them by target), else the same position."""
    from lxml import etree

    root = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    elems = [d for d in root.iter("disk") if d.get("device", "disk") == "disk" and d.find("target") is not None]
    by_file = {os.path.basename((d.find("source").get("file") or "") if d.find("source") is not None else ""):
               d.find("target").get("dev") for d in elems}
    devs = [d.find("target").get("dev") for d in elems]
    if len(devs) != len(vm.disks):
        raise RecoveryError(f"{vm.vm}: the replica's definition has {len(devs)} disks, the point {len(vm.disks)}")
    out = {}
    for i, ref in enumerate(vm.disks):
        out[ref.key] = by_file.get(f"{ref.key}.launch.qcow2") or (ref.disk if ref.disk in devs else devs[i])
    return out


def probes_of(app: App, component: str) -> tuple[Probe, ...]:
    comp = app.components[component]
    out = [Probe("tcp", p) for p in comp.ports]
    for pool in app.pools:
        if component in pool.members:
            if pool.health.kind == "http":
                out.append(Probe("http", pool.port, pool.health.path or "/"))
            elif pool.port not in comp.ports:
                out.append(Probe("tcp", pool.port))
    seen, unique = set(), []
    for p in out:
        if p.describe() not in seen:
            seen.add(p.describe())
            unique.append(p)
    return tuple(unique)


def plan_from_group(app: App, group, *, point_id: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                    domain_type: str | None = None) -> RecoveryPlan:
    """The test recovery plan of ``group`` (a :class:`vmferry.replication.store.ProtectionGroup`)."""
    from vmferry.recovery.reprotect import move_plan
    from vmferry.replication import points

    point = group.newest if point_id is None else next((p for p in group.points if p.point_id == point_id), None)
    if point is None:
        have = ", ".join(p.point_id for p in group.points) or "none"
        what = f"no recovery point {point_id}" if point_id else "no recovery point yet"
        raise RecoveryError(f"application {group.app!r} has {what} (points: {have})")
    target = app.sites.get(group.target_site)
    if target is None or target.libvirt is None:
        raise RecoveryError(f"site {group.target_site!r} runs no VMs (no libvirt platform)", path=app.path)
    storage = target.libvirt.storage_dir or os.path.dirname(group.replica_dir.rstrip(os.sep))
    try:
        move = move_plan(app, group)     # a failback: the return home (addresses as the manifest says)
    except VmferryError as exc:
        raise RecoveryError(f"the move plan {group.source_site} -> {group.target_site} fails: {exc}") from exc
    nics_of: dict[str, list] = {}
    for nic in move.nics:
        nics_of.setdefault(nic.component, []).append(nic)
    vms = []
    pdir = points.point_dir(group, point.point_id)
    for vm in group.vms:
        with open(os.path.join(group.replica_dir, vm.domain_xml), encoding="utf-8") as fh:
            xml = fh.read()
        targets = disk_targets(xml, vm)
        disks = []
        for ref in vm.disks:
            pd = point.disk(ref.key)
            disks.append(VmDisk(targets[ref.key], os.path.join(pdir, pd.file)))
        nics = tuple(VmNic(n.index, n.target_network or n.source_network, n.new_address, n.prefix, n.gateway)
                     for n in sorted(nics_of.get(vm.component, []), key=lambda n: n.index))
        vms.append(RecoveryVm(component=vm.component, name=vm.vm, domain_xml=xml, disks=tuple(disks), nics=nics,
                              env=_env(group, vm), probes=probes_of(app, vm.component), agent=True,
                              timeout=timeout))
    used = {n.network for vm in vms for n in vm.nics}
    networks = tuple(TargetNetwork(n.name, n.subnet, n.gateway) for n in target.networks.values() if n.name in used)
    missing = sorted(used - {n.name for n in networks})
    if missing:
        raise RecoveryError(f"site {group.target_site!r} declares no network {missing[0]!r}", path=app.path)
    address = {vm.component: vm.address for vm in vms}
    checks = []
    for pool in app.pools:
        for member in pool.members:
            if address.get(member):
                checks.append(AppCheck(f"pool {pool.name}: {member}", pool.health.kind, address[member], pool.port,
                                       pool.health.path or "/"))
    return RecoveryPlan(app=app.name, site=group.target_site, uri=group.target_uri, storage=storage,
                        point_id=point.point_id, taken_at=point.taken_at, vms=tuple(vms),
                        groups=tuple(tuple(g) for g in move.boot_order), networks=networks, checks=tuple(checks),
                        cycles=tuple(tuple(c) for c in move.cycles), domain_type=domain_type)
