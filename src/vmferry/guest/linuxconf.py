"""Parsers for the Linux configuration files guest readiness depends on.

Each takes the text of one file (copied out of the guest) and the path it had in the guest, and
returns model objects. They read the files' own formats (fstab fields, key=value, INI sections,
udev match keys, YAML where PyYAML is installed) and never guess from free text.
"""

from __future__ import annotations

import configparser
import re
import shlex

from vmferry.guest.model import CloudInit, DiskName, NetBinding

_SLOT_NAME = re.compile(r"^(en|wl|ww)(o\d+|s\d+|p\d+s\d+|x[0-9a-f]{12}|P\d+p\d+s\d+)")
_MAC = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


def disk_style(spec: str) -> str:
    s = spec.strip().strip('"')
    upper = s.upper()
    for prefix, style in (("UUID=", "uuid"), ("LABEL=", "label"), ("PARTUUID=", "partuuid"),
                          ("PARTLABEL=", "partlabel")):
        if upper.startswith(prefix):
            return style
    if s.startswith("/dev/disk/by-uuid/"):
        return "uuid"
    if s.startswith("/dev/disk/by-label/"):
        return "label"
    if s.startswith("/dev/disk/"):
        return "by-path"
    if s.startswith("/dev/mapper/") or re.match(r"^/dev/[^/]+/[^/]+$", s):
        return "lvm"
    if re.match(r"^/dev/(x?vd|sd|hd)[a-z]+\d*$", s):
        return "device"
    return "other"


PSEUDO_FS = {"proc", "sysfs", "tmpfs", "devpts", "devtmpfs", "cgroup", "cgroup2", "securityfs", "debugfs",
             "binfmt_misc", "nfs", "nfs4", "cifs", "fuse", "none"}


def fstab(text: str, where: str = "/etc/fstab") -> list[DiskName]:
    out = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 3 or fields[2] in PSEUDO_FS:
            continue
        mountpoint = "swap" if fields[2] == "swap" else fields[1]
        out.append(DiskName(where, mountpoint, fields[0], disk_style(fields[0])))
    return out


def kernel_root_args(text: str, where: str) -> list[DiskName]:
    """``root=`` arguments in a bootloader configuration (grub.cfg, extlinux.conf, /etc/default/grub)."""
    out, seen = [], set()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        try:
            words = shlex.split(stripped, posix=True)
        except ValueError:
            words = stripped.split()
        for word in words:
            for part in word.split():
                if part.startswith("root=") and len(part) > 5:
                    spec = part[5:]
                    if spec not in seen:
                        seen.add(spec)
                        out.append(DiskName(where, "root=", spec, disk_style(spec)))
    return out


def _binding(where: str, kind: str, interface: str, mac: str = "") -> NetBinding:
    return NetBinding(where, kind, interface, mac.lower(), bool(_SLOT_NAME.match(interface)))


def ifupdown(text: str, where: str) -> list[NetBinding]:
    out, current = [], None
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "iface" and len(words) >= 2:
            current = words[1]
            if current != "lo":
                out.append(_binding(where, "name", current))
        elif words[0] in ("hwaddress", "hwaddr") and current and current != "lo":
            mac = words[-1]
            if _MAC.match(mac):
                out.append(_binding(where, "mac", current, mac))
    return out


def udev_rules(text: str, where: str) -> list[NetBinding]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or 'SUBSYSTEM=="net"' not in line:
            continue
        keys = dict(re.findall(r'([A-Z]+(?:\{[a-z_]+\})?)\s*[=!:+]?=\s*"([^"]*)"', line))
        mac = keys.get("ATTR{address}", "")
        name = keys.get("NAME", "")
        if mac and _MAC.match(mac):
            out.append(_binding(where, "mac", name or "?", mac))
    return out


