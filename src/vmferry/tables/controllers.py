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

from vmferry.tables.targets import IDE, OTHER_STORAGE, ROWS, SCSI, ControllerFallback, ControllerTarget

KINDS = ("ide", "scsi", "sata", "nvme")
MODELS = {"ide": ("piix3", "piix4"), "scsi": ("lsilogic", "lsisas1068", "pvscsi", "buslogic", "virtio-scsi",
                                             "storvsc"),
          "sata": ("ahci",), "nvme": ()}
TARGETS = tuple(t.name for t in ROWS)


@dataclass(frozen=True, slots=True)
class ControllerSpelling:
    resource_type: int
    subtype: str | None           # None: the Item has no ResourceSubType
    kind: str
    model: str | None             # None: the producer does not say which model
    seen_in: str
    note: str = ""


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

# per target: views of the targets table (vmferry.tables.targets), where they are written
TARGET_CONTROLLERS: tuple[ControllerTarget, ...] = tuple(c for t in ROWS for c in t.controllers)
FALLBACKS: tuple[ControllerFallback, ...] = tuple(f for t in ROWS for f in t.controller_fallbacks)


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
