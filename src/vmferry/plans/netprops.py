"""A VM's new network settings expressed as OVF environment properties.

The settings are :class:`vmferry.portable.NetConfig` values per NIC. When :mod:`vmferry.netconv`
(the table of guest network conventions) is installed, its ``write`` produces the properties;
otherwise :func:`generic_properties` writes vmferry's generic keys ``vmferry.net.<n>.<field>``.
This is the one place that decides, so the rest of the plan never depends on which is present.
"""

from __future__ import annotations

import importlib.util

from vmferry.portable import NetConfig


def generic_properties(configs: dict[int, NetConfig]) -> dict[str, str]:
    out: dict[str, str] = {}
    for n in sorted(configs):
        c = configs[n]
        base = f"vmferry.net.{n}"
        if c.dhcp:
            out[f"{base}.dhcp"] = "true"
        if c.address:
            out[f"{base}.address"] = c.address
        if c.prefix is not None:
            out[f"{base}.prefix"] = str(c.prefix)
        if c.gateway:
            out[f"{base}.gateway"] = c.gateway
        if c.dns_servers:
            out[f"{base}.dns"] = ",".join(c.dns_servers)
        if c.search_domains:
            out[f"{base}.search"] = ",".join(c.search_domains)
        if c.hostname:
            out[f"{base}.hostname"] = c.hostname
    return out


def ovf_properties(configs: dict[int, NetConfig]) -> dict[str, str]:
    """OVF environment properties (key → value) carrying ``configs``."""
    if importlib.util.find_spec("vmferry.netconv") is not None:
        from vmferry import netconv

        write = getattr(netconv, "write", None)
        if callable(write):
            return {p.key: p.value or "" for p in write(configs)}
    return generic_properties(configs)
