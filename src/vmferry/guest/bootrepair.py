"""Boot repair as text transforms: device names by bus become ``UUID=``, and the initramfs configuration
asks for the drivers of every hypervisor the image must boot on.

Pure functions over file contents; :mod:`vmferry.guest.repair` reads and writes the guest's files and
regenerates the initramfs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from vmferry.guest.linuxconf import PSEUDO_FS

# A disk named by the bus it sits on: /dev/sda1, /dev/hda1, /dev/vda1, /dev/xvda1.
BUS_DEVICE = re.compile(r"^/dev/(?:x?vd|sd|hd)([a-z]+)(\d*)$")
_ARG = re.compile(r"(?<![\w.-])(root|resume)=(/dev/(?:x?vd|sd|hd)[a-z]+\d*)(?![\w/])")

# hypervisor -> drivers the initramfs must hold for the image to boot (disk) and come up on the network
# (NIC) there; the bus drivers they sit on come with them.
HYPERVISOR_DRIVERS: dict[str, tuple[str, ...]] = {
    "kvm": ("virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net", "ahci", "ata_piix"),
    "vmware": ("vmw_pvscsi", "mptspi", "mptsas", "vmxnet3", "ahci", "ata_piix", "e1000"),
    "xen": ("xen_blkfront", "xen_netfront", "ata_piix"),
    "hyperv": ("hv_vmbus", "hv_storvsc", "hv_netvsc", "ata_piix"),
    "virtualbox": ("ahci", "ata_piix", "e1000"),
    # EC2 (VM Import): EBS volumes on NVMe and the ENA NIC on Nitro instance types, Xen's on older ones
    "aws": ("nvme", "ena", "xen_blkfront", "xen_netfront"),
}
# Always wanted: SCSI disks, and the CD-ROM an OVF environment (ovf-env.xml) is read from.
COMMON_DRIVERS = ("sd_mod", "sr_mod", "cdrom", "isofs")
# Drivers whose presence in an initramfs shows the hypervisor the image came from.
SOURCE_EVIDENCE = {"vmw_pvscsi": "vmware", "mptspi": "vmware", "vmxnet3": "vmware", "virtio_blk": "kvm",
                   "virtio_scsi": "kvm", "xen_blkfront": "xen", "hv_storvsc": "hyperv"}

DRACUT_CONF = "/etc/dracut.conf.d/vmferry.conf"
INITRAMFS_TOOLS_MODULES = "/etc/initramfs-tools/modules"


def wanted_drivers(hypervisors: list[str]) -> list[str]:
    out: list[str] = []
    for hv in hypervisors:
        out += [d for d in HYPERVISOR_DRIVERS.get(hv, ()) if d not in out]
    return out + [d for d in COMMON_DRIVERS if d not in out]


def bus_device(spec: str) -> str | None:
    """The libguestfs device (``/dev/sdXN``) of a guest device name by bus, or None for other names."""
    m = BUS_DEVICE.match(spec.strip())
    return f"/dev/sd{m.group(1)}{m.group(2)}" if m else None


def fstab(text: str, uuid_of: Callable[[str], str | None]) -> tuple[str, list[str]]:
    """(new text, specs rewritten): file systems named by bus device are named by ``UUID=``."""
    out, done = [], []
    for line in text.splitlines(keepends=True):
        body, hash_, comment = line.partition("#")
        fields = body.split()
        if len(fields) >= 3 and fields[2] not in PSEUDO_FS and (uuid := uuid_of(fields[0])):
            start = body.index(fields[0])
            line = body[:start] + f"UUID={uuid}" + body[start + len(fields[0]):] + hash_ + comment
            done.append(fields[0])
        out.append(line)
    return "".join(out), done


def kernel_args(text: str, uuid_of: Callable[[str], str | None]) -> tuple[str, list[str]]:
    """(new text, specs rewritten): ``root=``/``resume=`` naming a bus device, in a bootloader or
    kernel command line configuration (grub.cfg, /etc/default/grub, extlinux.conf, BLS entries)."""
    done: list[str] = []

    def sub(m: re.Match) -> str:
        uuid = uuid_of(m.group(2))
        if not uuid:
            return m.group(0)
        done.append(f"{m.group(1)}={m.group(2)}")
        return f"{m.group(1)}=UUID={uuid}"

    return _ARG.sub(sub, text), done


def grub_defaults(text: str) -> tuple[str, bool]:
    """``GRUB_DISABLE_LINUX_UUID=true`` would make update-grub write ``root=/dev/...`` again: turned off."""
    new = re.sub(r"(?m)^(\s*GRUB_DISABLE_LINUX_UUID=)[\"']?true[\"']?[ \t]*$", r"\1false", text)
    return new, new != text


def initramfs_tools_modules(text: str | None, drivers: list[str]) -> str:
    """``/etc/initramfs-tools/modules`` with ``drivers`` added (one per line, existing lines kept)."""
    text = text or ("# List of modules that you want to include in your initramfs.\n"
                    "# They will be loaded at boot time in the order below.\n")
    present = {ln.split()[0].replace("-", "_") for ln in text.splitlines() if ln.split() and not ln.startswith("#")}
    missing = [d for d in drivers if d not in present]
    if not missing:
        return text
    if not text.endswith("\n"):
        text += "\n"
    return text + "# added by vmferry: drivers of every hypervisor this image boots on\n" + \
        "".join(f"{d}\n" for d in missing)


def dracut_conf(text: str | None, drivers: list[str]) -> str:
    """``/etc/dracut.conf.d/vmferry.conf``: ``add_drivers+=" ... "`` with every driver asked for."""
    present = set()
    for m in re.finditer(r'add_drivers\+?=\s*"([^"]*)"', text or ""):
        present |= {d.replace("-", "_") for d in m.group(1).split()}
    wanted = sorted(present | set(drivers))
    return ("# written by vmferry: drivers of every hypervisor this image boots on\n"
            f'add_drivers+=" {" ".join(wanted)} "\n')
