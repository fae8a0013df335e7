"""Read and validate an application manifest (YAML, schema in ``docs/app.md``).

Every error is a :class:`~vmferry.errors.PlanError` naming the file and the key path, e.g.
``app.yaml: components.web1.nics[0].address: '10.1.1.300/24' is not an IP address``. Unknown keys
are refused (a typo must not silently drop a firewall rule). Component NICs come from the package
(:func:`vmferry.dialects.read_package`, the portable profile of its default deployment profile); the
manifest adds or overrides their source addresses.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from vmferry.errors import PlanError, VmferryError
from vmferry.plans.burst_policy import burst_policy
from vmferry.plans.model import (
    PLATFORMS,
    App,
    Certificate,
    Component,
    Dependency,
    DnsRecord,
    Endpoint,
    FirewallRule,
    HealthCheck,
    LbPool,
    LibvirtPlatform,
    Move,
    NicSpec,
    Service,
    Site,
    SiteDns,
    SiteFirewall,
    SiteLb,
    SiteLocator,
    SiteNetwork,
    SubnetRule,
    Tsig,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class _Ctx:
    """Where we are in the document, for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent
        self.packages: dict[str, Any] = {}      # real path -> PortablePackage

    def fail(self, where: str, problem: str) -> PlanError:
        return PlanError(f"{where}: {problem}" if where else problem, path=self.path)

    def mapping(self, value: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping, not {type(value).__name__}")
        unknown = sorted(set(map(str, value)) - allowed)
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
        missing = sorted(required - set(value))
        if missing:
            raise self.fail(where, f"missing key {missing[0]!r}")
        return value

    def seq(self, value: Any, where: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(where, f"must be a list, not {type(value).__name__}")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
            raise self.fail(where, f"must be a non-empty string, not {value!r}")
        return str(value).strip()

    def name(self, value: Any, where: str) -> str:
        text = self.text(value, where)
        if not _NAME.match(text):
            raise self.fail(where, f"{text!r} is not a valid name (letters, digits, _ . -; at most 63)")
        return text

    def integer(self, value: Any, where: str, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(where, f"must be an integer {low}..{high}, not {value!r}")
        return value

    def address(self, value: Any, where: str) -> str:
        try:
            return ipaddress.ip_address(str(value).strip()).compressed
        except ValueError:
            raise self.fail(where, f"{value!r} is not an IP address") from None

    def interface(self, value: Any, where: str) -> tuple[str, int | None]:
        text = str(value).strip()
        try:
            iface = ipaddress.ip_interface(text)
        except ValueError:
            raise self.fail(where, f"{value!r} is not an IP address (with optional /prefix)") from None
        return iface.ip.compressed, iface.network.prefixlen if "/" in text else None

    def network(self, value: Any, where: str) -> str:
        try:
            return ipaddress.ip_network(str(value).strip(), strict=True).compressed
        except ValueError as exc:
            raise self.fail(where, f"{value!r} is not a subnet: {exc}") from None

    def protocol(self, value: Any, where: str) -> str:
        proto = str(value or "tcp").lower()
        if proto not in ("tcp", "udp"):
            raise self.fail(where, f"protocol must be tcp or udp, not {value!r}")
        return proto

    def secret(self, data: dict, where: str) -> str | None:
        if "secret" in data and "secret_file" in data:
            raise self.fail(where, "give secret or secret_file, not both")
        if "secret_file" in data:
            file = self.base / self.text(data["secret_file"], f"{where}.secret_file")
            try:
                return file.read_text().strip()
            except OSError as exc:
                raise self.fail(f"{where}.secret_file", f"cannot read {file}: {exc.strerror}") from exc
        return self.text(data["secret"], f"{where}.secret") if "secret" in data else None


def _yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise PlanError(f"cannot read: {exc.strerror}", path=path) from exc
    except UnicodeDecodeError as exc:
        raise PlanError("not UTF-8 text", path=path) from exc
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml when present
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlanError(f"{where}not valid YAML: {problem}", path=path) from exc


# -- sites ----------------------------------------------------------------------------------------------
def _site(ctx: _Ctx, name: str, data: Any) -> Site:
    w = f"sites.{name}"
    data = ctx.mapping(data, w, {"networks", "services", "in_use", "dns", "load_balancer", "locator",
                                 "firewall", "platform", "libvirt"},
                       set() if isinstance(data, dict) and data.get("platform") else {"networks"})
    platform, libvirt = _platform(ctx, data, w)
    networks = {}
    for net_name, nd in ctx.mapping(data.get("networks") or {}, f"{w}.networks",
                                    set(map(str, data.get("networks") or {}))).items():
        nw = f"{w}.networks.{net_name}"
        nd = ctx.mapping(nd, nw, {"subnet", "gateway", "dns", "mtu", "pool"}, {"subnet"})
        subnet = ctx.network(nd["subnet"], f"{nw}.subnet")
        net = ipaddress.ip_network(subnet)
        gateway = ctx.address(nd["gateway"], f"{nw}.gateway") if nd.get("gateway") else None
        if gateway and ipaddress.ip_address(gateway) not in net:
            raise ctx.fail(f"{nw}.gateway", f"{gateway} is not in {subnet}")
        pool = None
        if nd.get("pool"):
            first, sep, last = str(nd["pool"]).partition("-")
            if not sep:
                raise ctx.fail(f"{nw}.pool", "must be FIRST-LAST, e.g. 10.20.1.100-10.20.1.199")
            first, last = ctx.address(first, f"{nw}.pool"), ctx.address(last, f"{nw}.pool")
            if not (ipaddress.ip_address(first) in net and ipaddress.ip_address(last) in net
                    and ipaddress.ip_address(first) <= ipaddress.ip_address(last)):
                raise ctx.fail(f"{nw}.pool", f"{first}-{last} is not a range inside {subnet}")
            pool = (first, last)
        networks[str(net_name)] = SiteNetwork(
            str(net_name), subnet, gateway,
            tuple(ctx.address(a, f"{nw}.dns") for a in ctx.seq(nd.get("dns"), f"{nw}.dns")),
            ctx.integer(nd.get("mtu", 1500), f"{nw}.mtu", 576, 65535), pool)
    services = {str(k): _service(ctx, str(k), v, f"{w}.services.{k}")
                for k, v in (data.get("services") or {}).items()}
    in_use = tuple(ctx.address(a, f"{w}.in_use") for a in ctx.seq(data.get("in_use"), f"{w}.in_use"))
    dns = lb = locator = firewall = None
    if data.get("dns"):
        d = ctx.mapping(data["dns"], f"{w}.dns", {"server", "tsig"}, {"server"})
        host, port = _hostport(ctx, d["server"], f"{w}.dns.server", 53)
        tsig = None
        if d.get("tsig"):
            t = ctx.mapping(d["tsig"], f"{w}.dns.tsig", {"name", "algorithm", "secret", "secret_file"}, {"name"})
            secret = ctx.secret(t, f"{w}.dns.tsig")
            if not secret:
                raise ctx.fail(f"{w}.dns.tsig", "needs secret or secret_file")
            tsig = Tsig(ctx.text(t["name"], f"{w}.dns.tsig.name"), secret,
                        str(t.get("algorithm", "hmac-sha256")))
        dns = SiteDns(host, port, tsig)
    if data.get("load_balancer"):
        d = ctx.mapping(data["load_balancer"], f"{w}.load_balancer", {"kind", "runtime", "vips"})
        kind = str(d.get("kind", "haproxy"))
        if kind != "haproxy":
            raise ctx.fail(f"{w}.load_balancer.kind", f"only haproxy is supported, not {kind!r}")
        vips = tuple((str(k), ctx.address(v, f"{w}.load_balancer.vips.{k}"))
                     for k, v in (d.get("vips") or {}).items())
        runtime = str(d["runtime"]) if d.get("runtime") else None
        if runtime and runtime.startswith("unix:"):
            runtime = str(ctx.base / runtime[5:]) if not os.path.isabs(runtime[5:]) else runtime[5:]
            runtime = "unix:" + runtime
        lb = SiteLb(kind, runtime, vips)
    if data.get("locator"):
        d = ctx.mapping(data["locator"], f"{w}.locator", {"url", "key_id", "secret", "secret_file", "ttl",
                                                           "instance_id", "expires_in"}, {"url"})
        locator = SiteLocator(ctx.text(d["url"], f"{w}.locator.url"),
                              str(d["key_id"]) if d.get("key_id") else None, ctx.secret(d, f"{w}.locator"),
                              ctx.integer(d.get("ttl", 60), f"{w}.locator.ttl", 0, 86400),
                              ctx.integer(d.get("instance_id", 0), f"{w}.locator.instance_id", 0, 2**24 - 1),
                              ctx.integer(d.get("expires_in", 86400), f"{w}.locator.expires_in", 1, 7 * 86400))
    if data.get("firewall"):
        d = ctx.mapping(data["firewall"], f"{w}.firewall", {"ruleset", "table"}, {"ruleset"})
        table = ctx.text(d.get("table", "vmferry"), f"{w}.firewall.table")
        if not table.replace("_", "").isalnum():
            raise ctx.fail(f"{w}.firewall.table", f"{table!r} is not a valid nftables table name")
        firewall = SiteFirewall(str(ctx.base / ctx.text(d["ruleset"], f"{w}.firewall.ruleset")), table)
    return Site(name, networks, services, in_use, dns, lb, locator, firewall, platform, libvirt)


def _platform(ctx: _Ctx, data: dict, w: str) -> tuple[str | None, LibvirtPlatform | None]:
    """``platform: libvirt`` with its ``libvirt:`` settings (uri, storage or pool, networks,
    test_network)."""
    if data.get("platform") is None:
        if "libvirt" in data:
            raise ctx.fail(f"{w}.libvirt", "needs platform: libvirt")
        return None, None
    platform = ctx.text(data["platform"], f"{w}.platform")
    if platform not in PLATFORMS:
        raise ctx.fail(f"{w}.platform", f"must be one of {', '.join(PLATFORMS)}, not {platform!r}")
    lw = f"{w}.libvirt"
    if "libvirt" not in data:
        raise ctx.fail(w, "platform: libvirt needs a libvirt: mapping (uri, storage or pool)")
    d = ctx.mapping(data["libvirt"], lw, {"uri", "storage", "pool", "networks", "test_network"}, {"uri"})
    uri = ctx.text(d["uri"], f"{lw}.uri")
    if "://" not in uri:
        raise ctx.fail(f"{lw}.uri", f"{uri!r} is not a libvirt connection URI (e.g. qemu:///system)")
    if ("storage" in d) == ("pool" in d):
        raise ctx.fail(lw, "give exactly one of storage (a directory) and pool (a libvirt storage pool)")
    storage = pool = None
    if "storage" in d:
        storage = os.path.normpath(str(ctx.base / ctx.text(d["storage"], f"{lw}.storage")))
    else:
        pool = ctx.name(d["pool"], f"{lw}.pool")
    nets = ctx.mapping(d.get("networks") or {}, f"{lw}.networks", set(map(str, d.get("networks") or {})))
    networks = tuple((str(k), ctx.text(v, f"{lw}.networks.{k}")) for k, v in nets.items())
    test = ctx.text(d["test_network"], f"{lw}.test_network") if d.get("test_network") is not None else None
    if test is not None and test in dict(networks).values():
        raise ctx.fail(f"{lw}.test_network", f"{test!r} also carries application traffic: a test network "
                                             "must be isolated")
    return platform, LibvirtPlatform(uri, storage, pool, networks, test)


def _hostport(ctx: _Ctx, value: Any, where: str, default: int) -> tuple[str, int]:
    text = ctx.text(value, where)
    host, sep, port = text.rpartition(":")
    if not sep or text.count(":") > 1 and not text.startswith("["):
        return text.strip("[]"), default
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ctx.fail(where, f"bad port in {text!r}")
    return host.strip("[]"), int(port)


def _service(ctx: _Ctx, name: str, data: Any, where: str) -> Service:
    d = ctx.mapping(data, where, {"kind", "host", "port", "protocol", "scope"}, {"host", "port"})
    scope = str(d.get("scope", "site"))
    if scope not in ("site", "global"):
        raise ctx.fail(f"{where}.scope", f"must be site or global, not {scope!r}")
    return Service(name, str(d.get("kind", name)).lower(), ctx.text(d["host"], f"{where}.host"),
                   ctx.integer(d["port"], f"{where}.port", 1, 65535), ctx.protocol(d.get("protocol"),
                                                                                 f"{where}.protocol"), scope)


# -- components -----------------------------------------------------------------------------------------
def _component(ctx: _Ctx, name: str, data: Any) -> Component:
    from vmferry.dialects import read_package
    from vmferry.package import open_package

    w = f"components.{name}"
    d = ctx.mapping(data, w, {"package", "source", "system", "nics", "eids", "ports", "burst"})
    kind, value = _source(ctx, d, w)
    policy = burst_policy(ctx, d["burst"], f"{w}.burst") if d.get("burst") is not None else None
    if kind == "domain":
        return replace(_domain_component(ctx, name, value, d, w), burst=policy)
    package = ctx.base / value
    key = os.path.realpath(package)
    if key not in ctx.packages:              # each package is read once per manifest
        try:
            ctx.packages[key] = read_package(open_package(package).envelope)
        except VmferryError as exc:
            raise ctx.fail(f"{w}.package", f"cannot read {package}: {exc}") from exc
    portable = ctx.packages[key]
    systems = portable.systems
    system_id = str(d["system"]) if d.get("system") else None
    if system_id:
        chosen = next((s for s in systems if s.id == system_id), None)
        if chosen is None:
            raise ctx.fail(f"{w}.system", f"{package} has no system {system_id!r} "
                                          f"(it has {', '.join(str(s.id) for s in systems)})")
    elif len(systems) == 1:
        chosen = systems[0]
    else:
        raise ctx.fail(w, f"{package} holds {len(systems)} systems: say which one with system:")
    from_props = chosen.net_config
    pkg_nics = chosen.nics_for(portable.default_profile)
    given = ctx.seq(d.get("nics"), f"{w}.nics")
    if len(given) > len(pkg_nics):
        raise ctx.fail(f"{w}.nics", f"lists {len(given)} NICs but the package system has {len(pkg_nics)}")
    nics = []
    for i, pkg_nic in enumerate(pkg_nics):
        network, address, prefix = pkg_nic.network, None, None
        if i in from_props and from_props[i].address and not from_props[i].dhcp:
            address, prefix = from_props[i].address, from_props[i].prefix
        if i < len(given):
            nw = f"{w}.nics[{i}]"
            g = ctx.mapping(given[i], nw, {"network", "address"})
            if g.get("network") and pkg_nic.network and str(g["network"]) != pkg_nic.network:
                raise ctx.fail(f"{nw}.network", f"{g['network']!r} differs from the package's "
                                                f"{pkg_nic.network!r}")
            network = str(g.get("network") or network or "")
            if g.get("address"):
                address, prefix = ctx.interface(g["address"], f"{nw}.address")
        if not network:
            raise ctx.fail(f"{w}.nics[{i}]", "NIC has no network in the package; give network:")
        nics.append(NicSpec(i, network, address, prefix))
    eids = tuple(ctx.text(e, f"{w}.eids") for e in ctx.seq(d.get("eids"), f"{w}.eids"))
    ports = tuple(ctx.integer(p, f"{w}.ports", 1, 65535) for p in ctx.seq(d.get("ports"), f"{w}.ports"))
    return Component(name, str(package), system_id or chosen.id, tuple(nics), eids, ports, burst=policy)


def _source(ctx: _Ctx, d: dict, w: str) -> tuple[str, str]:
    """("package", path) or ("domain", name): ``package: PATH``, ``source: {package: PATH}`` or
    ``source: {domain: NAME}`` (a running libvirt domain at the source site)."""
    if "source" in d:
        if "package" in d:
            raise ctx.fail(w, "give package: or source:, not both")
        s = ctx.mapping(d["source"], f"{w}.source", {"package", "domain"})
        if len(s) != 1:
            raise ctx.fail(f"{w}.source", "give exactly one of package (an OVF/OVA) and domain (a libvirt domain)")
        (kind, value), = s.items()
        return str(kind), ctx.text(value, f"{w}.source.{kind}")
    if "package" not in d:
        raise ctx.fail(w, "missing key 'package' (or source: {domain: NAME} for a running libvirt domain)")
    return "package", ctx.text(d["package"], f"{w}.package")


def _domain_component(ctx: _Ctx, name: str, domain: str, d: dict, w: str) -> Component:
    """A component whose source is a running libvirt domain: its NICs' networks come from the manifest."""
    if "system" in d:
        raise ctx.fail(f"{w}.system", "only a package source has systems")
    if not re.match(r"^[^/\x00-\x1f]{1,200}$", domain):
        raise ctx.fail(f"{w}.source.domain", f"{domain!r} is not a libvirt domain name")
    nics = []
    for i, g in enumerate(ctx.seq(d.get("nics"), f"{w}.nics")):
        nw = f"{w}.nics[{i}]"
        g = ctx.mapping(g, nw, {"network", "address"}, {"network"})
        address, prefix = ctx.interface(g["address"], f"{nw}.address") if g.get("address") else (None, None)
        nics.append(NicSpec(i, ctx.text(g["network"], f"{nw}.network"), address, prefix))
    eids = tuple(ctx.text(e, f"{w}.eids") for e in ctx.seq(d.get("eids"), f"{w}.eids"))
    ports = tuple(ctx.integer(p, f"{w}.ports", 1, 65535) for p in ctx.seq(d.get("ports"), f"{w}.ports"))
    return Component(name, "", None, tuple(nics), eids, ports, "domain", domain)


def _endpoint(ctx: _Ctx, value: Any, where: str, app: App) -> Endpoint:
    text = ctx.text(value, where)
    if text == "any":
        return Endpoint("any")
    kind, sep, rest = text.partition(":")
    if sep and kind == "service":
        if rest not in app.services:
            raise ctx.fail(where, f"unknown service {rest!r}")
        return Endpoint("service", rest)
    if text in app.components:
        return Endpoint("component", text)
    try:
        return Endpoint("cidr", ipaddress.ip_network(text, strict=False).compressed)
    except ValueError:
        raise ctx.fail(where, f"{text!r} is not any, a component, service:NAME or an address/prefix") from None


def load_app(path: str | os.PathLike, *, sites_file: str | os.PathLike | None = None) -> App:
    """Read an application manifest (and optionally a separate sites file that overrides its sites)."""
    path = Path(path)
    ctx = _Ctx(path)
    top = {"name", "zone", "components", "services", "dependencies", "dns", "load_balancer", "firewall",
           "certificates", "sites", "moves"}
    doc = ctx.mapping(_yaml(path), "", top, {"name", "components"})
    app = App(name=ctx.text(doc["name"], "name"), path=str(path),
              zone=str(doc["zone"]).rstrip(".").lower() if doc.get("zone") else None, components={})
    comps = ctx.mapping(doc["components"], "components", set(map(str, doc["components"] or {})))
    if not comps:
        raise ctx.fail("components", "needs at least one component")
    for name, data in comps.items():
        app.components[str(name)] = _component(ctx, ctx.name(name, f"components.{name}"), data)
    for name, data in (ctx.mapping(doc.get("services") or {}, "services",
                                   set(map(str, doc.get("services") or {})))).items():
        app.services[str(name)] = _service(ctx, ctx.name(name, f"services.{name}"), data, f"services.{name}")
    _relations(ctx, doc, app)
    _sites_into(ctx, doc.get("sites"), app)
    if sites_file is not None:
        sctx = _Ctx(Path(sites_file))
        sdoc = sctx.mapping(_yaml(Path(sites_file)), "", {"sites"}, {"sites"})
        _sites_into(sctx, sdoc["sites"], app)
    _moves(ctx, doc, app)
    return app


def _sites_into(ctx: _Ctx, data: Any, app: App) -> None:
    if data is None:
        return
    data = ctx.mapping(data, "sites", set(map(str, data)) if isinstance(data, dict) else set())
    for name, sd in data.items():
        app.sites[str(name)] = _site(ctx, str(name), sd)


def _relations(ctx: _Ctx, doc: dict, app: App) -> None:
    for i, dep in enumerate(ctx.seq(doc.get("dependencies"), "dependencies")):
        w = f"dependencies[{i}]"
        dep = ctx.mapping(dep, w, {"from", "to", "port", "protocol"}, {"from", "to"})
        src, dst = ctx.text(dep["from"], f"{w}.from"), ctx.text(dep["to"], f"{w}.to")
        if src not in app.components:
            raise ctx.fail(f"{w}.from", f"unknown component {src!r}")
        if dst.startswith("service:"):
            kind, dst = "service", dst[8:]
            if dst not in app.services:
                raise ctx.fail(f"{w}.to", f"unknown service {dst!r}")
        elif dst in app.components:
            kind = "component"
        else:
            raise ctx.fail(f"{w}.to", f"{dst!r} is neither a component nor service:NAME")
        port = ctx.integer(dep["port"], f"{w}.port", 1, 65535) if dep.get("port") is not None else (
            app.services[dst].port if kind == "service" else None)
        app.dependencies.append(Dependency(src, dst, kind, port, ctx.protocol(dep.get("protocol"), f"{w}.protocol")))
    dns = ctx.mapping(doc.get("dns") or {}, "dns", {"records"})
    for i, rec in enumerate(ctx.seq(dns.get("records"), "dns.records")):
        w = f"dns.records[{i}]"
        rec = ctx.mapping(rec, w, {"name", "type", "component", "pool", "address", "target", "ttl"}, {"name"})
        name = ctx.text(rec["name"], f"{w}.name").rstrip(".").lower()
        if "." not in name:                    # relative to the zone
            if not app.zone:
                raise ctx.fail(f"{w}.name", f"{name!r} is not fully qualified and there is no zone:")
            name = f"{name}.{app.zone}"
        elif app.zone and not (name == app.zone or name.endswith("." + app.zone)):
            raise ctx.fail(f"{w}.name", f"{name!r} is not inside the zone {app.zone}")
        rtype = str(rec.get("type", "A")).upper()
        kinds = [k for k in ("component", "pool", "address", "target") if k in rec]
        if len(kinds) != 1:
            raise ctx.fail(w, "give exactly one of component, pool, address, target")
        kind = kinds[0]
        raw = rec[kind]
        values = tuple(str(v) for v in (raw if isinstance(raw, list) else [raw]))
        if rtype not in ("A", "AAAA", "CNAME"):
            raise ctx.fail(f"{w}.type", f"only A, AAAA and CNAME records are modelled, not {rtype}")
        if (rtype == "CNAME") != (kind == "target"):
            raise ctx.fail(w, "a CNAME takes target:, A/AAAA records take component, pool or address")
        for v in values:
            if kind == "component" and v not in app.components:
                raise ctx.fail(f"{w}.component", f"unknown component {v!r}")
            if kind == "address":
                ctx.address(v, f"{w}.address")
        app.dns_records.append(DnsRecord(name, rtype, kind, values,
                                         ctx.integer(rec.get("ttl", 60), f"{w}.ttl", 0, 86400)))
    lb = ctx.mapping(doc.get("load_balancer") or {}, "load_balancer", {"pools"})
    for i, pool in enumerate(ctx.seq(lb.get("pools"), "load_balancer.pools")):
        w = f"load_balancer.pools[{i}]"
        pool = ctx.mapping(pool, w, {"name", "port", "members", "health_check"}, {"name", "port", "members"})
        members = tuple(ctx.text(m, f"{w}.members") for m in ctx.seq(pool["members"], f"{w}.members"))
        for m in members:
            if m not in app.components:
                raise ctx.fail(f"{w}.members", f"unknown component {m!r}")
        hc = ctx.mapping(pool.get("health_check") or {}, f"{w}.health_check", {"type", "path", "interval_ms"})
        kind = str(hc.get("type", "tcp"))
        if kind not in ("tcp", "http"):
            raise ctx.fail(f"{w}.health_check.type", f"must be tcp or http, not {kind!r}")
        app.pools.append(LbPool(ctx.name(pool["name"], f"{w}.name"), ctx.integer(pool["port"], f"{w}.port", 1, 65535),
                                members, HealthCheck(kind, hc.get("path"),
                                                     ctx.integer(hc.get("interval_ms", 2000),
                                                                 f"{w}.health_check.interval_ms", 100, 3600000))))
    for i, rule in enumerate(ctx.seq(doc.get("firewall"), "firewall")):
        w = f"firewall[{i}]"
        rule = ctx.mapping(rule, w, {"name", "from", "to", "port", "protocol", "action"}, {"from", "to"})
        action = str(rule.get("action", "accept"))
        if action not in ("accept", "drop", "reject"):
            raise ctx.fail(f"{w}.action", f"must be accept, drop or reject, not {action!r}")
        app.firewall.append(FirewallRule(
            str(rule.get("name", f"rule{i}")), _endpoint(ctx, rule["from"], f"{w}.from", app),
            _endpoint(ctx, rule["to"], f"{w}.to", app),
            ctx.integer(rule["port"], f"{w}.port", 1, 65535) if rule.get("port") is not None else None,
            ctx.protocol(rule.get("protocol"), f"{w}.protocol"), action))
    for i, cert in enumerate(ctx.seq(doc.get("certificates"), "certificates")):
        app.certificates.append(_certificate(ctx, cert, f"certificates[{i}]", app))


def _certificate(ctx: _Ctx, cert: Any, w: str, app: App) -> Certificate:
    cert = ctx.mapping(cert, w, {"name", "components", "dns_names", "ip_sans", "file"}, {"name", "components"})
    comps = tuple(ctx.text(c, f"{w}.components") for c in ctx.seq(cert["components"], f"{w}.components"))
    for c in comps:
        if c not in app.components:
            raise ctx.fail(f"{w}.components", f"unknown component {c!r}")
    names = [str(n).lower() for n in ctx.seq(cert.get("dns_names"), f"{w}.dns_names")]
    ips = [ctx.address(a, f"{w}.ip_sans") for a in ctx.seq(cert.get("ip_sans"), f"{w}.ip_sans")]
    file = None
    if cert.get("file"):
        file = str(ctx.base / ctx.text(cert["file"], f"{w}.file"))
        from vmferry.plans.certs import read_sans

        try:
            pem_names, pem_ips = read_sans(file)
        except PlanError as exc:
            raise ctx.fail(f"{w}.file", exc.message) from exc
        names += [n for n in pem_names if n not in names]
        ips += [a for a in pem_ips if a not in ips]
    return Certificate(ctx.text(cert["name"], f"{w}.name"), comps, tuple(names), tuple(ips), file)


def _moves(ctx: _Ctx, doc: dict, app: App) -> None:
    for i, mv in enumerate(ctx.seq(doc.get("moves"), "moves")):
        w = f"moves[{i}]"
        mv = ctx.mapping(mv, w, {"from", "to", "networks", "readdress", "overrides"}, {"from", "to"})
        src, dst = ctx.text(mv["from"], f"{w}.from"), ctx.text(mv["to"], f"{w}.to")
        networks = tuple((str(k), str(v)) for k, v in ctx.mapping(
            mv.get("networks") or {}, f"{w}.networks", set(map(str, mv.get("networks") or {}))).items())
        subnets, pools = [], []
        for j, rule in enumerate(ctx.seq(mv.get("readdress"), f"{w}.readdress")):
            rw = f"{w}.readdress[{j}]"
            rule = ctx.mapping(rule, rw, {"from", "to", "pool"})
            if "pool" in rule:
                if set(rule) != {"pool"}:
                    raise ctx.fail(rw, "a pool rule is just pool: TARGET-NETWORK")
                pools.append(ctx.text(rule["pool"], f"{rw}.pool"))
                continue
            if set(rule) != {"from", "to"}:
                raise ctx.fail(rw, "a subnet rule needs from: and to: (or give pool:)")
            a, b = ctx.network(rule["from"], f"{rw}.from"), ctx.network(rule["to"], f"{rw}.to")
            na, nb = ipaddress.ip_network(a), ipaddress.ip_network(b)
            if na.version != nb.version or na.prefixlen != nb.prefixlen:
                raise ctx.fail(rw, f"{a} and {b} must have the same family and prefix length to keep host parts")
            subnets.append(SubnetRule(a, b))
        overrides = []
        given = mv.get("overrides") or {}
        for comp, nics in ctx.mapping(given, f"{w}.overrides", set(app.components)).items():
            ow = f"{w}.overrides.{comp}"
            if not isinstance(nics, dict):
                raise ctx.fail(ow, "must map NIC index to address, e.g. {0: 10.20.1.50}")
            for idx, addr in nics.items():
                if not str(idx).isdigit() or int(idx) >= len(app.components[str(comp)].nics):
                    raise ctx.fail(ow, f"{comp} has no NIC {idx!r} (it has {len(app.components[str(comp)].nics)})")
                overrides.append((str(comp), int(idx), ctx.address(addr, f"{ow}.{idx}")))
        app.moves.append(Move(src, dst, networks, tuple(subnets), tuple(pools), tuple(overrides)))
