"""Proxmox VE: qcow2 disks, ``<stem>.ovf`` in the subset ``qm importovf`` reads, and ``<stem>.qm.sh`` with
the ``qm importovf`` and ``qm set`` command lines.

What Proxmox's OVF import reads (qemu-server's and pve-storage's OVF parsers): the OVF 1.x envelope
namespace; the first VirtualSystem's ``Name`` (letters, digits, '-' and '.' kept); the ``VirtualQuantity``
of *the* Processor (3) and *the* Memory (4) Item, memory taken as MiB whatever the units (so one Item of
each, in MiB); ``OperatingSystemSection/@ovf:id`` as a CIM id (mapped to its ``ostype``); each Disk Drive
(17) Item's ``HostResource`` ``ovf:/disk/ID`` (unreserved characters only), its Disk's ``fileRef``,
``ovf:capacity`` with ``capacityAllocationUnits`` of the form ``byte * B^E``, the File's ``href`` (a
plain name beside the OVF, no folders), the ``Parent`` controller's ResourceType (5 IDE, 6 SCSI, 20 SATA)
and ``AddressOnParent`` (disk ``scsi0``, ``sata1``...); Ethernet Items' ``ResourceSubType`` (e1000,
e1000e, vmxnet3; anything else becomes e1000). What it does not read — the SCSI model (scsihw), virtio
NICs, bridges and MACs, UEFI (but from ``vmw:Config``), the guest agent — is set by ``qm set``.
"""

from __future__ import annotations

import os
import shlex

from lxml import etree

from vmferry.findings import Finding
from vmferry.ovf import names as N
from vmferry.targets.clouds.base import CloudJob

OVF_NS, RASD, VSSD = N.OVF_1, N.RASD, N.VSSD
RESOURCE = {"ide": 5, "scsi": 6, "sata": 20}          # what qm importovf maps to ide/scsi/sata
SLOTS = {"ide": 4, "scsi": 31, "sata": 6}             # disks per controller kind (ide0-3, scsi0-30, sata0-5)
# qm's --ostype per CIM id (CIM_OperatingSystem.OSType); other ids: by family (l26, other)
PVE_OSTYPE = {18: "wxp", 58: "w2k", 67: "wxp", 69: "w2k3", 70: "w2k3", 71: "wxp", 73: "wvista", 74: "wvista",
              76: "w2k8", 77: "w2k8", 97: "l24", 98: "l24", 103: "win7", 105: "win7", 112: "win8", 113: "win8",
              114: "win8", 115: "win8", 116: "win10", 117: "win8", 118: "win8", 119: "win10", 120: "win10",
              121: "win10", 122: "win11", 123: "win11", 29: "solaris", 81: "solaris"}


def _q(local: str, ns: str = OVF_NS) -> str:
    return f"{{{ns}}}{local}"


def ostype(cim: int, family: str | None) -> str:
    return PVE_OSTYPE.get(cim) or {"linux": "l26", "windows": "win10", "solaris": "solaris"}.get(family or "", "other")


def _item(hw, props: list[tuple[str, object]]) -> None:
    item = etree.SubElement(hw, _q("Item"))
    for key, value in sorted(props):     # RASD properties in the schema's alphabetical order
        etree.SubElement(item, _q(key, RASD)).text = str(value)


