"""Guest network conventions: vendor property keys ↔ the portable :class:`~vmferry.portable.NetConfig`.

Appliances learn their network settings at first boot from OVF properties, and every vendor spells
them differently. This module is a plain table of :class:`Convention` plug-ins; each one scores how
well a set of properties matches it (:meth:`Convention.detect`, 0.0-1.0), reads them into one
:class:`NetConfig` per NIC index, and writes :class:`NetConfig` values back as properties:

=============  ===============================================================================
``vmware``     vApp / VAMI keys: ``ip0``, ``netmask0``, ``gateway``, ``DNS``, ``domain``,
               ``searchPath``, ``hostname``; also ``vami.ip0.<product>`` and ``guestinfo.`` prefixes
``cisco``      Cisco appliances: ``mgmt-ipv4-addr`` ("10.1.1.100/24", "10.1.1.100 255.255.255.0"
               or "dhcp"), ``mgmt-ipv4-gateway``, ``hostname``, ``domain-name``, ``mgmt-interface``
``cloud-init`` the keys cloud-init's OVF datasource reads: ``hostname``/``local-hostname``,
               ``instance-id`` and ``network-config`` (base64 of a network config v1 or v2)
``vmferry``    vmferry's portable keys: ``vmferry.net.<n>.mode|address|gateway|dns|search`` and
               ``vmferry.hostname`` (see ``docs/ovfenv.md``)
=============  ===============================================================================

Values that cannot be understood never raise: they become :class:`~vmferry.findings.Finding`\\ s
with rule ids ``VMF-NETCFG-0xx`` and the setting is left out.

>>> configs, findings = read_properties({"ip0": "10.1.1.100", "netmask0": "255.255.255.0",
...                                      "gateway": "10.1.1.1", "DNS": "10.1.1.2, 10.1.1.3"})
>>> c = configs[0]; (c.address, c.prefix, c.gateway, c.dns_servers)
('10.1.1.100', 24, '10.1.1.1', ['10.1.1.2', '10.1.1.3'])
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from vmferry.findings import Finding
from vmferry.portable import NetConfig, PropertySpec

Props = Mapping[str, str]

# -- rule ids (documented in docs/ovfenv.md) -------------------------------------------------------
BAD_ADDRESS = "VMF-NETCFG-001"
BAD_NETMASK = "VMF-NETCFG-002"
BAD_GATEWAY = "VMF-NETCFG-003"
GATEWAY_OFF_SUBNET = "VMF-NETCFG-004"
BAD_DNS = "VMF-NETCFG-005"
BAD_HOSTNAME = "VMF-NETCFG-006"
BAD_NETWORK_CONFIG = "VMF-NETCFG-007"
FAMILY_MISMATCH = "VMF-NETCFG-008"
NO_PREFIX = "VMF-NETCFG-009"
BAD_MODE = "VMF-NETCFG-010"
NIC_NAME_ASSUMED = "VMF-NETCFG-011"
BAD_SEARCH = "VMF-NETCFG-012"
EXTRA_ADDRESS = "VMF-NETCFG-013"
CONVENTIONS_DISAGREE = "VMF-NETCFG-014"

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


# -- address helpers -------------------------------------------------------------------------------
def prefix_from_netmask(mask: str, version: int = 4) -> int:
    """``255.255.255.0`` → 24, ``24`` or ``/24`` → 24, ``ffff:ffff::`` → 32. ValueError if invalid."""
    text = mask.strip().lstrip("/")
    limit = 32 if version == 4 else 128
    if text.isdigit():
        value = int(text)
        if not 0 <= value <= limit:
            raise ValueError(f"prefix length {value} out of range 0-{limit}")
        return value
    addr = ipaddress.ip_address(text)
    if addr.version != version:
        raise ValueError(f"netmask {text} is IPv{addr.version}, the address is IPv{version}")
    bits = int(addr)
    prefix = bin(bits).count("1")
    if bits != ((1 << limit) - 1) ^ ((1 << (limit - prefix)) - 1):
        raise ValueError(f"netmask {text} is not contiguous")
    return prefix


def netmask_from_prefix(prefix: int, version: int = 4) -> str:
    """24 → ``255.255.255.0`` (IPv4) or the IPv6 mask for ``version=6``."""
    net = ipaddress.ip_network(f"{'0.0.0.0' if version == 4 else '::'}/{prefix}")
    return str(net.netmask)


def parse_address(text: str) -> tuple[str, int | None]:
    """``10.1.1.100/24``, ``10.1.1.100 255.255.255.0``, ``10.1.1.100/255.255.255.0``, ``2001:db8::5/64``
    or a bare address → (address, prefix or None). ValueError when not an address."""
    parts = text.strip().replace("/", " ").split()
    if not parts or len(parts) > 2:
        raise ValueError(f"{text!r} is not an IP address")
    addr = ipaddress.ip_address(parts[0])
    prefix = prefix_from_netmask(parts[1], addr.version) if len(parts) == 2 else None
    return str(addr), prefix


def split_list(text: str | None) -> list[str]:
    """Comma, semicolon or blank separated list."""
    return [x for x in re.split(r"[,;\s]+", text or "") if x]


@dataclass
class NetReading:
    """What a convention read: one :class:`NetConfig` per NIC index, and findings about bad values."""

    configs: dict[int, NetConfig] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def nic(self, index: int, origin: str) -> NetConfig:
        if index not in self.configs:
            self.configs[index] = NetConfig(origin=origin)
        return self.configs[index]

    def finding(self, rule: str, severity: str, message: str, key: str = "") -> None:
        self.findings.append(Finding(rule, severity, message, location=f"property {key}" if key else ""))

    # Field setters that validate, record findings and never raise.
    def set_address(self, cfg: NetConfig, value: str, key: str, mask: str | None = None,
                    mask_key: str = "") -> None:
        try:
            addr, prefix = parse_address(value)
        except ValueError as exc:
            self.finding(BAD_ADDRESS, "error", f"{key}={value!r} is not an IP address: {exc}", key)
            return
        version = ipaddress.ip_address(addr).version
        if mask and mask.strip():
            try:
                prefix = prefix_from_netmask(mask, version)
            except ValueError as exc:
                self.finding(BAD_NETMASK, "error", f"{mask_key}={mask!r} is not a netmask: {exc}", mask_key)
        cfg.dhcp = False
        cfg.address, cfg.prefix = addr, prefix
        if prefix is None:
            self.finding(NO_PREFIX, "warning", f"{key}={value!r} has no netmask or prefix length", key)

    def set_gateway(self, cfg: NetConfig, value: str, key: str) -> None:
        try:
            gw = ipaddress.ip_address(value.strip())
        except ValueError:
            self.finding(BAD_GATEWAY, "error", f"{key}={value!r} is not an IP address", key)
            return
        cfg.gateway = str(gw)
        check_gateway(cfg, self, key)

    def add_dns(self, cfg: NetConfig, value: str, key: str) -> None:
        for item in split_list(value):
            try:
                server = str(ipaddress.ip_address(item))
            except ValueError:
                self.finding(BAD_DNS, "error", f"{key}: DNS server {item!r} is not an IP address", key)
                continue
            if server not in cfg.dns_servers:
                cfg.dns_servers.append(server)

    def add_search(self, cfg: NetConfig, value: str, key: str) -> None:
        for item in split_list(value):
            name = item.rstrip(".")
            if not all(_HOST_LABEL.match(label) for label in name.split(".")):
                self.finding(BAD_SEARCH, "warning", f"{key}: search domain {item!r} is not a DNS name", key)
                continue
            if name not in cfg.search_domains:
                cfg.search_domains.append(name)

    def set_hostname(self, cfg: NetConfig, value: str, key: str) -> None:
        name = value.strip().rstrip(".")
        if not name:
            return
        if not all(_HOST_LABEL.match(label) for label in name.split(".")):
            self.finding(BAD_HOSTNAME, "warning", f"{key}={value!r} is not a valid host name (RFC 1123)", key)
            return
        cfg.hostname = name

    def set_mode(self, cfg: NetConfig, value: str, key: str) -> None:
        mode = value.strip().lower()
        if mode in ("dhcp", "dhcp4", "dhcp6", "auto"):
            cfg.dhcp = True
        elif mode in ("static", "manual", "fixed"):
            cfg.dhcp = False
        elif mode:
            self.finding(BAD_MODE, "warning", f"{key}={value!r} is neither dhcp nor static", key)


def check_gateway(cfg: NetConfig, reading: NetReading, key: str = "") -> None:
    """Findings for a gateway of the wrong family or outside the address's subnet."""
    if not cfg.gateway or not cfg.address:
        return
    gw, addr = ipaddress.ip_address(cfg.gateway), ipaddress.ip_address(cfg.address)
    if gw.version != addr.version:
        reading.finding(FAMILY_MISMATCH, "warning",
                        f"gateway {gw} is IPv{gw.version} but the address {addr} is IPv{addr.version}", key)
    elif cfg.prefix is not None and gw not in ipaddress.ip_interface(f"{addr}/{cfg.prefix}").network:
        reading.finding(GATEWAY_OFF_SUBNET, "warning",
                        f"gateway {gw} is outside {addr}/{cfg.prefix}", key)


