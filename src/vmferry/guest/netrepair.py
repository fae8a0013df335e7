"""Network identity repair: configuration bound to an interface name follows the NIC by its MAC address.

A NIC's name changes with the virtual hardware (``ens192`` on VMware is ``enp1s0`` on KVM, ``eth0`` is
whatever predictable name the new slot gives), its MAC address does not (``convert`` keeps it). Each
function here takes the text of one configuration file and returns the new text (the same text when
nothing changes), in the file's own convention:

Every interface configured by name **keeps its name** on every hypervisor: the name is pinned to the
NIC's MAC, so firewall rules, sysctl settings and services bound to the name keep applying, and one
image gives its NIC the same name wherever it boots (see "Why the name is kept" in docs/guest.md).

=============================  =========================================================================
ifupdown (``interfaces``)       file unchanged; the name pinned to the MAC by a systemd ``.link`` file
                                (:func:`link_file`, ``/etc/systemd/network/10-vmferry-<name>.link``)
systemd-networkd (``.network``) ``[Match] Name=<name>`` unchanged (a ``MACAddress=`` match would also
                                match the VLANs and bridges that inherit the MAC); the ``.link`` pin
netplan (YAML)                  ``match: {macaddress: <mac>}`` and ``set-name: <name>`` (its own pin)
NetworkManager keyfile          ``interface-name=`` is dropped, ``[ethernet] mac-address=<mac>`` set
                                (NetworkManager compares the permanent MAC); the ``.link`` pin
RHEL ifcfg                      ``HWADDR=<mac>`` next to ``DEVICE=``; the ``.link`` pin
=============================  =========================================================================

New addresses (:class:`NicSetting`) are written into the same file in the same convention; static
addresses, routes and DNS already there survive untouched otherwise.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

LINK_DIR = "/etc/systemd/network"
_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
# Names of physical NICs that depend on the virtual hardware. Virtual devices (bonds, bridges, VLANs,
# aliases such as eth0:1 or eth0.10) keep their names and are left alone.
_PHYSICAL = re.compile(r"^(eth\d+|en[a-z0-9]+|em\d+|p\d+p\d+)$")


@dataclass
class NicSetting:
    """What the target site gives one NIC: its MAC, and optionally a new static address."""
    index: int
    mac: str = ""
    address: str = ""              # "10.0.0.5/24" (prefix required)
    gateway: str = ""
    dns: list[str] = field(default_factory=list)

    @property
    def readdress(self) -> bool:
        return bool(self.address)

    def interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        return ipaddress.ip_interface(self.address)


def normal_mac(text: str) -> str | None:
    mac = text.strip().lower().replace("-", ":")
    return mac if _MAC.match(mac) else None


def physical(name: str) -> bool:
    return bool(_PHYSICAL.match(name))


def slot_order(name: str) -> tuple:
    """Sort key putting interface names in NIC order: eth0 < eth1, ens192 < ens224, enp11s0 < enp19s0."""
    return tuple(int(n) for n in re.findall(r"\d+", name)), name


def link_file(name: str, mac: str) -> tuple[str, str]:
    """(path, content) of the systemd .link file naming the NIC with ``mac`` ``name``."""
    return (f"{LINK_DIR}/10-vmferry-{name}.link",
            "# written by vmferry: the NIC keeps the name its configuration uses, whatever the hardware\n"
            f"[Match]\nMACAddress={mac}\n\n[Link]\nName={name}\n")


# ---- ifupdown ---------------------------------------------------------------------------------------

_STANZA = ("iface", "auto", "allow-", "mapping", "source", "source-directory", "no-auto-down", "no-scripts",
           "rename")
_ADDRESS_OPTIONS = ("address", "netmask", "gateway", "network", "broadcast", "dns-nameservers", "pointopoint")


def ifupdown_interfaces(text: str) -> list[str]:
    """Physical interfaces an ifupdown file configures by name."""
    out = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "iface" and physical(words[1]) and words[1] not in out:
            out.append(words[1])
    return out


def ifupdown(text: str, settings: dict[str, NicSetting]) -> str:
    """New addresses written into the ``iface <name> inet`` stanzas (the names are pinned by .link files)."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    current: NicSetting | None = None
    indent = "    "
    for line in lines:
        words = line.split("#", 1)[0].split()
        if words and words[0].startswith(_STANZA):
            current = None
            if words[0] == "iface" and len(words) >= 4 and words[2] == "inet" and words[1] in settings \
                    and settings[words[1]].readdress:
                current = settings[words[1]]
                iface = current.interface()
                out.append(f"iface {words[1]} inet static\n")
                out.append(f"{indent}address {iface.with_prefixlen}\n")
                if current.gateway:
                    out.append(f"{indent}gateway {current.gateway}\n")
                if current.dns:
                    out.append(f"{indent}dns-nameservers {' '.join(current.dns)}\n")
                continue
        elif current is not None and words:
            if line[:1] in (" ", "\t"):
                indent = line[:len(line) - len(line.lstrip())]
            if words[0] in _ADDRESS_OPTIONS:
                continue
        out.append(line)
    return "".join(out)