def descriptor(job: CloudJob, kinds: list[str], scsihw: str | None, nic_value: str, cim: int) -> bytes:
    """The OVF qm importovf reads: every disk on a controller of ``kinds[i]``."""
    nsmap = {None: OVF_NS, "ovf": OVF_NS, "rasd": RASD, "vssd": VSSD}
    root = etree.Element(_q("Envelope"), nsmap=nsmap)
    root.set(_q("version"), "1.0")
    refs = etree.SubElement(root, _q("References"))
    section = etree.SubElement(root, _q("DiskSection"))
    etree.SubElement(section, _q("Info")).text = "Virtual disks"
    for i, d in enumerate(job.disks):
        etree.SubElement(refs, _q("File"), {_q("href"): d.href, _q("id"): f"file{i + 1}",
                                            _q("size"): str(_size(job, d))})
        etree.SubElement(section, _q("Disk"), {_q("capacity"): str(d.virtual_size),
                                               _q("capacityAllocationUnits"): "byte * 2^0",
                                               _q("diskId"): f"disk{i + 1}", _q("fileRef"): f"file{i + 1}"})
    nets = sorted({n.network or "VM Network" for n in job.vm.nics_for(job.profile)})
    if nets:
        ns = etree.SubElement(root, _q("NetworkSection"))
        etree.SubElement(ns, _q("Info")).text = "Networks"
        for net in nets:
            etree.SubElement(etree.SubElement(ns, _q("Network"), {_q("name"): net}), _q("Description")).text = net
    vs = etree.SubElement(root, _q("VirtualSystem"), {_q("id"): job.stem})
    etree.SubElement(vs, _q("Info")).text = "converted by vmferry for Proxmox VE"
    etree.SubElement(vs, _q("Name")).text = job.stem
    os_section = etree.SubElement(vs, _q("OperatingSystemSection"), {_q("id"): str(cim)})
    etree.SubElement(os_section, _q("Info")).text = "Guest operating system"
    hw = etree.SubElement(vs, _q("VirtualHardwareSection"))
    etree.SubElement(hw, _q("Info")).text = "Virtual hardware"
    system = etree.SubElement(hw, _q("System"))
    for key, value in (("ElementName", "Virtual Hardware Family"), ("InstanceID", 0),
                       ("VirtualSystemIdentifier", job.stem), ("VirtualSystemType", "qemu")):
        etree.SubElement(system, _q(key, VSSD)).text = str(value)
    vcpus, *_ = job.cpu
    _item(hw, [("AllocationUnits", "hertz * 10^6"), ("ElementName", f"{vcpus} virtual CPUs"), ("InstanceID", 1),
               ("ResourceType", 3), ("VirtualQuantity", vcpus)])
    _item(hw, [("AllocationUnits", "byte * 2^20"), ("ElementName", f"{job.memory_mib or 1024} MB of memory"),
               ("InstanceID", 2), ("ResourceType", 4), ("VirtualQuantity", job.memory_mib or 1024)])
    controllers: dict[str, int] = {}
    next_id = 3
    for kind in dict.fromkeys(kinds):
        controllers[kind] = next_id
        props = [("ElementName", f"{kind.upper()} controller 0"), ("InstanceID", next_id),
                 ("ResourceType", RESOURCE[kind]), ("Address", 0)]
        if kind == "scsi" and scsihw:
            props.append(("ResourceSubType", scsihw))
        _item(hw, props)
        next_id += 1
    used: dict[str, int] = {}
    for i, kind in enumerate(kinds):
        _item(hw, [("AddressOnParent", used.get(kind, 0)), ("ElementName", f"disk {i + 1}"),
                   ("HostResource", f"ovf:/disk/disk{i + 1}"), ("InstanceID", next_id),
                   ("Parent", controllers[kind]), ("ResourceType", 17)])
        used[kind] = used.get(kind, 0) + 1
        next_id += 1
    for i, n in enumerate(job.vm.nics_for(job.profile)):
        _item(hw, [("AutomaticAllocation", "true"), ("Connection", n.network or "VM Network"),
                   ("ElementName", f"Ethernet adapter {i}"), ("InstanceID", next_id),
                   ("ResourceSubType", nic_value), ("ResourceType", 10)])
        next_id += 1
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _size(job: CloudJob, d) -> int:
    return os.path.getsize(d.path)