def _ini(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.optionxform = str  # keep case
    try:
        cp.read_string(text)
    except configparser.Error:
        return configparser.ConfigParser()
    return cp


def nm_keyfile(text: str, where: str) -> list[NetBinding]:
    cp = _ini(text)
    out = []
    name = cp.get("connection", "interface-name", fallback="")
    if name:
        out.append(_binding(where, "name", name))
    for section in ("ethernet", "802-3-ethernet"):
        mac = cp.get(section, "mac-address", fallback="")
        if mac and _MAC.match(mac):
            out.append(_binding(where, "mac", name or cp.get("connection", "id", fallback="?"), mac))
    return out


def networkd(text: str, where: str) -> list[NetBinding]:
    cp = _ini(text)
    out = []
    # a .link file's [Link] Name= names the NIC its [Match] selects: a name pinned to a MAC
    link_name = cp.get("Link", "Name", fallback="").strip() if where.endswith(".link") else ""
    for key, kind in (("MACAddress", "mac"), ("PermanentMACAddress", "mac"), ("Name", "name")):
        for value in cp.get("Match", key, fallback="").split():
            if kind == "mac" and _MAC.match(value):
                out.append(_binding(where, "mac", link_name or "?", value))
            elif kind == "name" and "*" not in value:
                out.append(_binding(where, "name", value))
    return out


def ifcfg(text: str, where: str) -> list[NetBinding]:
    values = {}
    for line in text.splitlines():
        k, sep, v = line.strip().partition("=")
        if sep and not k.startswith("#"):
            values[k.strip()] = v.strip().strip("\"'")
    out = []
    device = values.get("DEVICE") or values.get("NAME") or "?"
    if values.get("DEVICE") and device != "lo":
        out.append(_binding(where, "name", device))
    for key in ("HWADDR", "MACADDR"):
        if _MAC.match(values.get(key, "")):
            out.append(_binding(where, "mac", device, values[key]))
    return out


def _yaml(text: str):
    try:
        import yaml
    except ImportError:
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def netplan(text: str, where: str) -> list[NetBinding]:
    out = []
    doc = _yaml(text)
    if isinstance(doc, dict):
        ethernets = ((doc.get("network") or {}).get("ethernets") or {})
        for key, conf in ethernets.items():
            conf = conf or {}
            match = conf.get("match") or {}
            name = conf.get("set-name") or match.get("name") or key
            if match.get("macaddress"):
                out.append(_binding(where, "mac", str(name), str(match["macaddress"])))
            if not match and "*" not in str(key):
                out.append(_binding(where, "name", str(key)))
        return out
    # Without PyYAML: the two keys that bind an interface, as netplan writes them.
    for line in text.splitlines():
        k, sep, v = line.strip().partition(":")
        if sep and k == "macaddress" and _MAC.match(v.strip().strip("\"'")):
            out.append(_binding(where, "mac", "?", v.strip().strip("\"'")))
    return out


def cloud_datasources(texts: list[tuple[str, str]]) -> CloudInit:
    """``datasource_list`` from cloud.cfg and cloud.cfg.d/*.cfg, in the order cloud-init merges them."""
    found: tuple[str, ...] = ()
    where = ""
    for path, text in texts:
        doc = _yaml(text)
        if isinstance(doc, dict) and isinstance(doc.get("datasource_list"), list):
            found, where = tuple(str(x) for x in doc["datasource_list"]), path
            continue
        if doc is None:
            lines = text.splitlines()
            for i, line in enumerate(lines):
                if line.startswith("datasource_list:"):
                    rest = line.split(":", 1)[1].strip()
                    if rest.startswith("["):
                        found = tuple(x.strip().strip("'\"") for x in rest.strip("[] ").split(",") if x.strip())
                    else:
                        items = []
                        for nxt in lines[i + 1:]:
                            if nxt.strip().startswith("- "):
                                items.append(nxt.strip()[2:].strip().strip("'\""))
                            elif nxt.strip():
                                break
                        found = tuple(items)
                    where = path
    return CloudInit(True, tuple(d for d in found if d != "None"), where)
