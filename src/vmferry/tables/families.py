"""Virtual hardware families (``VirtualSystemType``) per target, and :func:`family_for`.

VMware ``vmx-NN``: the ESXi / Workstation release that introduced each hardware version and its limits
(VMware's "hardware features available with virtual machine compatibility settings" tables).
VirtualBox writes ``virtualbox-2.2`` whatever its version; Xen ``xen-3.0-*`` (paravirtual) and
``hvm-3.0-*``; Hyper-V ``Microsoft:Hyper-V:SubType:1`` (generation 1, BIOS) and ``:2`` (generation 2, UEFI).

Features (``features`` of a row, ``needs`` of :func:`family_for`): ``efi``, ``secure_boot``, ``sata``,
``nvme``, ``vmxnet3``, ``e1000e``, ``pv`` (Xen paravirtual), ``hvm``, ``x64``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from vmferry.errors import TargetError
from vmferry.tables.targets import ROWS

FEATURES = frozenset({"efi", "secure_boot", "sata", "nvme", "vmxnet3", "e1000e", "pv", "hvm", "x64"})


@dataclass(frozen=True, slots=True)
class HardwareFamily:
    name: str                     # the VirtualSystemType value
    target: str
    order: int                    # position among the target's families (vmx: the hardware version)
    esxi: str | None              # first ESXi release running it (None: not an ESXi family)
    workstation: str | None       # first Workstation release running it
    max_vcpus: int | None         # None: not a limit of the family
    max_memory_gib: int | None
    features: frozenset[str]
    note: str = ""


def _vmx(n: int, esxi: str | None, ws: str | None, cpus: int | None, mem: int | None, *features: str,
         note: str = "") -> HardwareFamily:
    return HardwareFamily(f"vmx-{n:02d}", "vmware", n, esxi, ws, cpus, mem, frozenset(features) | {"x64"}, note)


_V7 = ("vmxnet3",)
_V8 = _V7 + ("efi", "e1000e")
_V10 = _V8 + ("sata",)
_V13 = _V10 + ("nvme", "secure_boot")

FAMILIES: tuple[HardwareFamily, ...] = (
    _vmx(4, "3.5", "5.0", 4, 64, note="ESX/ESXi 3.5"),
    _vmx(6, None, "6.0", None, None, note="Workstation 6.0 only"),
    _vmx(7, "4.0", "6.5", 8, 255, *_V7, note="ESX/ESXi 4.x"),
    _vmx(8, "5.0", "8.0", 32, 1011, *_V8),
    _vmx(9, "5.1", "9.0", 64, 1011, *_V8),
    _vmx(10, "5.5", "10.0", 64, 1011, *_V10),
    _vmx(11, "6.0", "11.0", 128, 4080, *_V10),
    _vmx(12, None, "12.0", None, None, *_V10, note="Workstation 12 / Fusion 8 only"),
    _vmx(13, "6.5", None, 128, 6128, *_V13),
    _vmx(14, "6.7", "14.0", 128, 6128, *_V13),
    _vmx(15, "6.7.2", None, 256, 6128, *_V13, note="ESXi 6.7 Update 2"),
    _vmx(16, None, "15.0", None, None, *_V13, note="Workstation 15 / Fusion 11 only"),
    _vmx(17, "7.0", "16.0", 256, 6128, *_V13),
    _vmx(18, "7.0.1", "16.1", 768, 24560, *_V13, note="ESXi 7.0 Update 1"),
    _vmx(19, "7.0.2", "16.2", 768, 24560, *_V13, note="ESXi 7.0 Update 2"),
    _vmx(20, "8.0", "17.0", 768, 24560, *_V13),
    _vmx(21, "8.0.2", "17.5", 768, 24560, *_V13, note="ESXi 8.0 Update 2"),
    HardwareFamily("virtualbox-2.2", "virtualbox", 0, None, None, None, None,
                   frozenset({"efi", "secure_boot", "sata", "x64"}),
                   "the only family VirtualBox writes, whatever its version (secure boot since 7.0)"),
    HardwareFamily("hvm-3.0-unknown", "xen", 0, None, None, None, None, frozenset({"hvm", "x64"}),
                   "fully virtualised guest, architecture not stated"),
    HardwareFamily("xen-3.0-unknown", "xen", 1, None, None, None, None, frozenset({"pv"}),
                   "paravirtual guest, architecture not stated"),
    HardwareFamily("xen-3.0-x64", "xen", 2, None, None, None, None, frozenset({"pv", "x64"}),
                   "64-bit paravirtual guest"),
    HardwareFamily("Microsoft:Hyper-V:SubType:1", "hyperv", 0, None, None, None, None, frozenset({"x64"}),
                   "generation 1: BIOS, boots from IDE"),
    HardwareFamily("Microsoft:Hyper-V:SubType:2", "hyperv", 1, None, None, None, None,
                   frozenset({"efi", "secure_boot", "x64"}),
                   "generation 2: UEFI only, 64-bit guests, boots from SCSI"),
)

# The family written when the VM needs nothing newer (the targets table's default_family): vmx-10 imports
# on ESXi 5.5 and later and on Workstation 10 and later, and already has SATA.
DEFAULTS = {t.name: t.default_family for t in ROWS if t.default_family is not None}
TARGETS = tuple(DEFAULTS)

_BY_NAME = {f.name.casefold(): f for f in FAMILIES}


def family(name: str | None) -> HardwareFamily | None:
    """The row for a VirtualSystemType value (case-insensitive; ``vmx-7`` and ``vmx-07`` both work)."""
    if not name:
        return None
    key = name.strip().casefold()
    m = re.fullmatch(r"vmx-0*(\d+)", key)
    if m:
        key = f"vmx-{int(m.group(1)):02d}"
    return _BY_NAME.get(key)


def parse_families(text: str | None) -> list[str]:
    """The values of a VirtualSystemType, which may list several (``"vmx-07 vmx-08"``)."""
    return [t for t in re.split(r"[\s,]+", text or "") if t]


def _release(text: str) -> tuple[int, ...]:
    nums = tuple(int(x) for x in re.findall(r"\d+", text))
    return nums + (0,) * (3 - len(nums))


def family_for(target: str, *, min_version: str | int | None = None, needs: Iterable[str] = (),
               cpus: int | None = None, memory_mib: int | None = None, host: str | None = None) -> str:
    """The family to write for ``target``: the target's default unless the VM needs more.

    ``min_version``: a family the result must not be older than (a name such as ``vmx-13``, or a VMware
    hardware version number). ``needs``: features the VM uses. ``cpus``/``memory_mib``: its size.
    ``host``: the ESXi release the VM must run on (``"6.7"``); families newer than it are excluded.
    VMware picks among ESXi families only. Raises :class:`TargetError` when no family fits.
    """
    if target not in TARGETS:
        raise TargetError(f"no hardware families for target {target!r}; known: {', '.join(TARGETS)}")
    needs = frozenset(needs)
    unknown = needs - FEATURES
    if unknown:
        raise TargetError(f"unknown hardware feature(s) {', '.join(sorted(unknown))}")
    rows = [f for f in FAMILIES if f.target == target and (target != "vmware" or f.esxi is not None)]
    floor = family(DEFAULTS[target]).order if target == "vmware" else 0
    if host is not None and target == "vmware":     # an older host lowers the default, never min_version
        floor = max((f.order for f in rows if f.order <= floor and _release(f.esxi) <= _release(host)),
                    default=0)
    if min_version is not None:
        wanted = family(f"vmx-{min_version}" if isinstance(min_version, int) else str(min_version))
        if wanted is None or wanted.target != target:
            raise TargetError(f"{min_version!r} is not a {target} hardware family")
        floor = max(floor, wanted.order)
    for row in sorted(rows, key=lambda f: f.order):
        if row.order < floor:
            continue
        if not needs <= row.features:
            continue
        if cpus is not None and row.max_vcpus is not None and cpus > row.max_vcpus:
            continue
        if memory_mib is not None and row.max_memory_gib is not None and memory_mib > row.max_memory_gib * 1024:
            continue
        if host is not None and row.esxi is not None and _release(row.esxi) > _release(host):
            continue
        return row.name
    what = ", ".join(sorted(needs)) or "nothing special"
    size = f", {cpus} vCPUs" if cpus else ""
    size += f", {memory_mib} MiB" if memory_mib else ""
    where = f" on ESXi {host}" if host else ""
    raise TargetError(f"no {target} hardware family{where} offers {what}{size}")