def write(job: CloudJob) -> None:
    c = job.choice
    boot_kind = c.bus_value                         # scsi (virtio-scsi), sata, ide
    kinds, used = [], {}
    for _ in job.disks:
        kind = boot_kind if used.get(boot_kind, 0) < SLOTS[boot_kind] else "scsi"
        used[kind] = used.get(kind, 0) + 1
        kinds.append(kind)
    drv = job.drivers if job.drivers is not None and job.drivers.checked else None
    scsihw = None
    if "scsi" in kinds:
        scsihw = "virtio-scsi-pci" if c.bus == "virtio-scsi" or (drv and "virtio-scsi" in drv.storage_buses) \
            else "lsi"
    from vmferry.tables import os as ostable

    cim = ostable.to_cim(job.vm.os)
    family = getattr(getattr(job.guest, "os", None), "type", None) or job.vm.os.family
    data = descriptor(job, kinds, scsihw, c.nic_value, cim)   # qm keeps e1000/e1000e/vmxnet3; qm set the rest
    ovf_name = f"{job.stem}.ovf"
    with open(job.path(ovf_name), "wb") as fh:
        fh.write(data)
    job.report.documents.append({"href": ovf_name, "what": "OVF for qm importovf", "system": job.vm.id})
    vmid = int(job.options.get("vmid") or 100)
    storage = job.options.get("storage") or "local-lvm"
    bridge = job.options.get("bridge") or "vmbr0"
    settings = [f"--ostype {ostype(cim, family)}"]
    if scsihw:
        settings.append(f"--scsihw {scsihw}")
    settings.append(f"--boot order={kinds[0]}0" if kinds else "--boot order=net0")
    if c.firmware == "efi":
        settings += ["--bios ovmf", "--machine q35",
                     f"--efidisk0 \"$STORAGE:1,efitype=4m,pre-enrolled-keys={1 if c.secure_boot else 0}\""]
    tools = {t.name for t in getattr(job.guest, "tools", [])}
    if "qemu-guest-agent" in tools:
        settings.append("--agent enabled=1")
    for i, n in enumerate(job.vm.nics_for(job.profile)):
        net = f"{c.nic_value},bridge=\"$BRIDGE\"" + (f",macaddr={n.mac.replace('-', ':').upper()}" if n.mac else "")
        settings.append(f"--net{i} {net}")
        job.change("mapped", f"NIC {n.index}", f"{n.source_model or n.model} -> {c.nic_value} on the bridge "
                   "(qm set)" + (f", MAC {n.mac}" if n.mac else ""))
    lines = ["#!/bin/sh", "# Import the VM converted by vmferry into Proxmox VE; run on the node, beside these files.",
             "set -eu", f"VMID=\"${{VMID:-{vmid}}}\"", f"STORAGE=\"${{STORAGE:-{shlex.quote(storage)}}}\"",
             f"BRIDGE=\"${{BRIDGE:-{shlex.quote(bridge)}}}\"", 'cd "$(dirname "$0")"',
             f"qm importovf \"$VMID\" {shlex.quote(ovf_name)} \"$STORAGE\" --format qcow2",
             "qm set \"$VMID\" " + " ".join(settings)]
    job.write_text(f"{job.stem}.qm.sh", "\n".join(lines) + "\n", "qm importovf and qm set command lines", mode=0o755)
    job.change("mapped", "disks", ", ".join(f"{d.href} -> {k}{kinds[:i].count(k)}"
                                            for i, (d, k) in enumerate(zip(job.disks, kinds, strict=True))))
    if scsihw:
        job.change("mapped", "SCSI controller", f"scsihw {scsihw} (qm set)")
    job.change("mapped", "guest OS", f"CIM {cim} -> ostype {ostype(cim, family)}")
    for drive in job.vm.drives:
        job.change("dropped", f"{drive.kind} drive {drive.instance_id}", "qm importovf imports disks only")


def rules(portable, vm, row) -> list[Finding]:
    out = []
    if len(portable.systems) > 1:
        out.append(Finding("VMF-PVE-001", "warning", f"{len(portable.systems)} systems: qm importovf reads the "
                           "first VirtualSystem of an OVF", vm.id, "one OVF and qm command per system is written",
                           "convert"))
    if vm.firmware.kind == "efi":
        out.append(Finding("VMF-PVE-002", "info", "UEFI firmware: qm importovf reads it from vmw:Config only", vm.id,
                           "qm set --bios ovmf --machine q35 --efidisk0 is written", "convert"))
    return out
