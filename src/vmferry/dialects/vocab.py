"""Normalising what sources write (ResourceSubType spellings, vendor OS ids) into the portable
vocabulary, through the translation tables in :mod:`vmferry.tables` when they know the value."""

from __future__ import annotations

from vmferry.ovf.rasd import ResourceType, controller_kind


def nic_model(subtype: str | None) -> str | None:
    """Portable NIC model of a ResourceSubType ("VMXNET3 virtio" lists alternatives: the first wins)."""
    if not subtype:
        return None
    first = subtype.split()[0].lower()
    known = {"e1000": "e1000", "e1000e": "e1000e", "vmxnet3": "vmxnet3", "vmxnet2": "vmxnet2",
             "vmxnet": "vmxnet", "pcnet32": "pcnet32", "pcnet": "pcnet32", "pcnetpci": "pcnet32",
             "pcnetfast": "pcnet32", "virtio": "virtio", "virtio-net": "virtio", "rtl8139": "rtl8139",
             "i82540em": "e1000", "i82543gc": "e1000", "i82545em": "e1000", "netfront": "netfront"}
    if first in known:
        return known[first]
    if "hyper-v" in subtype.lower() or "synthetic" in subtype.lower():
        return "netvsc"
    return "other"


def controller(resource_type: int | None, subtype: str | None) -> tuple[str, str | None]:
    """(kind, portable model) of a storage controller."""
    kind = controller_kind(resource_type, subtype)
    sub = (subtype or "").split()
    names = [s.lower() for s in sub]
    table = {"lsilogic": "lsilogic", "lsilogicsas": "lsisas1068", "buslogic": "buslogic",
             "virtualscsi": "pvscsi", "virtio-scsi": "virtio-scsi", "virtio": "virtio-scsi", "ahci": "ahci",
             "piix3": "piix3", "piix4": "piix4", "vmware.sata.ahci": "ahci", "vmware.nvme.controller": "nvme"}
    model = next((table[n] for n in names if n in table and not (n == "virtio" and len(names) > 1)), None)
    if kind == "ide" and model is None:
        model = "piix4"
    if resource_type == ResourceType.USB_CONTROLLER:
        return "usb", subtype
    return kind, model
