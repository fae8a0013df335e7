"""Storage controllers: (ResourceType, ResourceSubType) ↔ (kind, portable model), and what each target takes.

Kinds: ``ide``, ``scsi``, ``sata``, ``nvme`` (``other`` for what none of these fits). Portable models
(see :class:`vmferry.portable.Controller`): ``piix3``, ``piix4`` (IDE), ``lsilogic``, ``lsisas1068``,
``pvscsi``, ``buslogic``, ``virtio-scsi``, ``storvsc`` (SCSI), ``ahci`` (SATA); NVMe has no model name.

ResourceType 20 ("other storage device") is SATA for VirtualBox (``AHCI``) and VMware
(``vmware.sata.ahci``) and NVMe for VMware (``vmware.nvme.controller``). A subtype listing several
models (``virtio lsilogic``, as Cisco writes it) is a list of alternatives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("ide", "scsi", "sata", "nvme")
MODELS = {"ide": ("piix3", "piix4"), "scsi": ("lsilogic", "lsisas1068", "pvscsi", "buslogic", "virtio-scsi",
                                             "storvsc"),
          "sata": ("ahci",), "nvme": ()}
TARGETS = ("vmware", "virtualbox", "xen", "hyperv", "kvm", "dmtf")
IDE, SCSI, OTHER_STORAGE = 5, 6, 20


@dataclass(frozen=True, slots=True)
class ControllerSpelling:
    resource_type: int
    subtype: str | None           # None: the Item has no ResourceSubType
    kind: str
    model: str | None             # None: the producer does not say which model
    seen_in: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class ControllerTarget:
    target: str
    kind: str
    model: str | None             # None: the target's only controller of this kind (no model choice)
    resource_type: int
    subtype: str | None           # ResourceSubType to write (libvirt controller model for kvm); None: omit
    preference: int               # lower is the target's default for the kind


@dataclass(frozen=True, slots=True)
class ControllerFallback:
    target: str
    kind: str
    model: str | None             # None: any model of this kind the target lacks
    use_kind: str
    use_model: str | None
    note: str


@dataclass(frozen=True, slots=True)
class ControllerChoice:
    target: str
    kind: str                     # what was written
    model: str | None
    resource_type: int
    subtype: str | None
    exact: bool                   # False: a fallback was used
    note: str = ""


S = ControllerSpelling
SPELLINGS: tuple[ControllerSpelling, ...] = (
    S(IDE, None, "ide", None, "VMware, most producers"),
    S(IDE, "PIIX3", "ide", "piix3", "VirtualBox"),
    S(IDE, "PIIX4", "ide", "piix4", "VirtualBox, COT"),
    S(IDE, "ICH6", "ide", None, "VirtualBox", "ICH6 IDE; no portable model"),
    S(IDE, "virtio", "ide", None, "Cisco IOSv",
      "written on an IDE controller to ask KVM for a virtio disk bus; the Item is still IDE"),
    S(IDE, "Microsoft:Hyper-V:Emulated IDE Controller", "ide", "piix4", "Hyper-V",
      "Hyper-V Gen 1 emulates an Intel PIIX4 IDE controller"),
    S(SCSI, None, "scsi", None, "producers that do not name the HBA"),
    S(SCSI, "lsilogic", "scsi", "lsilogic", "VMware, VirtualBox, COT"),
    S(SCSI, "lsilogicsas", "scsi", "lsisas1068", "VMware, VirtualBox"),
    S(SCSI, "buslogic", "scsi", "buslogic", "VMware, VirtualBox"),
    S(SCSI, "VirtualSCSI", "scsi", "pvscsi", "VMware (paravirtual SCSI)"),
    S(SCSI, "virtio-scsi", "scsi", "virtio-scsi", "libvirt/QEMU naming"),
    S(SCSI, "VirtioSCSI", "scsi", "virtio-scsi", "VirtualBox naming"),
    S(SCSI, "virtio", "scsi", "virtio-scsi", "Cisco, COT (\"virtio lsilogic\")",
      "a KVM virtio disk bus; taken as virtio-scsi, the SCSI-shaped virtio controller"),
    S(SCSI, "Microsoft:Hyper-V:Synthetic SCSI Controller", "scsi", "storvsc", "Hyper-V"),
    S(OTHER_STORAGE, "AHCI", "sata", "ahci", "VirtualBox"),
    S(OTHER_STORAGE, "vmware.sata.ahci", "sata", "ahci", "VMware (hardware version 10 and later)"),
    S(OTHER_STORAGE, "vmware.nvme.controller", "nvme", None, "VMware (hardware version 13 and later)"),
    S(OTHER_STORAGE, "nvme", "nvme", None, "generic spelling"),
    S(OTHER_STORAGE, "LsiLogicSas", "scsi", "lsisas1068", "older VirtualBox exports",
      "LSI SAS written as ResourceType 20; accepted on read, never written"),
)

T = ControllerTarget
TARGET_CONTROLLERS: tuple[ControllerTarget, ...] = (
    T("vmware", "ide", "piix4", IDE, None, 0),
    T("vmware", "scsi", "lsisas1068", SCSI, "lsilogicsas", 0),
    T("vmware", "scsi", "pvscsi", SCSI, "VirtualSCSI", 1),
    T("vmware", "scsi", "lsilogic", SCSI, "lsilogic", 2),
    T("vmware", "scsi", "buslogic", SCSI, "buslogic", 3),
    T("vmware", "sata", "ahci", OTHER_STORAGE, "vmware.sata.ahci", 0),
    T("vmware", "nvme", None, OTHER_STORAGE, "vmware.nvme.controller", 0),
    T("virtualbox", "ide", "piix4", IDE, "PIIX4", 0),
    T("virtualbox", "ide", "piix3", IDE, "PIIX3", 1),
    T("virtualbox", "sata", "ahci", OTHER_STORAGE, "AHCI", 0),
    T("virtualbox", "scsi", "lsilogic", SCSI, "lsilogic", 0),
    T("virtualbox", "scsi", "lsisas1068", SCSI, "lsilogicsas", 1),
    T("virtualbox", "scsi", "buslogic", SCSI, "buslogic", 2),
    T("xen", "ide", "piix3", IDE, None, 0),
    T("hyperv", "ide", "piix4", IDE, "Microsoft:Hyper-V:Emulated IDE Controller", 0),
    T("hyperv", "scsi", "storvsc", SCSI, "Microsoft:Hyper-V:Synthetic SCSI Controller", 0),
    T("kvm", "scsi", "virtio-scsi", SCSI, "virtio-scsi", 0),
    T("kvm", "scsi", "lsilogic", SCSI, "lsilogic", 1),
    T("kvm", "scsi", "lsisas1068", SCSI, "lsisas1068", 2),
    T("kvm", "scsi", "pvscsi", SCSI, "vmpvscsi", 3),
    T("kvm", "scsi", "buslogic", SCSI, "buslogic", 4),
    T("kvm", "sata", "ahci", OTHER_STORAGE, "ahci", 0),
    T("kvm", "ide", "piix3", IDE, "piix3", 0),
    T("kvm", "ide", "piix4", IDE, "piix4", 1),
    T("dmtf", "ide", None, IDE, None, 0),
    T("dmtf", "scsi", "lsilogic", SCSI, "lsilogic", 0),
    T("dmtf", "scsi", "lsisas1068", SCSI, "lsilogicsas", 1),
    T("dmtf", "scsi", "buslogic", SCSI, "buslogic", 2),
    T("dmtf", "scsi", "pvscsi", SCSI, "VirtualSCSI", 3),
    T("dmtf", "scsi", "virtio-scsi", SCSI, "virtio-scsi", 4),
    T("dmtf", "sata", "ahci", OTHER_STORAGE, "AHCI", 0),
)

_AHCI = "AHCI has inbox drivers in Windows Vista and later and in every Linux"
_SAS = "LSI SAS has inbox drivers in Windows 2008 and later and in every Linux (mptsas)"
F = ControllerFallback
FALLBACKS: tuple[ControllerFallback, ...] = (
    F("vmware", "ide", None, "ide", "piix4", "VMware's IDE controller is a PIIX4"),
    F("vmware", "scsi", None, "scsi", "lsisas1068", "VMware has no such HBA; " + _SAS),
    F("virtualbox", "scsi", None, "scsi", "lsisas1068", "VirtualBox writes no such HBA in OVF; " + _SAS),
    F("virtualbox", "nvme", None, "sata", "ahci", "VirtualBox OVF export has no NVMe controller; " + _AHCI),
    F("xen", "ide", None, "ide", "piix3", "Xen HVM emulates a PIIX3 IDE controller"),
    F("xen", "scsi", None, "ide", "piix3", "Xen HVM boots from emulated IDE; PV drivers (blkfront) take over"),
    F("xen", "sata", None, "ide", "piix3", "see scsi"),
    F("xen", "nvme", None, "ide", "piix3", "see scsi"),
    F("hyperv", "ide", None, "ide", "piix4", "Hyper-V Gen 1 IDE is a PIIX4"),
    F("hyperv", "scsi", None, "scsi", "storvsc", "Hyper-V has only its synthetic SCSI (storvsc); note that a "
      "Gen 1 VM boots from IDE only"),
    F("hyperv", "sata", None, "ide", "piix4", "Hyper-V has no SATA; Gen 1 boots from IDE"),
    F("hyperv", "nvme", None, "scsi", "storvsc", "Hyper-V has no NVMe for guests"),
    F("kvm", "scsi", "storvsc", "sata", "ahci", "QEMU has no Hyper-V SCSI; " + _AHCI),
    F("kvm", "nvme", None, "sata", "ahci", "libvirt's NVMe controller is too new to rely on; " + _AHCI),
    F("dmtf", "scsi", "storvsc", "scsi", "lsisas1068", "a generic DMTF consumer knows no Hyper-V SCSI; " + _SAS),
    F("dmtf", "nvme", None, "sata", "ahci", "DMTF names no NVMe controller; " + _AHCI),
)


def _norm(value: str | None) -> str:
    return " ".join((value or "").split()).casefold()


_BY_KEY = {(s.resource_type, _norm(s.subtype)): s for s in SPELLINGS}
_DEFAULT_KIND = {IDE: "ide", SCSI: "scsi"}


def spelling(resource_type: int | None, subtype: str | None) -> ControllerSpelling | None:
    """The table row for one (ResourceType, ResourceSubType), case-insensitive, or None."""
    return _BY_KEY.get((resource_type, _norm(subtype))) if resource_type is not None else None


def controller_models(resource_type: int | None, subtype: str | None) -> tuple[tuple[str, str | None], ...]:
    """``(kind, model)`` alternatives for a controller Item.

    ``(6, "virtio lsilogic")`` → ``(("scsi", "virtio-scsi"), ("scsi", "lsilogic"))``. An unknown
    subtype keeps the kind of its ResourceType (5 ide, 6 scsi) with model None; anything else is
    ``("other", None)``.
    """
    row = spelling(resource_type, subtype)
    if row is not None:
        return ((row.kind, row.model),)
    out: list[tuple[str, str | None]] = []
    for token in re.split(r"[\s,;]+", (subtype or "").strip()):
        hit = spelling(resource_type, token) if token else None
        pair = (hit.kind, hit.model) if hit else (_DEFAULT_KIND.get(resource_type, "other"), None)
        if pair not in out:
            out.append(pair)
    known = [p for p in out if p[1] is not None]
    return tuple(known or out[:1])


def _check(target: str, kind: str, model: str | None) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
    if kind not in KINDS:
        raise ValueError(f"unknown controller kind {kind!r}; known: {', '.join(KINDS)}")
    if model is not None and model not in MODELS[kind]:
        raise ValueError(f"unknown {kind} model {model!r}; known: {', '.join(MODELS[kind]) or 'none'}")


def native(target: str, kind: str, model: str | None = None) -> ControllerTarget | None:
    """The target's row for (kind, model); model None: the target's default of that kind."""
    _check(target, kind, model)
    rows = sorted((t for t in TARGET_CONTROLLERS if t.target == target and t.kind == kind),
                  key=lambda t: t.preference)
    if model is None:
        return rows[0] if rows else None
    return next((t for t in rows if t.model == model or t.model is None), None)


def controller_for_target(target: str, kind: str, model: str | None = None) -> ControllerChoice:
    """What to write on ``target`` for a portable controller; falls back (possibly to another kind)."""
    own = native(target, kind, model)
    if own is not None:
        return ControllerChoice(target, own.kind, own.model, own.resource_type, own.subtype, True)
    fb = next((f for f in FALLBACKS if f.target == target and f.kind == kind and f.model == model), None) or \
        next(f for f in FALLBACKS if f.target == target and f.kind == kind and f.model is None)
    used = native(target, fb.use_kind, fb.use_model)
    if used is None:                                # guarded by the tests; kept for a clear message
        raise ValueError(f"fallback for {kind}/{model} on {target} names one {target} lacks")
    return ControllerChoice(target, used.kind, used.model, used.resource_type, used.subtype, False, fb.note)
