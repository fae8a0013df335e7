"""The Windows drivers a guest has, from its SYSTEM hive: services and staged driver packages.

The hive is copied out of the guest (read-only appliance) and exported with ``hivexregedit --export``
(hivex, Debian package ``libwin-hivex-perl``), whose ``.reg`` text :func:`parse_reg` reads:

* ``\\Select`` ``Current`` names the control set Windows boots (``ControlSet001`` ...);
* ``\\ControlSet00N\\Services\\<name>`` with its ``Start`` (0 boot, 1 system, 2 auto, 3 demand,
  4 disabled) and ``ImagePath``: :class:`vmferry.guest.model.WindowsService`;
* ``\\DriverDatabase\\DeviceIds\\PCI\\<id>`` (Windows 8 / 2012 and later): the PCI ids with a driver
  package in the driver store.
"""

from __future__ import annotations

import os
import re

from vmferry.errors import ToolFailed
from vmferry.guest.model import WindowsService
from vmferry.tools.proc import run, which

_SECTION = re.compile(r"^\[(.*)\]\s*$")
_VALUE = re.compile(r'^"((?:[^"\\]|\\.)*)"=(.*)$')


def parse_reg(text: str) -> dict[str, dict[str, str]]:
    """``.reg`` text → {key path (lower case, no leading backslash): {value name (lower case): raw value}}.

    Continuation lines (ending in ``\\``) are joined; value data stays as written (``dword:00000000``,
    ``"text"``, ``hex(2):...``)."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        if line.endswith("\\") and not _SECTION.match(line):
            pending = line[:-1]
            continue
        pending = ""
        m = _SECTION.match(line)
        if m:
            current = out.setdefault(m.group(1).lstrip("\\").casefold(), {})
            continue
        m = _VALUE.match(line)
        if m and current is not None:
            current[m.group(1).casefold()] = m.group(2)
        elif line.startswith("@=") and current is not None:
            current["@"] = line[2:]
    return out


def dword(raw: str | None) -> int | None:
    if raw and raw.startswith("dword:"):
        try:
            return int(raw[6:], 16)
        except ValueError:
            return None
    return None


def reg_string(raw: str | None) -> str:
    """A REG_SZ (``"text"``) or REG_EXPAND_SZ (``hex(2):..`` UTF-16LE) value as text."""
    if not raw:
        return ""
    if raw.startswith('"') and raw.endswith('"'):
        return raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if raw.startswith("hex(2):"):
        try:
            data = bytes(int(b, 16) for b in raw[7:].split(",") if b.strip())
        except ValueError:
            return ""
        return data.decode("utf-16-le", "replace").rstrip("\0")
    return ""


def current_control_set(select: dict[str, dict[str, str]]) -> str:
    n = dword(select.get("select", {}).get("current")) or 1
    return f"ControlSet{n:03d}"


def services(exported: dict[str, dict[str, str]], control_set: str) -> list[WindowsService]:
    """The services (direct subkeys of ``<control set>\\Services``) that have a Start value."""
    prefix = f"{control_set}\\services\\".casefold()
    out = []
    for path, values in exported.items():
        if not path.startswith(prefix) or "\\" in path[len(prefix):] or "start" not in values:
            continue
        name = path[len(prefix):]
        out.append(WindowsService(name, dword(values.get("start")), reg_string(values.get("imagepath"))))
    return sorted(out, key=lambda s: s.name)


def device_ids(exported: dict[str, dict[str, str]]) -> list[str]:
    """``pci\\ven_xxxx&dev_xxxx`` (and ``pci\\cc_xxxxxx``) ids under DriverDatabase\\DeviceIds."""
    prefix = "driverdatabase\\deviceids\\"
    return sorted({p[len(prefix):] for p in exported if p.startswith(prefix + "pci\\")
                   and p.count("\\") == 3})


def export(hive: str, key: str) -> dict[str, dict[str, str]]:
    """``hivexregedit --export`` of one key (empty when the key does not exist)."""
    try:
        res = run([which("hivexregedit"), "--export", hive, key], timeout=300)
    except ToolFailed:
        return {}
    return parse_reg(res.stdout if isinstance(res.stdout, str) else res.stdout.decode("utf-8", "replace"))


def read_system_hive(hive: str | os.PathLike) -> tuple[list[WindowsService], list[str]]:
    """(driver services of the current control set, staged PCI device ids) of a SYSTEM hive file."""
    hive = os.fspath(hive)
    control_set = current_control_set(export(hive, "\\Select"))
    svc = services(export(hive, f"\\{control_set}\\Services"), control_set.casefold())
    ids = device_ids(export(hive, "\\DriverDatabase\\DeviceIds\\PCI"))
    return svc, ids
