"""cloud-init network configuration ↔ :class:`~vmferry.portable.NetConfig`.

cloud-init's OVF datasource (``DataSourceOVF.read_ovf_environment``) reads the environment property
``network-config`` when the environment came by a transport (the ISO): it base64-decodes the value,
loads it as YAML and applies the mapping under its top-level ``network`` key. vmferry writes network
config **version 1** (``physical`` entries with ``subnets``), which every cloud-init renderer
(ENI, sysconfig, netplan, networkd) accepts; it is written as JSON, which is valid YAML, so no YAML
library is needed to write it. Reading accepts version 1 and version 2, in JSON or (with PyYAML
installed) YAML.

The guest's interface is matched by MAC address when the package knows it (cloud-init renames the
matching interface to the given name); without a MAC the interface is assumed to be ``eth<n>``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json

from vmferry.findings import Finding
from vmferry.netconv import (
    BAD_NETWORK_CONFIG,
    EXTRA_ADDRESS,
    NIC_NAME_ASSUMED,
    NetReading,
)
from vmferry.portable import NetConfig


def network_config_v1(configs: dict[int, NetConfig], *, macs: dict[int, str] | None = None,
                      names: dict[int, str] | None = None) -> tuple[dict, list[Finding]]:
    """The ``{"network": {"version": 1, "config": [...]}}`` document for ``configs``."""
    macs, names = macs or {}, names or {}
    findings: list[Finding] = []
    entries: list[dict] = []
    global_dns: list[str] = []
    global_search: list[str] = []
    for n, cfg in sorted(configs.items()):
        if cfg.dhcp is None and not cfg.address:
            if cfg.dns_servers or cfg.search_domains:
                global_dns += [d for d in cfg.dns_servers if d not in global_dns]
                global_search += [s for s in cfg.search_domains if s not in global_search]
            continue
        name = names.get(n) or f"eth{n}"
        entry: dict = {"type": "physical", "name": name}
        if macs.get(n):
            entry["mac_address"] = macs[n].lower().replace("-", ":")
        elif n not in names:
            findings.append(Finding(NIC_NAME_ASSUMED, "info",
                                    f"NIC {n} has no MAC address in the package; the guest interface is "
                                    f"assumed to be named {name}", location=f"NIC {n}"))
        if cfg.dhcp:
            entry["subnets"] = [{"type": "dhcp"}]
            global_dns += [d for d in cfg.dns_servers if d not in global_dns]
            global_search += [s for s in cfg.search_domains if s not in global_search]
        else:
            version = ipaddress.ip_address(cfg.address).version
            subnet: dict = {"type": "static" if version == 4 else "static6",
                            "address": cfg.address + (f"/{cfg.prefix}" if cfg.prefix is not None else "")}
            if cfg.gateway and ipaddress.ip_address(cfg.gateway).version == version:
                subnet["gateway"] = cfg.gateway
            if cfg.dns_servers:
                subnet["dns_nameservers"] = list(cfg.dns_servers)
            if cfg.search_domains:
                subnet["dns_search"] = list(cfg.search_domains)
            entry["subnets"] = [subnet]
        entries.append(entry)
    if global_dns or global_search:
        ns: dict = {"type": "nameserver", "address": global_dns}
        if global_search:
            ns["search"] = global_search
        entries.append(ns)
    return {"network": {"version": 1, "config": entries}}, findings


def encode_network_config(configs: dict[int, NetConfig], *, macs: dict[int, str] | None = None,
                          names: dict[int, str] | None = None) -> tuple[str, list[Finding]]:
    """The base64 value of the ``network-config`` property, and findings (assumed NIC names)."""
    doc, findings = network_config_v1(configs, macs=macs, names=names)
    text = json.dumps(doc, indent=1)
    return base64.b64encode(text.encode()).decode("ascii"), findings


def _load(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml
    except ImportError as exc:
        raise ValueError("it is YAML, and PyYAML is not installed (pip install vmferry[apps])") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {' '.join(str(exc).split())}") from exc


def decode_network_config(value: str) -> tuple[dict[int, NetConfig], list[Finding]]:
    """Read a ``network-config`` property value (base64 of YAML/JSON, v1 or v2) into NetConfigs."""
    r = NetReading()
    key = "network-config"
    try:
        text = base64.b64decode(value.strip().encode(), validate=True).decode("utf-8")
        doc = _load(text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        r.finding(BAD_NETWORK_CONFIG, "error", f"network-config cannot be decoded: {exc}", key)
        return {}, r.findings
    net = doc.get("network") if isinstance(doc, dict) else None
    if not isinstance(net, dict):
        r.finding(BAD_NETWORK_CONFIG, "error",
                  "network-config has no top-level 'network' mapping (cloud-init ignores it)", key)
        return {}, r.findings
    version = net.get("version")
    if version == 1:
        _read_v1(net.get("config") or [], r)
    elif version == 2:
        _read_v2(net, r)
    else:
        r.finding(BAD_NETWORK_CONFIG, "error", f"network-config version {version!r} is not 1 or 2", key)
    r.configs = {n: c for n, c in r.configs.items() if not c.is_empty}
    return r.configs, r.findings


def _subnet_address(r: NetReading, cfg: NetConfig, address: str, netmask: str | None, key: str) -> None:
    if cfg.address:
        r.finding(EXTRA_ADDRESS, "info", f"{key}: only the first address of a NIC is kept ({address} dropped)",
                  key)
        return
    r.set_address(cfg, address, key, netmask, key)


def _read_v1(entries: list, r: NetReading) -> None:
    index = 0
    first: NetConfig | None = None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        if entry.get("type") == "nameserver":
            target = first or r.nic(0, "cloud-init")
            r.add_dns(target, ",".join(map(str, _as_list(entry.get("address")))), "network-config nameserver")
            r.add_search(target, ",".join(map(str, _as_list(entry.get("search")))), "network-config nameserver")
            continue
        if entry.get("type") != "physical":
            continue
        cfg = r.nic(index, "cloud-init")
        first = first or cfg
        where = f"network-config {entry.get('name') or index}"
        for sub in entry.get("subnets") or []:
            kind = str(sub.get("type", ""))
            if kind in ("dhcp", "dhcp4", "dhcp6", "ipv6_dhcpv6-stateful", "ipv6_slaac"):
                cfg.dhcp = True if cfg.address is None else cfg.dhcp
            elif kind in ("static", "static6") and sub.get("address"):
                _subnet_address(r, cfg, str(sub["address"]), sub.get("netmask"), where)
                if sub.get("gateway") and not cfg.gateway:
                    r.set_gateway(cfg, str(sub["gateway"]), where)
            r.add_dns(cfg, ",".join(map(str, _as_list(sub.get("dns_nameservers")))), where)
            r.add_search(cfg, ",".join(map(str, _as_list(sub.get("dns_search")))), where)
        index += 1


def _read_v2(net: dict, r: NetReading) -> None:
    ethernets = net.get("ethernets") or {}
    for index, (name, eth) in enumerate(ethernets.items() if isinstance(ethernets, dict) else []):
        if not isinstance(eth, dict):
            continue
        cfg = r.nic(index, "cloud-init")
        where = f"network-config {name}"
        if eth.get("dhcp4") in (True, "true", "yes") or eth.get("dhcp6") in (True, "true", "yes"):
            cfg.dhcp = True
        for addr in _as_list(eth.get("addresses")):
            _subnet_address(r, cfg, str(addr), None, where)
        gateways = [eth.get("gateway4"), eth.get("gateway6")]
        gateways += [rt.get("via") for rt in eth.get("routes") or [] if isinstance(rt, dict)
                     and str(rt.get("to")) in ("default", "0.0.0.0/0", "::/0")]
        for gw in gateways:
            if gw and not cfg.gateway:
                r.set_gateway(cfg, str(gw), where)
        ns = eth.get("nameservers") or {}
        r.add_dns(cfg, ",".join(map(str, _as_list(ns.get("addresses")))), where)
        r.add_search(cfg, ",".join(map(str, _as_list(ns.get("search")))), where)


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
