"""A libvirt domain XML from one :class:`~vmferry.portable.PortableVM`.

Pure: no I/O, no libvirt connection. :mod:`vmferry.targets.kvm` decides the buses, paths and
networks; this module writes the document (validated by ``virt-xml-validate`` in the tests).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from lxml import etree

from vmferry.portable import PortableVM

DEFAULT_NETWORK = "default"     # libvirt's own default network; deploy picks the connection's own if absent
DISK_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "ide": "hd"}


@dataclass
class DiskPlan:
    path: str
    format: str                 # qcow2, raw, ...
    bus: str                    # virtio, sata, scsi, ide
    device: str = "disk"        # disk or cdrom
    boot_order: int | None = None
    readonly: bool = False


@dataclass
class NicPlan:
    network: str                # libvirt network name, bridge name, or "" for user-mode networking
    model: str                  # virtio, e1000, e1000e, rtl8139
    mac: str | None = None
    kind: str = "network"       # network, bridge or user


@dataclass
class DomainPlan:
    name: str
    domain_type: str            # kvm or qemu (TCG)
    machine: str                # q35 or pc
    vcpus: int
    sockets: int
    cores: int
    memory_mib: int
    threads: int = 1
    firmware: str = "bios"      # bios or efi
    secure_boot: bool = False
    disks: list[DiskPlan] = field(default_factory=list)
    nics: list[NicPlan] = field(default_factory=list)
    console_log: str | None = None
    description: str | None = None
    uuid: str | None = None
    libosinfo: str | None = None


def _sub(parent, tag: str, text: str | None = None, **attrs) -> etree._Element:
    el = etree.SubElement(parent, tag, {k: str(v) for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def domain_xml(plan: DomainPlan) -> str:
    libosinfo_ns = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
    dom = etree.Element("domain", type=plan.domain_type)
    _sub(dom, "name", plan.name)
    _sub(dom, "uuid", plan.uuid or str(uuid.uuid4()))
    if plan.description:
        _sub(dom, "description", plan.description)
    if plan.libosinfo:
        meta = _sub(dom, "metadata")
        info = etree.SubElement(meta, f"{{{libosinfo_ns}}}libosinfo", nsmap={"libosinfo": libosinfo_ns})
        etree.SubElement(info, f"{{{libosinfo_ns}}}os", id=f"http://libosinfo.org/os/{plan.libosinfo}")
    _sub(dom, "memory", str(plan.memory_mib), unit="MiB")
    _sub(dom, "currentMemory", str(plan.memory_mib), unit="MiB")
    _sub(dom, "vcpu", str(plan.vcpus), placement="static")
    os_el = _sub(dom, "os", firmware="efi" if plan.firmware == "efi" else None)
    _sub(os_el, "type", "hvm", arch="x86_64", machine=plan.machine)
    if plan.firmware == "efi":
        fw = _sub(os_el, "firmware")
        _sub(fw, "feature", enabled="yes" if plan.secure_boot else "no", name="secure-boot")
    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if plan.secure_boot:
        _sub(features, "smm", state="on")
    cpu = _sub(dom, "cpu", mode="host-model" if plan.domain_type == "kvm" else "custom",
               match=None if plan.domain_type == "kvm" else "exact")
    if plan.domain_type != "kvm":
        _sub(cpu, "model", "qemu64", fallback="allow")
    _sub(cpu, "topology", sockets=plan.sockets, dies=1, cores=plan.cores, threads=plan.threads)
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")
    devices = _sub(dom, "devices")
    counters: dict[str, int] = {}
    if any(d.bus == "scsi" for d in plan.disks):
        _sub(devices, "controller", type="scsi", index=0, model="virtio-scsi")
    for disk in plan.disks:
        prefix = DISK_PREFIX[disk.bus]
        n = counters.get(prefix, 0)
        counters[prefix] = n + 1
        el = _sub(devices, "disk", type="file", device=disk.device)
        _sub(el, "driver", name="qemu", type=disk.format)
        _sub(el, "source", file=disk.path)
        _sub(el, "target", dev=prefix + "abcdefghijklmnopqrstuvwxyz"[n], bus=disk.bus)
        if disk.readonly:
            _sub(el, "readonly")
        if disk.boot_order is not None:
            _sub(el, "boot", order=disk.boot_order)
    for nic in plan.nics:
        el = _sub(devices, "interface", type=nic.kind)
        if nic.mac:
            _sub(el, "mac", address=nic.mac)
        if nic.kind == "network":
            _sub(el, "source", network=nic.network)
        elif nic.kind == "bridge":
            _sub(el, "source", bridge=nic.network)
        _sub(el, "model", type=nic.model)
    serial = _sub(devices, "serial", type="pty")
    if plan.console_log:
        _sub(serial, "log", file=plan.console_log, append="off")
    _sub(serial, "target", port=0)
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port=0)
    _sub(devices, "input", type="keyboard", bus="ps2")
    _sub(devices, "graphics", type="vnc", port=-1, autoport="yes", listen="127.0.0.1")
    video = _sub(devices, "video")
    _sub(video, "model", type="vga", vram=16384, heads=1)
    _sub(devices, "memballoon", model="virtio" if plan.domain_type else "none")
    return etree.tostring(dom, pretty_print=True, encoding="unicode")


def plan_topology(vm: PortableVM, profile: str | None) -> tuple[int, int, int, int]:
    """(vcpus, sockets, cores, threads) for ``profile``: the source's topology when it divides the count."""
    cpu = vm.cpu_for(profile)
    count = cpu.count if cpu else 1
    cores = cpu.cores_per_socket if cpu and cpu.cores_per_socket and count % cpu.cores_per_socket == 0 else 1
    threads = cpu.threads_per_core if cpu and cpu.threads_per_core and count % (cores * cpu.threads_per_core) == 0 \
        else 1
    return count, max(1, count // (cores * threads)), cores, threads