# -- key lookup ------------------------------------------------------------------------------------
def lookup(props: Props, name: str, *, vendor_prefixes: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """Find property ``name`` (case-insensitive) as written plainly, with a ``guestinfo.`` prefix, as a
    VAMI key (``vami.name`` / ``vami.name.<product>``) or as a DSP0243 full key ``<class>.name[.<instance>]``.
    Returns (key as written, value) or None. Keys in vmferry's own namespace are never borrowed."""
    lowered = {k.lower(): k for k in props}
    lname = name.lower()
    for candidate in (lname, f"guestinfo.{lname}", f"vami.{lname}"):
        if candidate in lowered:
            key = lowered[candidate]
            return key, props[key]
    suffixed = re.compile(rf"^(?:guestinfo\.)?vami\.{re.escape(lname)}\.[^.]+$")
    full = re.compile(rf"^(?:{'|'.join(re.escape(p) for p in vendor_prefixes) or '.+'})\.{re.escape(lname)}"
                      r"(?:\.[^.]+)?$")
    for pattern in (suffixed, full):
        for low, key in lowered.items():
            if not low.startswith("vmferry.") and pattern.match(low):
                return key, props[key]
    return None


# -- the conventions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Convention:
    """One vendor convention: a name, a confidence scorer, a reader and a writer."""

    name: str
    description: str
    detect: Callable[[Props], float]
    read: Callable[[Props], NetReading]
    write: Callable[[dict[int, NetConfig]], list[PropertySpec]]


def _prop(key: str, value: str, label: str, description: str = "") -> PropertySpec:
    return PropertySpec(key=key, type="string", value=value, user_configurable=True, label=label,
                        description=description or None)


# VMware vApp / VAMI ---------------------------------------------------------------------------------
_VMW_NIC = re.compile(r"^(?:guestinfo\.)?(?:vami\.)?(ip|netmask|gateway|dns|prefix)(\d+)(?:\.[^.]+)?$", re.I)


def _vmware_nics(props: Props) -> set[int]:
    return {int(m.group(2)) for k in props if (m := _VMW_NIC.match(k)) and m.group(1).lower() in ("ip", "netmask")}


def vmware_detect(props: Props) -> float:
    nics = _vmware_nics(props)
    if not nics:
        return 0.0
    return 0.9 if any(lookup(props, f"netmask{n}") for n in nics) else 0.7


def vmware_read(props: Props) -> NetReading:
    r = NetReading()
    for n in sorted(_vmware_nics(props)):
        cfg = r.nic(n, "vmware-vapp")
        ip = lookup(props, f"ip{n}")
        mask = lookup(props, f"netmask{n}") or lookup(props, f"prefix{n}")
        if ip is None:
            continue
        if not ip[1].strip() or ip[1].strip().lower() == "dhcp":
            cfg.dhcp = True
        else:
            r.set_address(cfg, ip[1], ip[0], mask[1] if mask else None, mask[0] if mask else "")
        gw = lookup(props, f"gateway{n}")
        if gw and gw[1].strip():
            r.set_gateway(cfg, gw[1], gw[0])
        dns = lookup(props, f"dns{n}")
        if dns:
            r.add_dns(cfg, dns[1], dns[0])
    first = r.nic(min(r.configs) if r.configs else 0, "vmware-vapp")
    gw = lookup(props, "gateway")
    if gw and gw[1].strip():
        target = next((c for c in r.configs.values() if c.address and c.prefix is not None and
                       _in_subnet(gw[1], c)), first)
        r.set_gateway(target, gw[1], gw[0])
    dns = lookup(props, "dns")
    if dns:
        r.add_dns(first, dns[1], dns[0])
    for name in ("domain", "searchPath"):
        found = lookup(props, name)
        if found:
            r.add_search(first, found[1], found[0])
    host = lookup(props, "hostname")
    if host:
        r.set_hostname(first, host[1], host[0])
    return _drop_empty(r)


def _in_subnet(gateway: str, cfg: NetConfig) -> bool:
    try:
        return ipaddress.ip_address(gateway.strip()) in ipaddress.ip_interface(
            f"{cfg.address}/{cfg.prefix}").network
    except ValueError:
        return False


def vmware_write(configs: dict[int, NetConfig]) -> list[PropertySpec]:
    out: list[PropertySpec] = []
    gateway = dns = search = host = None
    for n, cfg in sorted(configs.items()):
        if cfg.dhcp or cfg.address:
            out.append(_prop(f"ip{n}", "" if cfg.dhcp else cfg.address or "", f"NIC {n} IP address",
                             "leave empty for DHCP"))
            version = ipaddress.ip_address(cfg.address).version if cfg.address else 4
            mask = ("" if cfg.prefix is None or cfg.dhcp else
                    netmask_from_prefix(cfg.prefix) if version == 4 else str(cfg.prefix))
            out.append(_prop(f"netmask{n}", mask, f"NIC {n} netmask"))
        if cfg.gateway and gateway is None:
            gateway = cfg.gateway
        elif cfg.gateway:
            out.append(_prop(f"gateway{n}", cfg.gateway, f"NIC {n} gateway"))
        dns = dns or (",".join(cfg.dns_servers) if cfg.dns_servers else None)
        search = search or (" ".join(cfg.search_domains) if cfg.search_domains else None)
        host = host or cfg.hostname
    for key, value, label in (("gateway", gateway, "Default gateway"), ("DNS", dns, "DNS servers"),
                              ("searchPath", search, "DNS search path"), ("hostname", host, "Host name")):
        if value:
            out.append(_prop(key, value, label))
    return out


# Cisco appliances ------------------------------------------------------------------------------------
_CISCO = ("com.cisco.csr1000v", "com.cisco.iosv", "com.cisco.iosxrv", "com.cisco.nx-osv", "com.cisco.ios-xrv",
          "com.cisco.iosxr", "com.cisco.nxos", "com.cisco.asav", "com.cisco")


def cisco_detect(props: Props) -> float:
    if lookup(props, "mgmt-ipv4-addr", vendor_prefixes=_CISCO):
        return 0.9
    return 0.0


def cisco_read(props: Props) -> NetReading:
    r = NetReading()
    iface = lookup(props, "mgmt-interface", vendor_prefixes=_CISCO)
    # CSR1000v numbers its NICs GigabitEthernet1, 2, ...; other names (Gi0/0, Mgmt0) mean the first NIC.
    m = re.fullmatch(r"GigabitEthernet(\d+)", iface[1].strip(), re.I) if iface else None
    index = max(0, int(m.group(1)) - 1) if m else 0
    cfg = r.nic(index, "cisco")
    addr = lookup(props, "mgmt-ipv4-addr", vendor_prefixes=_CISCO)
    if addr and addr[1].strip():
        if addr[1].strip().lower() == "dhcp":
            cfg.dhcp = True
        else:
            r.set_address(cfg, addr[1], addr[0])
            if cfg.address and ipaddress.ip_address(cfg.address).version != 4:
                r.finding(FAMILY_MISMATCH, "warning", f"{addr[0]} holds an IPv6 address", addr[0])
    gw = lookup(props, "mgmt-ipv4-gateway", vendor_prefixes=_CISCO)
    if gw and gw[1].strip() and gw[1].strip().lower() != "dhcp":
        r.set_gateway(cfg, gw[1], gw[0])
    dom = lookup(props, "domain-name", vendor_prefixes=_CISCO)
    if dom and dom[1].strip():
        r.add_search(cfg, dom[1], dom[0])
    host = lookup(props, "hostname", vendor_prefixes=_CISCO)
    if host:
        r.set_hostname(cfg, host[1], host[0])
    return _drop_empty(r)


def cisco_write(configs: dict[int, NetConfig]) -> list[PropertySpec]:
    if not configs:
        return []
    n, cfg = min(configs.items())
    out = []
    if cfg.dhcp:
        out.append(_prop("mgmt-ipv4-addr", "dhcp", "Management IPv4 Address/Mask"))
    elif cfg.address and ipaddress.ip_address(cfg.address).version == 4:
        text = cfg.address + (f"/{cfg.prefix}" if cfg.prefix is not None else "")
        out.append(_prop("mgmt-ipv4-addr", text, "Management IPv4 Address/Mask"))
        if cfg.gateway:
            out.append(_prop("mgmt-ipv4-gateway", cfg.gateway, "Management IPv4 Default Gateway"))
    out.append(_prop("mgmt-interface", f"GigabitEthernet{n + 1}", "Management Interface"))
    if cfg.search_domains:
        out.append(_prop("domain-name", cfg.search_domains[0], "Domain Name"))
    if cfg.hostname:
        out.append(_prop("hostname", cfg.hostname, "Router Name"))
    return out


# cloud-init's OVF datasource -----------------------------------------------------------------------------
def cloudinit_detect(props: Props) -> float:
    if "network-config" in props:
        return 0.8
    if "local-hostname" in props or "instance-id" in props:
        return 0.3
    return 0.0


def cloudinit_read(props: Props) -> NetReading:
    from vmferry.ovfenv.netcfg import decode_network_config

    r = NetReading()
    if props.get("network-config", "").strip():
        configs, findings = decode_network_config(props["network-config"])
        r.configs.update(configs)
        r.findings.extend(findings)
    for key in ("local-hostname", "hostname"):
        if props.get(key, "").strip():
            r.set_hostname(r.nic(min(r.configs) if r.configs else 0, "cloud-init"), props[key], key)
            break
    return _drop_empty(r)


def cloudinit_write(configs: dict[int, NetConfig]) -> list[PropertySpec]:
    from vmferry.ovfenv.netcfg import encode_network_config

    out = []
    if any(c.dhcp is not None or c.address for c in configs.values()):
        out.append(_prop("network-config", encode_network_config(configs)[0], "cloud-init network config",
                         "base64 of a cloud-init network config (version 1)"))
    host = next((c.hostname for _, c in sorted(configs.items()) if c.hostname), None)
    if host:
        out.append(_prop("hostname", host, "Host name"))
    return out


# vmferry's own keys ----------------------------------------------------------------------------------
_VMF = re.compile(r"^vmferry\.net\.(\d+)\.(mode|address|gateway|dns|search)$", re.I)


def vmferry_detect(props: Props) -> float:
    return 1.0 if any(_VMF.match(k) for k in props) else (0.5 if "vmferry.hostname" in props else 0.0)


def vmferry_read(props: Props) -> NetReading:
    r = NetReading()
    for key, value in props.items():
        m = _VMF.match(key)
        if not m:
            continue
        cfg, what = r.nic(int(m.group(1)), "vmferry"), m.group(2).lower()
        if what == "mode":
            r.set_mode(cfg, value, key)
    for key, value in props.items():
        m = _VMF.match(key)
        if not m or not value.strip():
            continue
        cfg, what = r.nic(int(m.group(1)), "vmferry"), m.group(2).lower()
        if what == "address" and not cfg.dhcp:
            r.set_address(cfg, value, key)
        elif what == "dns":
            r.add_dns(cfg, value, key)
        elif what == "search":
            r.add_search(cfg, value, key)
    for key, value in props.items():  # gateways last: they are checked against the address
        m = _VMF.match(key)
        if m and m.group(2).lower() == "gateway" and value.strip():
            r.set_gateway(r.nic(int(m.group(1)), "vmferry"), value, key)
    if props.get("vmferry.hostname", "").strip():
        r.set_hostname(r.nic(min(r.configs) if r.configs else 0, "vmferry"), props["vmferry.hostname"],
                       "vmferry.hostname")
    return _drop_empty(r)


def vmferry_write(configs: dict[int, NetConfig]) -> list[PropertySpec]:
    out = []
    host = None
    for n, cfg in sorted(configs.items()):
        base = f"vmferry.net.{n}"
        if cfg.dhcp is not None:
            out.append(_prop(f"{base}.mode", "dhcp" if cfg.dhcp else "static", f"NIC {n} mode", "dhcp or static"))
        if cfg.address and not cfg.dhcp:
            text = cfg.address + (f"/{cfg.prefix}" if cfg.prefix is not None else "")
            out.append(_prop(f"{base}.address", text, f"NIC {n} address", "address/prefix (CIDR)"))
        if cfg.gateway:
            out.append(_prop(f"{base}.gateway", cfg.gateway, f"NIC {n} gateway"))
        if cfg.dns_servers:
            out.append(_prop(f"{base}.dns", ",".join(cfg.dns_servers), f"NIC {n} DNS servers"))
        if cfg.search_domains:
            out.append(_prop(f"{base}.search", ",".join(cfg.search_domains), f"NIC {n} DNS search domains"))
        host = host or cfg.hostname
    if host:
        out.append(_prop("vmferry.hostname", host, "Host name"))
    return out


def _drop_empty(r: NetReading) -> NetReading:
    r.configs = {n: c for n, c in sorted(r.configs.items()) if not c.is_empty}
    return r


CONVENTIONS: tuple[Convention, ...] = (
    Convention("vmferry", "vmferry.net.<n>.* portable keys", vmferry_detect, vmferry_read, vmferry_write),
    Convention("vmware", "VMware vApp / VAMI keys (ip0, netmask0, gateway, DNS, ...)", vmware_detect,
               vmware_read, vmware_write),
    Convention("cisco", "Cisco appliance keys (mgmt-ipv4-addr, mgmt-ipv4-gateway, ...)", cisco_detect,
               cisco_read, cisco_write),
    Convention("cloud-init", "cloud-init OVF datasource keys (network-config, local-hostname)",
               cloudinit_detect, cloudinit_read, cloudinit_write),
)


def convention(name: str) -> Convention:
    for c in CONVENTIONS:
        if c.name == name:
            return c
    raise KeyError(f"unknown network convention {name!r} (known: {', '.join(c.name for c in CONVENTIONS)})")


def detect(props: Props) -> list[tuple[float, Convention]]:
    """Conventions that match ``props``, best first (score > 0 only)."""
    scored = [(c.detect(props), c) for c in CONVENTIONS]
    return sorted(((s, c) for s, c in scored if s > 0), key=lambda sc: -sc[0])


def _merge(into: NetConfig, other: NetConfig, n: int, out: NetReading) -> None:
    for name in ("dhcp", "address", "prefix", "gateway", "hostname", "dns_servers", "search_domains"):
        mine, theirs = getattr(into, name), getattr(other, name)
        if mine is None or mine == []:
            setattr(into, name, list(theirs) if isinstance(theirs, list) else theirs)
        elif theirs is not None and theirs != [] and theirs != mine:
            out.finding(CONVENTIONS_DISAGREE, "warning",
                        f"NIC {n}: {name} is {_show(mine)} in the {into.origin} convention but {_show(theirs)} "
                        f"in the {other.origin} convention; {_show(mine)} is used")


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def read_network(props: Props, *, prefer: str | None = None) -> NetReading:
    """Read every matching convention, best first (``prefer`` first of all); a better convention's
    values win field by field, and disagreements between conventions are findings."""
    out = NetReading()
    ranked = detect(props)
    ranked.sort(key=lambda sc: sc[1].name != prefer)
    for _score, conv in ranked:
        got = conv.read(props)
        out.findings.extend(got.findings)
        for n, cfg in got.configs.items():
            if n in out.configs:
                _merge(out.configs[n], cfg, n, out)
            else:
                out.configs[n] = replace(cfg, dns_servers=list(cfg.dns_servers),
                                         search_domains=list(cfg.search_domains))
    out.configs = dict(sorted(out.configs.items()))
    return out


def read_properties(props: Props) -> tuple[dict[int, NetConfig], list[Finding]]:
    """The dialect readers' entry point: (NetConfig per NIC index, findings)."""
    got = read_network(props)
    return got.configs, got.findings


def write_properties(configs: dict[int, NetConfig], convention_name: str = "vmferry") -> list[PropertySpec]:
    """Properties carrying ``configs`` in one convention (``vmferry`` for the portable DMTF profile)."""
    return convention(convention_name).write(configs)


def write(configs: dict[int, NetConfig], convention_name: str = "vmferry") -> list[PropertySpec]:
    """Alias of :func:`write_properties` (vmferry's portable keys by default)."""
    return write_properties(configs, convention_name)


def write_profiled(properties: list[PropertySpec], profiles: list[str],
                   convention_name: str = "vmferry") -> list[PropertySpec]:
    """Properties in ``convention_name`` for the network settings that ``properties`` carry in any
    convention, per deployment profile: ``value`` holds the default, ``values`` a
    :class:`~vmferry.portable.Variant` for each profile whose value differs (so ``ip0`` with a
    ``lab``-profile value gives ``vmferry.net.0.address`` with a ``lab`` variant too)."""
    from vmferry.portable import Variant, pick

    def props_for(profile: str | None) -> dict[str, str]:
        out = {}
        for p in properties:
            value = (pick(p.values, profile) if profile is not None else None)
            value = value if value is not None else p.value
            if value is not None:
                out[p.key] = value
        return out

    base = {p.key: p for p in write_properties(read_network(props_for(None)).configs, convention_name)}
    for profile in profiles:
        for p in write_properties(read_network(props_for(profile)).configs, convention_name):
            spec = base.setdefault(p.key, replace(p, value=""))
            if p.value != spec.value:
                spec.values.append(Variant(p.value or "", (profile,)))
    return list(base.values())