# ---- systemd-networkd -------------------------------------------------------------------------------

def _sections(text: str) -> list[tuple[str, list[str]]]:
    """INI text as (section, lines) in order; the lines before the first section have section ""."""
    out: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines(keepends=True):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            out.append((s[1:-1].strip(), [line]))
        else:
            out[-1][1].append(line)
    return out


def _join(sections: list[tuple[str, list[str]]]) -> str:
    text = "".join("".join(lines) for _, lines in sections)
    return text if text.endswith("\n") or not text else text + "\n"


def _key(line: str) -> str:
    s = line.strip()
    if not s or s[0] in "#;" or "=" not in s:
        return ""
    return s.split("=", 1)[0].strip()


def _value(line: str) -> str:
    return line.split("=", 1)[1].strip()


def networkd_name(text: str) -> str | None:
    """The single exact interface name a .network file's [Match] section binds to, if any."""
    for name, lines in _sections(text):
        if name == "Match":
            for line in lines:
                if _key(line) == "Name":
                    names = _value(line).split()
                    if len(names) == 1 and physical(names[0]):
                        return names[0]
    return None


def networkd(text: str, setting: NicSetting | None) -> str:
    """New addresses written into a ``.network`` file; its ``[Match] Name=`` stays (the name is pinned)."""
    if setting is None or not setting.readdress:
        return text
    sections = _sections(text)
    if setting.readdress:
        iface = setting.interface()
        new = [f"Address={iface.with_prefixlen}\n"] + ([f"Gateway={setting.gateway}\n"] if setting.gateway else []) \
            + [f"DNS={d}\n" for d in setting.dns]
        network = next((lines for sec, lines in sections if sec == "Network"), None)
        if network is None:
            sections.append(("Network", ["\n[Network]\n"]))
            network = sections[-1][1]
        network[1:] = [ln for ln in network[1:] if _key(ln) not in ("DHCP", "Address", "Gateway", "DNS")]
        while len(network) > 1 and not network[-1].strip():
            network.pop()
        network[1:1] = new
        for sec, lines in sections:      # [Address] and [Route] sections of the old address go too
            if sec in ("Address", "Route"):
                lines[:] = []
    return _join(sections)


# ---- NetworkManager keyfiles ------------------------------------------------------------------------

def nm_interface(text: str) -> str | None:
    for sec, lines in _sections(text):
        if sec == "connection":
            for line in lines:
                if _key(line) == "interface-name" and physical(_value(line)):
                    return _value(line)
    return None


