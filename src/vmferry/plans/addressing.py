"""Network mapping and re-addressing of every NIC of an application for a move between two sites.

Per NIC, the first rule that applies wins:

1. a per-NIC override (``moves[].overrides``);
2. a subnet rule ``from: 10.1.1.0/24 → to: 10.20.1.0/24`` that keeps the host part;
3. a pool rule naming the target network: the next free address of that network's pool;
4. otherwise the NIC is left without an address and a risk is reported.

Conflicts are detected after all NICs are addressed: an address used twice, an address the target
site lists as in use, an address outside its target subnet, or equal to the network, broadcast or
gateway address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from vmferry.findings import Finding
from vmferry.plans.model import App, Move, Site


@dataclass
class NicPlan:
    component: str
    index: int
    source_network: str
    target_network: str | None
    old_address: str | None
    new_address: str | None
    prefix: int | None
    rule: str                       # how the new address was chosen
    gateway: str | None = None
    dns_servers: tuple[str, ...] = ()
    mtu: int | None = None

    @property
    def changed(self) -> bool:
        return self.old_address != self.new_address


def map_networks(app: App, move: Move, source: Site, target: Site) -> tuple[dict[str, str | None], list[Finding]]:
    """Source network → target network (explicit, else by name), with a risk per unmapped network."""
    explicit = dict(move.networks)
    used = sorted({nic.network for c in app.components.values() for nic in c.nics})
    out: dict[str, str | None] = {}
    risks = []
    for name in used:
        dst = explicit.get(name, name if name in target.networks else None)
        if dst is not None and dst not in target.networks:
            risks.append(Finding("VMF-APP-002", "error", f"network {name} is mapped to {dst}, which site "
                                 f"{target.name} does not declare", location=f"moves {move.source}->{move.target}"))
            dst = None
        elif dst is None:
            risks.append(Finding("VMF-APP-001", "error", f"network {name} has no counterpart at site "
                                 f"{target.name}", location=f"network {name}",
                                 fix="map it under moves[].networks or declare it at the target site"))
        out[name] = dst
        src_net = source.networks.get(name)
        if src_net is None:
            risks.append(Finding("VMF-APP-014", "warning", f"network {name} is not declared at site {source.name}",
                                 location=f"network {name}", fix=f"declare it under sites.{source.name}.networks"))
        else:
            for c in app.components.values():
                for nic in c.nics:
                    if nic.network == name and nic.address and ipaddress.ip_address(nic.address) not in src_net.network:
                        risks.append(Finding("VMF-APP-014", "warning", f"{c.name} NIC {nic.index} address {nic.address}"
                                             f" is outside {name} {src_net.subnet} at site {source.name}",
                                             location=f"component {c.name}"))
        if dst and src_net and target.networks[dst].mtu < src_net.mtu:
            risks.append(Finding("VMF-APP-003", "warning", f"MTU drops from {src_net.mtu} ({source.name}/{name}) "
                                 f"to {target.networks[dst].mtu} ({target.name}/{dst})", location=f"network {name}",
                                 fix="lower the guest MTU or enable path MTU discovery end to end"))
    return out, risks


def _pool_addresses(net) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    first, last = (ipaddress.ip_address(a) for a in net.pool)
    cur = first
    while cur <= last:
        yield cur
        cur += 1


def readdress(app: App, move: Move, target: Site, netmap: dict[str, str | None]) -> tuple[list[NicPlan], list[Finding]]:
    overrides = {(c, i): a for c, i, a in move.overrides}
    rules = [(ipaddress.ip_network(r.source), ipaddress.ip_network(r.target)) for r in move.subnets]
    risks: list[Finding] = []
    nics: list[NicPlan] = []
    pending_pool: list[NicPlan] = []
    for comp in app.components.values():
        for nic in comp.nics:
            dst_name = netmap.get(nic.network)
            dst = target.networks.get(dst_name) if dst_name else None
            plan = NicPlan(comp.name, nic.index, nic.network, dst_name, nic.address, None,
                           dst.network.prefixlen if dst else nic.prefix, "none",
                           dst.gateway if dst else None, dst.dns_servers if dst else (), dst.mtu if dst else None)
            nics.append(plan)
            if (comp.name, nic.index) in overrides:
                plan.new_address, plan.rule = overrides[(comp.name, nic.index)], "override"
                continue
            if nic.address is None:
                plan.rule = "dhcp"
                continue
            old = ipaddress.ip_address(nic.address)
            rule = next(((a, b) for a, b in rules if old in a), None)
            if rule:
                a, b = rule
                host = int(old) - int(a.network_address)
                plan.new_address = ipaddress.ip_address(int(b.network_address) + host).compressed
                plan.rule = f"subnet {a} -> {b}"
            elif dst_name in move.pools and dst and dst.pool:
                pending_pool.append(plan)
            else:
                plan.rule = "none"
                risks.append(Finding("VMF-APP-004", "error", f"{comp.name} NIC {nic.index} ({nic.address}) has "
                                     "no re-addressing rule", location=f"component {comp.name}",
                                     fix="add a subnet or pool rule, or an override, under moves[]"))
    taken = {ipaddress.ip_address(a) for a in target.in_use}
    taken |= {ipaddress.ip_address(p.new_address) for p in nics if p.new_address}
    cursors: dict[str, Iterator] = {}       # one pass over each pool, however many NICs draw from it
    for plan in pending_pool:
        net = target.networks[plan.target_network]
        cursor = cursors.setdefault(net.name, _pool_addresses(net))
        free = next((a for a in cursor if a not in taken), None)
        if free is None:
            plan.rule = "pool exhausted"
            risks.append(Finding("VMF-APP-005", "error", f"pool of {target.name}/{net.name} has no free address "
                                 f"for {plan.component} NIC {plan.index}", location=f"network {net.name}"))
            continue
        taken.add(free)
        plan.new_address, plan.rule = free.compressed, f"pool {net.pool[0]}-{net.pool[1]}"
    risks += conflicts(nics, target)
    return nics, risks


def conflicts(nics: list[NicPlan], target: Site) -> list[Finding]:
    out = []
    seen: dict[str, NicPlan] = {}
    in_use = set(target.in_use)
    for p in nics:
        if not p.new_address:
            continue
        where = f"component {p.component}"
        if p.new_address in seen:
            other = seen[p.new_address]
            out.append(Finding("VMF-APP-006", "error", f"address conflict: {p.new_address} is given to both "
                               f"{other.component} NIC {other.index} and {p.component} NIC {p.index}", location=where))
        seen.setdefault(p.new_address, p)
        if p.new_address in in_use:
            out.append(Finding("VMF-APP-007", "error", f"address conflict: {p.new_address} ({p.component} NIC "
                               f"{p.index}) is already in use at site {target.name}", location=where,
                               fix="choose another address (override) or free it at the target"))
        net = target.networks.get(p.target_network) if p.target_network else None
        if net is None:
            continue
        addr = ipaddress.ip_address(p.new_address)
        if addr not in net.network:
            out.append(Finding("VMF-APP-008", "error", f"{p.new_address} ({p.component} NIC {p.index}) is outside "
                               f"{net.name} {net.subnet} at site {target.name}", location=where))
        elif net.network.num_addresses > 2 and addr in (net.network.network_address, net.network.broadcast_address):
            out.append(Finding("VMF-APP-008", "error", f"{p.new_address} ({p.component} NIC {p.index}) is the "
                               f"network or broadcast address of {net.subnet}", location=where))
        elif net.gateway and p.new_address == net.gateway:
            out.append(Finding("VMF-APP-007", "error", f"address conflict: {p.new_address} ({p.component} NIC "
                               f"{p.index}) is the gateway of {net.name}", location=where))
    return out


def address_map(nics: list[NicPlan]) -> dict[str, str]:
    """Old address → new address, for the NICs that change."""
    return {p.old_address: p.new_address for p in nics if p.old_address and p.new_address and p.changed}


def by_component(nics: list[NicPlan]) -> dict[str, list[NicPlan]]:
    out: dict[str, list[NicPlan]] = {}
    for p in nics:
        out.setdefault(p.component, []).append(p)
    return out


def primary_address(index: dict[str, list[NicPlan]], component: str, *, new: bool) -> str | None:
    """The first NIC's address of ``component`` (after the move when ``new``); ``index`` from by_component."""
    first = index.get(component)
    if not first:
        return None
    return first[0].new_address if new else first[0].old_address
