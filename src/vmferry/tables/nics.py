"""NIC models: ResourceSubType spellings seen in the wild ↔ portable models, and what each target takes.

Portable models (see :class:`vmferry.portable.Nic`): ``e1000``, ``e1000e``, ``vmxnet3``, ``pcnet32``,
``virtio``, ``rtl8139``, ``netvsc``, ``other``.

* :data:`SPELLINGS` — one row per source spelling (case-insensitive) → portable model.
* :data:`TARGET_MODELS` / :data:`FALLBACKS` — per target, the value written for each model the target
  has, and the model used instead when it lacks one: views of the targets table
  (:mod:`vmferry.tables.targets`, ``Target.nics`` / ``Target.nic_fallbacks``), where they are written.

A ResourceSubType that lists several models (``VMXNET3 virtio``, as Cisco writes it) is a list of
alternatives: :func:`nic_models` returns them all, :func:`best_nic` picks one for a target.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from vmferry.tables.targets import ROWS, Fallback, TargetModel

MODELS = ("e1000", "e1000e", "vmxnet3", "pcnet32", "virtio", "rtl8139", "netvsc", "other")
TARGETS = tuple(t.name for t in ROWS)


@dataclass(frozen=True, slots=True)
class NicSpelling:
    value: str                    # as written in ResourceSubType (matched case-insensitively)
    model: str                    # portable model
    seen_in: str                  # who writes it
    note: str = ""


@dataclass(frozen=True, slots=True)
class NicChoice:
    target: str
    requested: str                # portable model asked for
    model: str                    # portable model actually written
    value: str                    # the value to write
    exact: bool                   # False: a fallback was used
    note: str = ""


S = NicSpelling
SPELLINGS: tuple[NicSpelling, ...] = (
    S("E1000", "e1000", "VMware, VirtualBox, Cisco, COT"),
    S("e1000-82545em", "e1000", "QEMU device name"),
    S("e1000-82544gc", "e1000", "QEMU device name"),
    S("e1000-82540em", "e1000", "QEMU device name"),
    S("I82540EM", "e1000", "VirtualBox adapter type (Intel PRO/1000 MT Desktop)"),
    S("I82543GC", "e1000", "VirtualBox adapter type (Intel PRO/1000 T Server)"),
    S("I82545EM", "e1000", "VirtualBox adapter type (Intel PRO/1000 MT Server)"),
    S("E1000e", "e1000e", "VMware (hardware version 8 and later)"),
    S("VmxNet3", "vmxnet3", "VMware (VMXNET3 and vmxnet3 are the same, matched case-insensitively)"),
    S("PCNet32", "pcnet32", "VMware, VirtualBox"),
    S("pcnet", "pcnet32", "libvirt/QEMU model name"),
    S("Am79C970A", "pcnet32", "VirtualBox adapter type (PCnet-PCI II)"),
    S("Am79C973", "pcnet32", "VirtualBox adapter type (PCnet-FAST III)"),
    S("Am79C960", "pcnet32", "VirtualBox adapter type (PCnet-ISA)"),
    S("virtio", "virtio", "VirtualBox, Cisco, libvirt"),
    S("VIRTIO_NET", "virtio", "Compute Engine nicType"),
    S("virtio-net", "virtio", "QEMU/libvirt documents"),
    S("3", "virtio", "oVirt/RHV (VmInterfaceType pv), virt-v2v -o rhv/vdsm"),
    S("2", "e1000", "oVirt/RHV (VmInterfaceType e1000), virt-v2v -o rhv/vdsm"),
    S("1", "rtl8139", "oVirt/RHV (VmInterfaceType rtl8139), virt-v2v -o rhv/vdsm"),
    S("0", "rtl8139", "oVirt/RHV (VmInterfaceType rtl8139_pv)"),
    S("virtio-net-pci", "virtio", "QEMU device name"),
    S("rtl8139", "rtl8139", "QEMU/libvirt, Xen HVM"),
    S("netvsc", "netvsc", "Linux driver name of the Hyper-V synthetic NIC"),
    S("Microsoft:Hyper-V:Synthetic Ethernet Port", "netvsc", "Hyper-V"),
    S("Microsoft:Hyper-V:Emulated Ethernet Port", "other", "Hyper-V",
      "the Gen 1 legacy adapter (DEC 21140); the portable vocabulary has no model for it"),
    S("VmxNet2", "other", "VMware", "enhanced vmxnet; only VMware Tools drives it"),
    S("VmxNet", "other", "VMware", "vmxnet; only VMware Tools drives it"),
    S("netfront", "other", "Xen", "Xen paravirtual NIC; the portable vocabulary has no Xen PV model"),
    S("ne2k_pci", "other", "QEMU", "NE2000; no portable model"),
)

TARGET_MODELS: tuple[TargetModel, ...] = tuple(m for t in ROWS for m in t.nics)
FALLBACKS: tuple[Fallback, ...] = tuple(f for t in ROWS for f in t.nic_fallbacks)


def _norm(value: str) -> str:
    return " ".join(value.split()).casefold()


_BY_SPELLING = {_norm(s.value): s for s in SPELLINGS}


def spelling(value: str | None) -> NicSpelling | None:
    """The table row for one source spelling (case-insensitive), or None."""
    return _BY_SPELLING.get(_norm(value)) if value else None


def nic_models(subtype: str | None) -> tuple[str, ...]:
    """Portable models for a ResourceSubType: one, several (a list of alternatives) or none.

    ``"VMXNET3 virtio"`` → ``("vmxnet3", "virtio")``; an unknown spelling → ``("other",)``;
    ``None`` or blank → ``()``.
    """
    if not subtype or not subtype.strip():
        return ()
    whole = spelling(subtype)
    if whole is not None:
        return (whole.model,)
    out: list[str] = []
    for token in re.split(r"[\s,;]+", subtype.strip()):
        row = spelling(token)
        model = row.model if row is not None else "other"
        if token and model not in out:
            out.append(model)
    return tuple(out) or ("other",)  # only separators (",") is an unknown spelling, not a blank


def _check(target: str, model: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
    if model not in MODELS:
        raise ValueError(f"unknown portable NIC model {model!r}; known: {', '.join(MODELS)}")


def native(target: str, model: str) -> TargetModel | None:
    """The target's own entry for a model, or None when it lacks the model."""
    _check(target, model)
    return next((t for t in TARGET_MODELS if t.target == target and t.model == model), None)


def nic_for_target(target: str, model: str | None) -> NicChoice:
    """What to write on ``target`` for a portable model (``None`` counts as ``other``)."""
    model = model or "other"
    own = native(target, model)
    if own is not None:
        return NicChoice(target, model, model, own.value, True)
    fb = next(f for f in FALLBACKS if f.target == target and f.model == model)
    used = native(target, fb.use)
    if used is None:                                # guarded by the tests; kept for a clear message
        raise ValueError(f"fallback for {model} on {target} names {fb.use}, which {target} lacks")
    return NicChoice(target, model, fb.use, used.value, False, fb.note)


def best_nic(target: str, models: Iterable[str]) -> NicChoice:
    """Among alternatives (``nic_models("VMXNET3 virtio")``), the one the target runs best natively;
    when it has none of them, the fallback for the first."""
    models = tuple(models) or ("other",)
    natives = [t for m in models if (t := native(target, m)) is not None]
    if natives:
        best = min(natives, key=lambda t: t.preference)
        return NicChoice(target, best.model, best.model, best.value, True)
    return nic_for_target(target, models[0])
