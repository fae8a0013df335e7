"""Linux kernel modules: names, ``.modinfo`` (read from the ELF file), built-in lists, the drivers that matter.

Kernel modules are ELF relocatable objects whose ``.modinfo`` section holds NUL-separated ``key=value``
strings (``depends=``, ``alias=``, ``softdep=``...). :func:`modinfo` reads them with no tool at all, so the
same code works on a module copied out of a guest or extracted from a Debian package.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from vmferry.errors import GuestError

# The drivers vmferry looks for, grouped by what they drive. Names use underscores (the kernel
# treats '-' and '_' alike in module names; we normalise to '_').
STORAGE_DRIVERS: dict[str, str] = {
    "virtio_blk": "KVM/QEMU virtio block",
    "virtio_scsi": "KVM/QEMU virtio SCSI",
    "xen_blkfront": "Xen paravirtual block",
    "hv_storvsc": "Hyper-V synthetic SCSI",
    "vmw_pvscsi": "VMware paravirtual SCSI",
    "mptspi": "LSI Logic parallel SCSI (VMware lsilogic)",
    "mptsas": "LSI Logic SAS (VMware lsisas1068)",
    "ahci": "SATA AHCI",
    "ata_piix": "IDE (Intel PIIX)",
    "nvme": "NVMe (EBS volumes on EC2 Nitro instances)",
}
NETWORK_DRIVERS: dict[str, str] = {
    "virtio_net": "KVM/QEMU virtio network",
    "xen_netfront": "Xen paravirtual network",
    "hv_netvsc": "Hyper-V synthetic network",
    "vmxnet3": "VMware vmxnet3",
    "e1000": "Intel e1000",
    "e1000e": "Intel e1000e",
    "8139cp": "Realtek RTL8139C+ (QEMU rtl8139)",
    "8139too": "Realtek RTL8139 (QEMU rtl8139)",
    "pcnet32": "AMD PCnet32 (VMware/VirtualBox pcnet)",
    "gve": "Google Virtual NIC (gVNIC, Compute Engine)",
    "ena": "Amazon Elastic Network Adapter (EC2 Nitro instances)",
}
# A driver is only usable when the bus it sits on is too.
BUS_DRIVERS: dict[str, str] = {"virtio_pci": "virtio PCI transport", "hv_vmbus": "Hyper-V VMBus",
                               "sd_mod": "SCSI disk (every SCSI, SAS and SATA disk)"}
# What a guest needs to read the OVF environment from its CD-ROM (the "iso" transport).
CDROM_DRIVERS: dict[str, str] = {"sr_mod": "SCSI CD-ROM", "cdrom": "CD-ROM core", "isofs": "ISO 9660 file system"}
WATCHED = {**STORAGE_DRIVERS, **NETWORK_DRIVERS, **BUS_DRIVERS, **CDROM_DRIVERS}

# Kconfig symbol -> module name, for kernels whose config says "=y" (built in).
KCONFIG: dict[str, str] = {
    "CONFIG_VIRTIO_BLK": "virtio_blk", "CONFIG_SCSI_VIRTIO": "virtio_scsi", "CONFIG_VIRTIO_NET": "virtio_net",
    "CONFIG_VIRTIO_PCI": "virtio_pci", "CONFIG_XEN_BLKDEV_FRONTEND": "xen_blkfront",
    "CONFIG_XEN_NETDEV_FRONTEND": "xen_netfront", "CONFIG_HYPERV_STORAGE": "hv_storvsc",
    "CONFIG_HYPERV_NET": "hv_netvsc", "CONFIG_HYPERV": "hv_vmbus", "CONFIG_VMWARE_PVSCSI": "vmw_pvscsi",
    "CONFIG_VMXNET3": "vmxnet3", "CONFIG_FUSION_SPI": "mptspi", "CONFIG_FUSION_SAS": "mptsas",
    "CONFIG_SATA_AHCI": "ahci", "CONFIG_BLK_DEV_SD": "sd_mod", "CONFIG_ATA_PIIX": "ata_piix", "CONFIG_E1000": "e1000", "CONFIG_E1000E": "e1000e",
    "CONFIG_BLK_DEV_SR": "sr_mod", "CONFIG_CDROM": "cdrom", "CONFIG_ISO9660_FS": "isofs",
    "CONFIG_8139CP": "8139cp", "CONFIG_8139TOO": "8139too", "CONFIG_PCNET32": "pcnet32",
    "CONFIG_GVE": "gve", "CONFIG_BLK_DEV_NVME": "nvme", "CONFIG_ENA_ETHERNET": "ena",
}

MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")


def module_name(path: str) -> str | None:
    """``kernel/drivers/block/virtio_blk.ko.xz`` -> ``virtio_blk``; ``None`` when not a module file."""
    name = PurePosixPath(path).name
    for suffix in MODULE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)].replace("-", "_")
    return None


def builtin_from_list(text: str) -> set[str]:
    """Module names from a ``modules.builtin`` file (one path per line)."""
    return {n for line in text.splitlines() if (n := module_name(line.strip()))}


def builtin_from_config(text: str) -> set[str]:
    """Watched drivers a kernel ``config-*`` file builds in (``=y``)."""
    found = set()
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and value.strip() == "y" and key.strip() in KCONFIG:
            found.add(KCONFIG[key.strip()])
    return found


@dataclass(frozen=True)
class ModInfo:
    name: str
    depends: tuple[str, ...] = ()
    softdep_pre: tuple[str, ...] = ()
    fields: dict[str, list[str]] = field(default_factory=dict, compare=False)


def _decompress(data: bytes, path: str) -> bytes:
    try:
        if data[:6] == b"\xfd7zXZ\x00":
            return lzma.decompress(data)
        if data[:2] == b"\x1f\x8b":
            return zlib.decompress(data, 47)
        if data[:4] == b"\x28\xb5\x2f\xfd":
            from vmferry.guest.initramfs import zstd_decompress

            return zstd_decompress(data)
    except (lzma.LZMAError, zlib.error) as exc:
        raise GuestError(f"cannot decompress kernel module: {exc}", path=path) from exc
    return data


def modinfo(data: bytes, path: str = "<module>") -> ModInfo:
    """Read the ``.modinfo`` section of a (possibly compressed) kernel module."""
    data = _decompress(data, path)
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise GuestError("not a 64-bit ELF kernel module", path=path)
    endian = "<" if data[5] == 1 else ">"
    try:
        shoff, = struct.unpack_from(endian + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)
        sections = []
        for i in range(shnum):
            name_off, _typ, _flags, _addr, off, size = struct.unpack_from(endian + "IIQQQQ", data,
                                                                        shoff + i * shentsize)
            sections.append((name_off, off, size))
        str_off = sections[shstrndx][1]
    except (struct.error, IndexError) as exc:
        raise GuestError("truncated ELF section table in kernel module", path=path) from exc
    fields: dict[str, list[str]] = {}
    for name_off, off, size in sections:
        end = data.index(b"\0", str_off + name_off)
        if data[str_off + name_off:end] != b".modinfo":
            continue
        for item in data[off:off + size].split(b"\0"):
            key, sep, value = item.decode("utf-8", "replace").partition("=")
            if sep:
                fields.setdefault(key, []).append(value)
    name = (fields.get("name") or [module_name(path) or PurePosixPath(path).name])[0].replace("-", "_")
    depends = tuple(d.replace("-", "_") for v in fields.get("depends", []) for d in v.split(",") if d)
    pre: list[str] = []
    for soft in fields.get("softdep", []):
        words = soft.split()
        mode = None
        for w in words:
            if w in ("pre:", "post:"):
                mode = w
            elif mode == "pre:":
                pre.append(w.replace("-", "_"))
    return ModInfo(name=name, depends=depends, softdep_pre=tuple(pre), fields=fields)
