"""NIC models: ResourceSubType spellings seen in the wild ↔ portable models, and what each target takes.

Portable models (see :class:`vmferry.portable.Nic`): ``e1000``, ``e1000e``, ``vmxnet3``, ``pcnet32``,
``virtio``, ``rtl8139``, ``netvsc``, ``other``.

* :data:`SPELLINGS` — one row per source spelling (case-insensitive) → portable model.
* :data:`TARGET_MODELS` — per target, the value written for each model the target has.
* :data:`FALLBACKS` — per target, the model used instead when it lacks one, with the reason.

A ResourceSubType that lists several models (``VMXNET3 virtio``, as Cisco writes it) is a list of
alternatives: :func:`nic_models` returns them all, :func:`best_nic` picks one for a target.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MODELS = ("e1000", "e1000e", "vmxnet3", "pcnet32", "virtio", "rtl8139", "netvsc", "other")
TARGETS = ("vmware", "virtualbox", "xen", "hyperv", "kvm", "dmtf")


@dataclass(frozen=True, slots=True)
class NicSpelling:
    value: str                    # as written in ResourceSubType (matched case-insensitively)
    model: str                    # portable model
    seen_in: str                  # who writes it
    note: str = ""


@dataclass(frozen=True, slots=True)
class TargetModel:
    target: str
    model: str                    # portable model
    value: str                    # what to write (ResourceSubType; libvirt model name for kvm)
    preference: int               # lower is better when several alternatives fit


@dataclass(frozen=True, slots=True)
class Fallback:
    target: str
    model: str                    # portable model the target lacks
    use: str                      # portable model written instead (must be in TARGET_MODELS)
    note: str


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

T = TargetModel
TARGET_MODELS: tuple[TargetModel, ...] = (
    T("vmware", "vmxnet3", "VmxNet3", 0),
    T("vmware", "e1000e", "E1000e", 1),
    T("vmware", "e1000", "E1000", 2),
    T("vmware", "pcnet32", "PCNet32", 3),
    T("virtualbox", "virtio", "virtio", 0),
    T("virtualbox", "e1000", "E1000", 1),
    T("virtualbox", "pcnet32", "PCNet32", 2),
    T("xen", "e1000", "e1000", 0),
    T("xen", "rtl8139", "rtl8139", 1),
    T("hyperv", "netvsc", "Microsoft:Hyper-V:Synthetic Ethernet Port", 0),
    T("kvm", "virtio", "virtio", 0),
    T("kvm", "e1000e", "e1000e", 1),
    T("kvm", "e1000", "e1000", 2),
    T("kvm", "rtl8139", "rtl8139", 3),
    T("kvm", "vmxnet3", "vmxnet3", 4),
    T("kvm", "pcnet32", "pcnet", 5),
    T("dmtf", "e1000", "E1000", 0),
    T("dmtf", "e1000e", "E1000e", 1),
    T("dmtf", "vmxnet3", "VMXNET3", 2),
    T("dmtf", "virtio", "virtio", 3),
    T("dmtf", "pcnet32", "PCNet32", 4),
    T("dmtf", "rtl8139", "rtl8139", 5),
)

_E1000 = "E1000 is emulated by VMware, VirtualBox, QEMU and Xen and has inbox drivers in Windows and Linux"
F = Fallback
FALLBACKS: tuple[Fallback, ...] = (
    F("vmware", "virtio", "e1000", "VMware has no virtio devices; " + _E1000),
    F("vmware", "rtl8139", "e1000", "VMware has no RTL8139; " + _E1000),
    F("vmware", "netvsc", "e1000", "VMware has no Hyper-V synthetic NIC; " + _E1000),
    F("vmware", "other", "e1000", _E1000),
    F("virtualbox", "e1000e", "e1000", "VirtualBox has no 82574 (e1000e) model"),
    F("virtualbox", "vmxnet3", "e1000", "VirtualBox has no VMXNET3; " + _E1000),
    F("virtualbox", "rtl8139", "e1000", "VirtualBox has no RTL8139"),
    F("virtualbox", "netvsc", "e1000", "VirtualBox has no Hyper-V synthetic NIC"),
    F("virtualbox", "other", "e1000", _E1000),
    F("xen", "e1000e", "e1000", "Xen's device model is given the older e1000"),
    F("xen", "vmxnet3", "e1000", "no VMXNET3 on Xen"),
    F("xen", "pcnet32", "e1000", "no PCnet on Xen HVM"),
    F("xen", "virtio", "e1000", "Xen HVM guests use netfront or an emulated NIC, not virtio"),
    F("xen", "netvsc", "e1000", "no Hyper-V synthetic NIC on Xen"),
    F("xen", "other", "e1000", _E1000),
    F("hyperv", "e1000", "netvsc", "Hyper-V emulates only the Gen 1 legacy DEC 21140 adapter; the guest needs "
      "hv_netvsc (Linux 2.6.32+) or integration services (Windows 2008 R2+ inbox)"),
    F("hyperv", "e1000e", "netvsc", "see e1000"),
    F("hyperv", "vmxnet3", "netvsc", "see e1000"),
    F("hyperv", "pcnet32", "netvsc", "see e1000"),
    F("hyperv", "virtio", "netvsc", "see e1000"),
    F("hyperv", "rtl8139", "netvsc", "see e1000"),
    F("hyperv", "other", "netvsc", "see e1000"),
    F("kvm", "netvsc", "e1000", "QEMU has no Hyper-V synthetic NIC; " + _E1000),
    F("kvm", "other", "e1000", _E1000),
    F("dmtf", "netvsc", "e1000", "a generic DMTF consumer knows no Hyper-V NIC; " + _E1000),
    F("dmtf", "other", "e1000", _E1000),
)


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
    return tuple(out)


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
