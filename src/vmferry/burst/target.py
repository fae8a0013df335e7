"""Where copies of a component go and what they join: :class:`BurstTarget`, resolved once per run.

* the ready image: the newest recovery point of the component's protection group (its replica VM's
  domain definition, OVF environment and disk layers), through :func:`vmferry.recovery.spec.plan_from_group`
  — the same resolution a test recovery makes;
* the burst site must be the group's replica site (the ready image lives there);
* each NIC: the libvirt network its target network maps to at the site (``platform.libvirt.networks``)
  and the site network's address ``pool`` (addresses copies take; the site's ``in_use`` addresses, the
  gateway and the addresses the move plan gives the application's own VMs are never handed out);
* the load-balancer pool the component is a member of (the policy's ``pool`` when given) and the site's
  HAProxy runtime API; the A/AAAA records of the zone that name the component (round-robin names) and,
  with ``instance_dns``, one name per copy; the site's locator.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from vmferry.errors import BurstError, VmferryError
from vmferry.plans.model import App, BurstPolicy, DnsRecord, LbPool, Site, SiteNetwork
from vmferry.recovery.model import RecoveryVm


@dataclass(frozen=True)
class BurstTarget:
    app: App
    component: str
    site: Site
    uri: str
    storage: str
    vm: RecoveryVm                   # the ready image: definition, disk layers, NIC networks, probes
    point_id: str
    network: str                     # libvirt network of the copies' NIC
    site_network: SiteNetwork
    reserved: frozenset[str]         # addresses never handed out
    pool: LbPool | None
    policy: BurstPolicy | None
    domain_type: str | None = None

    @property
    def backend(self) -> str | None:
        return self.pool.name if self.pool else None

    @property
    def round_robin(self) -> list[DnsRecord]:
        return [r for r in self.app.dns_records if r.target_kind == "component" and self.component in r.targets
                and r.type in ("A", "AAAA")]

    def instance_name(self, hostname: str) -> str:
        return f"{hostname}.{self.app.zone}" if self.app.zone else f"{hostname}.{self.app.name}"


def _pool(app: App, component: str, policy: BurstPolicy | None) -> LbPool | None:
    if policy and policy.pool:
        found = next((p for p in app.pools if p.name == policy.pool), None)
        if found is None:
            raise BurstError(f"the burst policy of {component} names pool {policy.pool!r}, which the "
                             "application does not declare", path=app.path)
        return found
    pools = [p for p in app.pools if component in p.members]
    if len(pools) > 1:
        raise BurstError(f"{component} is a member of {len(pools)} pools ({', '.join(p.name for p in pools)}): "
                         "name one in its burst policy", path=app.path)
    return pools[0] if pools else None


def make_target(app: App, component: str, site_name: str, vm: RecoveryVm, point_id: str, *, uri: str,
                storage: str, reserved: set[str] = frozenset(), domain_type: str | None = None) -> BurstTarget:
    """The burst target of ``vm`` (the component's replica in the ready point) at ``site_name``."""
    site = app.sites.get(site_name)
    if site is None:
        raise BurstError(f"the application declares no site {site_name!r}", path=app.path)
    if component not in app.components:
        raise BurstError(f"the application has no component {component!r}", path=app.path)
    if site.libvirt is None:
        raise BurstError(f"site {site_name!r} runs no VMs (no libvirt platform)", path=app.path)
    if len(vm.nics) != 1:
        raise BurstError(f"{component} has {len(vm.nics)} NICs; burst copies are made of one-NIC components")
    nic = vm.nics[0]
    net = site.networks.get(nic.network)
    if net is None:
        raise BurstError(f"site {site_name!r} declares no network {nic.network!r}", path=app.path)
    if net.pool is None:
        raise BurstError(f"site {site_name!r} network {nic.network!r} has no address pool for copies",
                         path=app.path)
    lvnet = site.libvirt.network(nic.network)
    if not lvnet:
        raise BurstError(f"site {site_name!r} maps network {nic.network!r} to no libvirt network", path=app.path)
    if not os.path.isdir(storage):
        raise BurstError("the site's storage directory does not exist", path=storage)
    taken = set(reserved) | set(site.in_use) | {n.address for n in vm.nics if n.address}
    if net.gateway:
        taken.add(net.gateway)
    policy = app.components[component].burst
    pool = _pool(app, component, policy)
    if pool is not None and (site.lb is None or not site.lb.runtime):
        raise BurstError(f"site {site_name!r} has no load balancer runtime API for pool {pool.name}",
                         path=app.path)
    return BurstTarget(app=app, component=component, site=site, uri=uri, storage=storage, vm=vm,
                       point_id=point_id, network=lvnet, site_network=net, reserved=frozenset(taken), pool=pool,
                       policy=policy, domain_type=domain_type)


def target_from_group(app: App, group, component: str, site_name: str, *,
                      domain_type: str | None = None, timeout: float = 300.0) -> BurstTarget:
    """The burst target from a protection group (:class:`vmferry.replication.store.ProtectionGroup`):
    the component's replica in the group's newest point."""
    from vmferry.recovery.spec import plan_from_group

    if site_name != group.target_site:
        raise BurstError(f"the ready image of {group.app} is at site {group.target_site!r}, not {site_name!r}")
    try:
        plan = plan_from_group(app, group, timeout=timeout, domain_type=domain_type)
    except VmferryError as exc:
        raise BurstError(f"cannot resolve the ready image of {group.app}: {exc}") from exc
    vm = next((v for v in plan.vms if v.component == component), None)
    if vm is None:
        raise BurstError(f"the protection group of {group.app} has no replica of {component!r}")
    reserved = {n.address for v in plan.vms for n in v.nics if n.address}
    return make_target(app, component, site_name, vm, plan.point_id, uri=plan.uri, storage=plan.storage,
                       reserved=reserved, domain_type=domain_type)


def free_address(target: BurstTarget, used: set[str]) -> str:
    """The lowest address of the site network's pool neither reserved nor used by a copy."""
    first, last = (ipaddress.ip_address(a) for a in target.site_network.pool)
    net = target.site_network.network
    addr = first
    while addr <= last:
        text = addr.compressed
        if addr in net and addr not in (net.network_address, net.broadcast_address) \
                and text not in target.reserved and text not in used:
            return text
        addr += 1
    raise BurstError(f"site {target.site.name!r} network {target.site_network.name!r}: the address pool "
                     f"{first}-{last} is exhausted")
