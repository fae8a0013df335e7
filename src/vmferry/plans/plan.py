"""Compute everything that must change when an application moves from one site to another.

>>> from vmferry.plans import load_app, build_plan
>>> plan = build_plan(load_app("examples/three-tier/app.yaml"), "dc1", "cloud")
>>> plan.boot_order
[['db'], ['app'], ['web1', 'web2']]

A :class:`Plan` is plain data (``to_dict`` gives the JSON form). Its ``steps`` are what
``--apply`` does, in order: DNS updates, locator registrations, load-balancer members, the
firewall ruleset. Risks are :class:`~vmferry.findings.Finding` s with ``VMF-APP-*`` rule ids
(documented in ``docs/app.md``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import asdict, dataclass, field

from vmferry.errors import PlanError
from vmferry.findings import Finding
from vmferry.plans.addressing import (
    NicPlan,
    address_map,
    by_component,
    map_networks,
    primary_address,
    readdress,
)
from vmferry.plans.discover import Suggestion
from vmferry.plans.model import App, Endpoint, FirewallRule, Move, Service, Site, SubnetRule
from vmferry.plans.netprops import ovf_properties
from vmferry.plans.order import boot_order
from vmferry.portable import NetConfig


@dataclass
class VmSettings:
    component: str
    properties: dict[str, str]


@dataclass
class DnsChange:
    name: str
    type: str
    old: list[str]
    new: list[str]
    ttl: int

    @property
    def changed(self) -> bool:
        return sorted(self.old) != sorted(self.new)


@dataclass
class LbChange:
    pool: str
    member: str
    old: str | None                 # address:port at the source
    new: str | None                 # address:port at the target
    check: str                      # tcp, http GET /path


@dataclass
class FirewallChange:
    rule: str
    old: str
    new: str | None                 # None: cannot be expressed at the target
    changed: bool


@dataclass
class CertIssue:
    certificate: str
    component: str
    problem: str


@dataclass
class LocatorChange:
    eid: str
    component: str
    old: str | None
    new: str | None


@dataclass
class ServiceChange:
    component: str
    service: str
    kind: str
    identity: bool
    old: str
    new: str | None                 # None: no counterpart at the target


@dataclass
class Step:
    id: str                         # stable: the journal keys on it
    kind: str                       # dns, locator, lb, firewall
    summary: str
    params: dict

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps([self.id, self.params], sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Plan:
    app: str
    source: str
    target: str
    networks: dict[str, str | None]
    nics: list[NicPlan]
    vm_settings: list[VmSettings]
    dns: list[DnsChange]
    lb: list[LbChange]
    firewall: list[FirewallChange]
    ruleset: str | None
    certificates: list[CertIssue]
    locator: list[LocatorChange]
    services: list[ServiceChange]
    boot_order: list[list[str]]
    cycles: list[list[str]]
    risks: list[Finding]
    steps: list[Step] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(r.severity == "error" for r in self.risks)

    def to_dict(self) -> dict:
        doc = asdict(self)
        for s, d in zip(self.steps, doc["steps"], strict=True):
            d["digest"] = s.digest
        for s, d in zip(self.suggestions, doc["suggestions"], strict=True):
            d["yaml"] = s.yaml
        return doc


def _counterpart(service: Service, site: Site) -> Service | None:
    if service.name in site.services:
        return site.services[service.name]
    return next((s for s in site.services.values() if s.kind == service.kind), None)


def _services(app: App, source: Site, target: Site) -> tuple[list[ServiceChange], list[Finding]]:
    out, risks = [], []
    for dep in app.dependencies:
        if dep.target_kind != "service":
            continue
        svc = app.services[dep.target]
        if svc.scope == "global":
            continue
        old = _counterpart(svc, source) or svc
        new = _counterpart(svc, target)
        out.append(ServiceChange(dep.source, svc.name, svc.kind, svc.is_identity, old.endpoint,
                                 new.endpoint if new else None))
        if new is None:
            what = "identity service" if svc.is_identity else "service"
            risks.append(Finding("VMF-APP-010", "error", f"{dep.source} depends on {what} {svc.name} ({svc.kind}, "
                                 f"{old.endpoint}) which has no counterpart at site {target.name}",
                                 location=f"service {svc.name}",
                                 fix=f"declare a {svc.kind} service under sites.{target.name}.services, or mark "
                                     "the service scope: global if it stays reachable"))
    return out, risks


def _vm_settings(app: App, index: dict[str, list[NicPlan]], app_zone: str | None) -> list[VmSettings]:
    out = []
    for comp in app.components.values():
        configs = {}
        for p in index.get(comp.name, []):
            configs[p.index] = NetConfig(dhcp=True if p.rule == "dhcp" else None, address=p.new_address,
                                         prefix=p.prefix if p.new_address else None, gateway=p.gateway,
                                         dns_servers=list(p.dns_servers),
                                         search_domains=[app_zone] if app_zone else [], origin="vmferry")
        out.append(VmSettings(comp.name, ovf_properties(configs)))
    return out


def _dns(app: App, index: dict[str, list[NicPlan]], source: Site, target: Site) -> list[DnsChange]:
    out = []
    pools = {p.name: p for p in app.pools}
    for rec in app.dns_records:
        if rec.type == "CNAME":
            continue

        def values(new: bool, rec=rec) -> list[str]:
            site = target if new else source
            if rec.target_kind == "address":
                return list(rec.targets)
            vals = []
            for t in rec.targets:
                if rec.target_kind == "component":
                    vals.append(primary_address(index, t, new=new))
                elif site.lb and site.lb.vip(t):
                    vals.append(site.lb.vip(t))
                elif t in pools:
                    vals += [primary_address(index, m, new=new) for m in pools[t].members]
            version = 6 if rec.type == "AAAA" else 4
            return sorted({v for v in vals if v and ipaddress.ip_address(v).version == version})

        out.append(DnsChange(rec.name, rec.type, values(False), values(True), rec.ttl))
    return out


def _lb(app: App, index: dict[str, list[NicPlan]]) -> list[LbChange]:
    out = []
    for pool in app.pools:
        check = "http GET " + (pool.health.path or "/") if pool.health.kind == "http" else "tcp"
        for m in pool.members:
            old, new = primary_address(index, m, new=False), primary_address(index, m, new=True)
            out.append(LbChange(pool.name, m, f"{old}:{pool.port}" if old else None,
                                f"{new}:{pool.port}" if new else None, check))
    return out


def _map_prefix(text: str, amap: dict[str, str], rules: tuple[SubnetRule, ...]) -> str:
    net = ipaddress.ip_network(text, strict=False)
    if net.num_addresses == 1 and net.network_address.compressed in amap:
        return ipaddress.ip_network(amap[net.network_address.compressed]).compressed
    for r in rules:
        a, b = ipaddress.ip_network(r.source), ipaddress.ip_network(r.target)
        if net.version == a.version and net.subnet_of(a):
            offset = int(net.network_address) - int(a.network_address)
            return ipaddress.ip_network(f"{ipaddress.ip_address(int(b.network_address) + offset)}/{net.prefixlen}").compressed
    return net.compressed


def resolve_endpoint(ep: Endpoint, app: App, index: dict[str, list[NicPlan]], amap: dict[str, str], site: Site,
                     new: bool, move: Move) -> list[str] | None:
    """Prefixes an endpoint stands for at ``site`` (``[]`` for any; None if it cannot be expressed)."""
    if ep.kind == "any":
        return []
    if ep.kind == "component":
        addrs = [(p.new_address if new else p.old_address) for p in index.get(ep.value, [])]
        return sorted({ipaddress.ip_network(a).compressed for a in addrs if a}) or None
    if ep.kind == "service":
        svc = app.services[ep.value]
        found = svc if svc.scope == "global" else _counterpart(svc, site) or (None if new else svc)
        if found is None:
            return None
        try:
            return [ipaddress.ip_network(found.host).compressed]
        except ValueError:
            return None
    if new:
        return [_map_prefix(ep.value, amap, move.subnets)]
    return [ep.value]


def _rule_text(rule: FirewallRule, src: list[str], dst: list[str]) -> str:
    def side(word: str, prefixes: list[str]) -> str:
        if not prefixes:
            return ""
        fam = "ip6" if ":" in prefixes[0] else "ip"
        prefixes = [p.rpartition("/")[0] if p.endswith(("/32", "/128")) and (p.endswith("/128") or ":" not in p)
                    else p for p in prefixes]
        body = prefixes[0] if len(prefixes) == 1 else "{ " + ", ".join(prefixes) + " }"
        return f"{fam} {word} {body} "

    port = f"{rule.protocol} dport {rule.port} " if rule.port else (f"meta l4proto {rule.protocol} ")
    name = rule.name.replace('"', "'")
    return f'{side("saddr", src)}{side("daddr", dst)}{port}{rule.action} comment "{name}"'


def _firewall(app: App, nics: list[NicPlan], source: Site, target: Site, move: Move
              ) -> tuple[list[FirewallChange], list[Finding]]:
    out, risks = [], []
    index, amap = by_component(nics), address_map(nics)
    for rule in app.firewall:
        old_s = resolve_endpoint(rule.source, app, index, amap, source, False, move)
        old_d = resolve_endpoint(rule.dest, app, index, amap, source, False, move)
        new_s = resolve_endpoint(rule.source, app, index, amap, target, True, move)
        new_d = resolve_endpoint(rule.dest, app, index, amap, target, True, move)
        old = _rule_text(rule, old_s or [], old_d or [])
        if new_s is None or new_d is None:
            out.append(FirewallChange(rule.name, old, None, True))
            risks.append(Finding("VMF-APP-011", "warning", f"firewall rule {rule.name} cannot be written for site "
                                 f"{target.name}: an endpoint has no address there", location=f"firewall {rule.name}",
                                 fix="declare the service at the target with an IP address"))
            continue
        families = {":" in p for p in new_s + new_d}
        if len(families) > 1:
            out.append(FirewallChange(rule.name, old, None, True))
            risks.append(Finding("VMF-APP-011", "warning", f"firewall rule {rule.name} mixes IPv4 and IPv6",
                                 location=f"firewall {rule.name}"))
            continue
        new = _rule_text(rule, new_s, new_d)
        out.append(FirewallChange(rule.name, old, new, new != old))
    return out, risks


def _certificates(app: App, nics: list[NicPlan]) -> tuple[list[CertIssue], list[Finding]]:
    issues = []
    amap, index = address_map(nics), by_component(nics)
    for cert in app.certificates:
        for comp in cert.components:
            new_addrs = {p.new_address for p in index.get(comp, []) if p.new_address}
            for ip in cert.ip_sans:
                if ip in amap and amap[ip] in new_addrs:
                    issues.append(CertIssue(cert.name, comp, f"IP SAN {ip} will not match the new address {amap[ip]}"))
            if cert.ip_sans:
                for a in sorted(new_addrs - set(cert.ip_sans)):
                    if not any(amap.get(ip) == a for ip in cert.ip_sans):
                        issues.append(CertIssue(cert.name, comp, f"new address {a} is not among the IP SANs"))
    risks = [Finding("VMF-APP-012", "warning", f"certificate {i.certificate} ({i.component}): {i.problem}",
                     location=f"certificate {i.certificate}", fix="reissue the certificate with the new IP SANs, or "
                     "use DNS names only") for i in issues]
    return issues, risks


def _steps(plan: Plan, target: Site, zone: str | None) -> tuple[list[Step], list[Finding]]:
    steps, risks = [], []

    def missing(what: str, key: str) -> None:
        risks.append(Finding("VMF-APP-013", "info", f"site {target.name} declares no {what}: {key} changes are "
                             "listed but not applied", location=f"sites.{target.name}"))

    dns_changes = [d for d in plan.dns if d.changed and d.new]   # never delete a name for want of an address
    if dns_changes and target.dns is None:
        missing("dns server", "DNS")
    elif dns_changes:
        for d in dns_changes:
            verb = f"replace {d.name} {d.type} with {', '.join(d.new)}"
            steps.append(Step(f"dns:{d.name}/{d.type}", "dns", f"DNS {target.dns.server}:{target.dns.port}: {verb}"
                              f" (ttl {d.ttl})", {"zone": zone or d.name.partition(".")[2], "name": d.name,
                                                     "type": d.type, "values": d.new, "ttl": d.ttl}))
    loc_changes = [c for c in plan.locator if c.new and c.new != c.old]
    if loc_changes and target.locator is None:
        missing("locator service", "locator")
    elif loc_changes:
        for c in loc_changes:
            steps.append(Step(f"locator:{c.eid}", "locator", f"locator {target.locator.url}: register {c.eid} -> "
                              f"{c.new}", {"eid": c.eid, "locator": c.new, "ttl": target.locator.ttl,
                                           "instance_id": target.locator.instance_id,
                                           "expires_in": target.locator.expires_in}))
    lb_changes = [c for c in plan.lb if c.new]
    if lb_changes and (target.lb is None or not target.lb.runtime):
        missing("load balancer runtime API", "load-balancer")
    elif lb_changes:
        for c in lb_changes:
            steps.append(Step(f"lb:{c.pool}/{c.member}", "lb", f"HAProxy {target.lb.runtime}: backend {c.pool} "
                              f"server {c.member} -> {c.new} (check {c.check})",
                              {"backend": c.pool, "server": c.member, "address": c.new.rpartition(":")[0],
                               "port": int(c.new.rpartition(":")[2]), "check": c.check != ""}))
    if plan.ruleset is not None and target.firewall is None:
        missing("firewall ruleset path", "firewall")
    elif plan.ruleset is not None:
        steps.append(Step("firewall:ruleset", "firewall", f"write nftables ruleset {target.firewall.ruleset} "
                          f"(table inet {target.firewall.table}, checked with nft -c)",
                          {"path": target.firewall.ruleset, "text": plan.ruleset}))
    return steps, risks


def build_plan(app: App, source_name: str, target_name: str) -> Plan:
    """The plan to move ``app`` from site ``source_name`` to site ``target_name``."""
    for name in (source_name, target_name):
        if name not in app.sites:
            raise PlanError(f"unknown site {name!r} (the manifest declares: {', '.join(sorted(app.sites)) or 'none'})",
                            path=app.path)
    if source_name == target_name:
        raise PlanError(f"--from and --to are both {source_name}", path=app.path)
    source, target = app.sites[source_name], app.sites[target_name]
    move = app.move(source_name, target_name)
    netmap, risks = map_networks(app, move, source, target)
    nics, more = readdress(app, move, target, netmap)
    return _assemble(app, source, target, move, netmap, nics, risks + more)


def return_plan(app: App, away_name: str, home_name: str) -> Plan:
    """The plan to bring ``app`` back to ``home_name`` after the move ``home_name`` -> ``away_name`` took it
    away (a failback): every NIC goes from its address at ``away_name`` back to the one the manifest
    declares, its network back to its own; DNS, load-balancer members, locators, firewall rules and
    settings point at the home addresses again. :func:`build_plan` from ``away_name`` would not: the
    manifest's addresses are the home site's, so nothing would seem to change."""
    from dataclasses import replace

    forward = build_plan(app, home_name, away_name)
    source, target = app.sites[away_name], app.sites[home_name]
    move = forward_move = app.move(home_name, away_name)
    move = replace(forward_move, source=away_name, target=home_name,
                   networks=tuple((b, a) for a, b in forward_move.networks),
                   subnets=tuple(SubnetRule(r.target, r.source) for r in forward_move.subnets), pools=(), overrides=())
    nics = [replace(n, source_network=n.target_network or n.source_network, target_network=n.source_network,
                    old_address=n.new_address, new_address=n.old_address, rule=f"back to its address at {home_name}")
            for n in forward.nics]
    netmap = {t: s for s, t in forward.networks.items() if t}
    return _assemble(app, source, target, move, netmap, nics, [], identity_at_target=True)


def _assemble(app: App, source: Site, target: Site, move: Move, netmap: dict, nics: list[NicPlan],
              risks: list[Finding], *, identity_at_target: bool = False) -> Plan:
    """The plan from the NICs' moves; a component's default locator EID is its address at the site its
    identity belongs to (the manifest's: the source, or the target for a return home)."""
    source_name, target_name = source.name, target.name
    index = by_component(nics)
    dns = _dns(app, index, source, target)
    services, more = _services(app, source, target)
    risks += more
    firewall, more = _firewall(app, nics, source, target, move)
    risks += more
    certs, more = _certificates(app, nics)
    risks += more
    locator = []
    for comp in app.components.values():
        old, new = primary_address(index, comp.name, new=False), primary_address(index, comp.name, new=True)
        ident = new if identity_at_target else old
        eids = comp.eids or ((f"{ident}/{ipaddress.ip_address(ident).max_prefixlen}",) if ident else ())
        locator += [LocatorChange(e, comp.name, old, new) for e in eids]
    groups, cycles = boot_order(app.components, [(d.source, d.target) for d in app.dependencies
                                                 if d.target_kind == "component"])
    for cyc in cycles:
        risks.append(Finding("VMF-APP-009", "warning", f"dependency cycle: {' -> '.join(cyc + cyc[:1])}; these start "
                             "together", location="dependencies"))
    ruleset = None
    if app.firewall:
        from vmferry.plans.nft import render_ruleset

        table = target.firewall.table if target.firewall else "vmferry"
        ruleset = render_ruleset(table, app.name, [f.new for f in firewall if f.new])
    plan = Plan(app.name, source_name, target_name, netmap, nics, _vm_settings(app, index, app.zone), dns, _lb(app, index),
                firewall, ruleset, certs, locator, services, groups, cycles, risks)
    plan.steps, more = _steps(plan, target, app.zone)
    plan.risks += more
    return plan