def nm_keyfile(text: str, setting: NicSetting | None) -> str:
    if setting is None:
        return text
    sections = _sections(text)
    if setting.mac:
        for sec, lines in sections:
            if sec == "connection":
                lines[:] = [ln for ln in lines if _key(ln) != "interface-name"]
        eth = next((lines for sec, lines in sections if sec in ("ethernet", "802-3-ethernet")), None)
        if eth is None:
            sections.append(("ethernet", ["\n[ethernet]\n"]))
            eth = sections[-1][1]
        eth[1:] = [ln for ln in eth[1:] if _key(ln) != "mac-address"]
        eth.insert(1, f"mac-address={setting.mac.upper()}\n")
    if setting.readdress:
        iface = setting.interface()
        family = "ipv6" if iface.version == 6 else "ipv4"
        sec_lines = next((lines for sec, lines in sections if sec == family), None)
        if sec_lines is None:
            sections.append((family, [f"\n[{family}]\n"]))
            sec_lines = sections[-1][1]
        keep = [ln for ln in sec_lines[1:] if not re.match(r"^(method|address\d*|addresses\d*|gateway|dns)$",
                                                              _key(ln))]
        addr = iface.with_prefixlen + (f",{setting.gateway}" if setting.gateway else "")
        new = ["method=manual\n", f"address1={addr}\n"] + ([f"dns={';'.join(setting.dns)};\n"] if setting.dns else [])
        while keep and not keep[-1].strip():
            keep.pop()
        sec_lines[1:] = new + keep
    return _join(sections)


# ---- RHEL ifcfg -------------------------------------------------------------------------------------

def _shell_value(line: str) -> str:
    return _value(line).strip("'\"")


def ifcfg_device(text: str) -> str | None:
    for line in text.splitlines():
        if _key(line) == "DEVICE" and physical(_shell_value(line)):
            return _shell_value(line)
    return None


def ifcfg(text: str, setting: NicSetting | None) -> str:
    if setting is None:
        return text
    lines = text.splitlines(keepends=True)
    drop = {"HWADDR"} if setting.mac else set()
    if setting.readdress:
        drop |= {"BOOTPROTO", "IPADDR", "IPADDR0", "PREFIX", "PREFIX0", "NETMASK", "NETMASK0", "GATEWAY",
                 "GATEWAY0"} | {f"DNS{i}" for i in range(1, 10)}
    out = [ln for ln in lines if _key(ln) not in drop]
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    if setting.mac:
        out.append(f"HWADDR={setting.mac.upper()}\n")
    if setting.readdress:
        iface = setting.interface()
        out += ["BOOTPROTO=none\n", f"IPADDR={iface.ip}\n", f"PREFIX={iface.network.prefixlen}\n"]
        if setting.gateway:
            out.append(f"GATEWAY={setting.gateway}\n")
        out += [f"DNS{i}={d}\n" for i, d in enumerate(setting.dns, start=1)]
    return "".join(out)


# ---- netplan ----------------------------------------------------------------------------------------

def _yaml():
    try:
        import yaml
    except ImportError:
        return None
    return yaml


def netplan_interfaces(text: str) -> list[str]:
    yaml = _yaml()
    if yaml is None:
        return []
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    eths = ((doc or {}).get("network") or {}).get("ethernets") if isinstance(doc, dict) else None
    if not isinstance(eths, dict):
        return []
    return [n for n, v in eths.items() if physical(str(n)) and not (isinstance(v, dict) and v.get("match"))]


def netplan(text: str, settings: dict[str, NicSetting]) -> str:
    yaml = _yaml()
    if yaml is None:
        return text
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    eths = ((doc or {}).get("network") or {}).get("ethernets") if isinstance(doc, dict) else None
    if not isinstance(eths, dict):
        return text
    changed = False
    for name, conf in list(eths.items()):
        setting = settings.get(str(name))
        if setting is None or not isinstance(conf, dict | type(None)):
            continue
        conf = dict(conf or {})
        if setting.mac and not conf.get("match"):
            conf = {"match": {"macaddress": setting.mac}, "set-name": str(name), **conf}
            changed = True
        if setting.readdress:
            for key in ("dhcp4", "dhcp6", "addresses", "gateway4", "gateway6", "routes", "nameservers"):
                conf.pop(key, None)
            iface = setting.interface()
            conf["dhcp4"] = False
            conf["addresses"] = [iface.with_prefixlen]
            if setting.gateway:
                conf["routes"] = [{"to": "default", "via": setting.gateway}]
            if setting.dns:
                conf["nameservers"] = {"addresses": list(setting.dns)}
            changed = True
        eths[name] = conf
    if not changed:
        return text
    head = "".join(ln for ln in text.splitlines(keepends=True)[:3] if ln.startswith("#"))
    return head + yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)
