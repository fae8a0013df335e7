"""From a package's properties to an OVF environment that guests (and cloud-init) understand.

:func:`build_environment` takes the properties of one virtual system (already resolved for a
deployment profile and with the user's values applied), reads the guest network settings with
:mod:`vmferry.netconv`, whatever convention they follow, and returns the :class:`Environment`.
With ``cloud_init=True`` (the default) it adds what cloud-init's OVF datasource reads, unless the
package already sets it:

* ``instance-id``: cloud-init falls back to the constant ``iid-dsovf`` without it, so every VM
  would look like the same instance. vmferry derives ``iid-vmferry-<hash>`` from the system id and
  the property values (passwords excepted): the same settings give the same id, changed settings give a new one.
* ``local-hostname``: the host name found by any convention (cloud-init reads ``hostname`` too).
* ``network-config``: base64 of a cloud-init network config v1 (see :mod:`vmferry.ovfenv.netcfg`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from vmferry import __version__
from vmferry.findings import Finding
from vmferry.netconv import detect, read_network
from vmferry.ovfenv.document import Adapter, Environment, Platform
from vmferry.ovfenv.netcfg import encode_network_config
from vmferry.portable import NetConfig


@dataclass
class EnvProperty:
    """One property of the virtual system: ``key`` as declared, ``full_key`` as the environment names
    it (DSP0243 §9.5: ``class.key.instance``), and its value for the chosen profile."""

    key: str
    full_key: str
    value: str
    type: str = "string"
    password: bool = False
    user_configurable: bool = False


@dataclass
class NicInfo:
    index: int
    mac: str | None = None
    network: str | None = None


@dataclass
class EnvResult:
    environment: Environment
    network: dict[int, NetConfig]
    added: list[str] = field(default_factory=list)          # keys vmferry added for cloud-init
    findings: list[Finding] = field(default_factory=list)


TRANSPORT_NOT_ISO = "VMF-ENV-001"


def transport_findings(transports: list[str]) -> list[Finding]:
    """An info finding when the package asks for environment transports but not ``iso``: a guest built
    for ``com.vmware.guestInfo`` alone may not look for a CD-ROM."""
    if not transports or "iso" in transports:
        return []
    return [Finding(TRANSPORT_NOT_ISO, "info",
                    f"the package declares the environment transport {', '.join(transports)}, not iso; "
                    "the guest may not look for the ISO (cloud-init does)",
                    location="VirtualHardwareSection/@ovf:transport",
                    fix="vmferry convert sets ovf:transport=\"iso\" for targets other than vmware")]


def lookup_map(props: list[EnvProperty]) -> dict[str, str]:
    """Full keys, plus plain keys where that is unambiguous: what the conventions are matched against."""
    out = {p.full_key: p.value for p in props}
    plain_counts: dict[str, int] = {}
    for p in props:
        plain_counts[p.key] = plain_counts.get(p.key, 0) + 1
    for p in props:
        if plain_counts[p.key] == 1 and p.key not in out:
            out[p.key] = p.value
    return out


def preferred_convention(props: list[EnvProperty], changed: list[str] | tuple[str, ...]) -> str | None:
    """The network convention the user's changes are written in, if any."""
    edited = [p for p in props if p.full_key in set(changed)]
    if not edited:
        return None
    ranked = detect(lookup_map(edited))
    return ranked[0][1].name if ranked else None


def instance_id(system_id: str, properties: dict[str, str]) -> str:
    h = hashlib.sha256(system_id.encode())
    for key, value in sorted(properties.items()):
        h.update(b"\0" + key.encode() + b"\0" + value.encode())
    return f"iid-vmferry-{h.hexdigest()[:16]}"


def build_environment(system_id: str, props: list[EnvProperty], *, nics: list[NicInfo] | None = None,
                      cloud_init: bool = True, adapters: bool = False, platform: Platform | None = None,
                      changed: list[str] | tuple[str, ...] = (),
                      siblings: dict[str, list[EnvProperty]] | None = None) -> EnvResult:
    """The environment for one virtual system, with cloud-init's keys added when ``cloud_init``.

    ``changed`` lists the full keys the user set: the network convention they belong to is read
    first, so that a value the user just set wins over a stale copy in another convention.
    ``siblings`` (other systems of the same collection) become ``Entity`` elements."""
    values = {p.full_key: p.value for p in props}
    net = read_network(lookup_map(props), prefer=preferred_convention(props, changed))
    result = EnvResult(Environment(id=system_id, properties=dict(values),
                                   platform=platform or Platform(version=__version__)),
                       net.configs, findings=list(net.findings))
    result.environment.entities = {sid: {p.full_key: p.value for p in sprops}
                                   for sid, sprops in (siblings or {}).items()}
    nics = nics or []
    if adapters:
        result.environment.adapters = [Adapter(n.mac, n.network) for n in nics if n.mac]
    if not cloud_init:
        return result
    env_props = result.environment.properties
    if net.configs and "network-config" not in env_props and any(
            c.dhcp is not None or c.address for c in net.configs.values()):
        macs = {n.index: n.mac for n in nics if n.mac}
        encoded, findings = encode_network_config(net.configs, macs=macs)
        env_props["network-config"] = encoded
        result.findings.extend(findings)
        result.added.append("network-config")
    host = next((c.hostname for _, c in sorted(net.configs.items()) if c.hostname), None)
    if host and not (env_props.get("hostname") or env_props.get("local-hostname")):
        env_props["local-hostname"] = host
        result.added.append("local-hostname")
    if not env_props.get("instance-id"):
        # password values stay out of the hash: the id is shown in reports, and must not help guess them
        env_props["instance-id"] = instance_id(system_id, {p.full_key: p.value for p in props if not p.password})
        result.added.append("instance-id")
    return result
