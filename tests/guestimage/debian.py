"""A real Debian 12 guest as it lived on VMware, built from Debian's archive with ``mmdebstrap``.

    python -m tests.guestimage.debian [--ova DIR]     # build (or take from the cache); print the facts

The guest (the one of issue 11): systemd, Debian's generic kernel (``linux-image-amd64``), ifupdown,
open-vm-tools; an initramfs made by the guest's own ``update-initramfs`` with ``MODULES=list`` and only
VMware's storage drivers in ``/etc/initramfs-tools/modules`` (PVSCSI, LSI Logic SPI and SAS, and the
AHCI that VMware's SATA controller needs, no virtio); root named ``/dev/sda1`` in fstab; a static
address on ``ens192`` (the name a VMXNET3 NIC in PCI slot 192 gets on vSphere) with ifupdown's
``allow-hotplug``, as Debian's installer writes it; the kernel and a getty on the serial console
``ttyS0``; and a unit, ``vmferry-report.service``, that prints on the console:

    VMFERRY-BOOTED <kernel> root=<device> via=<drivers from the root disk up to its controller>
    VMFERRY-NIC <name> <mac> <driver>                 one line per NIC
    VMFERRY-ADDR <ip -br addr line>                   one line per interface
    VMFERRY-DONE

and powers the guest off (it waits up to 20 s for a global address first).

How, without loop devices: ``mmdebstrap`` (``--variant=apt``, no recommends, no documentation, locales
or man pages, and without the kernel's sound, GPU, wireless, media and InfiniBand modules) builds the
tree as root into a directory, using the same Debian mirror as the host's apt sources; the recipe's
hooks write the configuration before the packages are installed, so the kernel's own postinst builds
the restricted initramfs once. ``mke2fs -d`` makes the ext4 file system from the tree straight into
the partition of a sparse raw image, ``sfdisk`` writes the MBR partition table, EXTLINUX is installed
from inside a libguestfs appliance. The build needs root (mmdebstrap's root mode: chroot, and file
ownership that ``mke2fs -d`` copies).

:func:`vmware_ova` packs the disk as vSphere exports a VM: a streamOptimized VMDK on a PVSCSI
(``VirtualSCSI``) controller, a VMXNET3 NIC with a fixed VMware MAC in PCI slot 192, IDE controllers
with an empty CD-ROM, video card and VMCI device, ``vmw:Config`` extensions, made with vmferry's own
disk writer and packer.

Results are cached under ``$VMFERRY_TEST_CACHE`` (default ``~/.cache/vmferry-test``), keyed by a hash
of the recipe (:func:`recipe_key`) and the mirror; the OVA beside it, keyed by its descriptor.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.guestimage.build import _locked, cache_dir
from vmferry.guest.initramfs import read_file, summarise
from vmferry.tools.guestfs import guestfs_env
from vmferry.tools.proc import run

SUITE = "bookworm"
ROOT_UUID = "7d3c2a10-5e4f-4b6a-9c8d-0e1f2a3b4c5d"
ROOT_LABEL = "debroot"
HOSTNAME = "vmferry-deb12"
NIC_NAME = "ens192"
MAC = "00:50:56:3a:10:c2"            # VMware's static range 00:50:56:00:00:00-3f:ff:ff
ADDRESS = "192.0.2.10/24"
GATEWAY = "192.0.2.1"
MEMORY_MIB = 512

MARK_BOOTED = "VMFERRY-BOOTED"
MARK_NIC = "VMFERRY-NIC"
MARK_ADDR = "VMFERRY-ADDR"
MARK_DONE = "VMFERRY-DONE"
# what Debian's initramfs and the kernel print when the root file system is not found
MARKS_STUCK = ("Dropping to a shell", "Kernel panic")

PACKAGES = ("linux-image-amd64", "initramfs-tools", "systemd-sysv", "udev", "kmod", "ifupdown", "iproute2",
            "open-vm-tools")
# What /etc/initramfs-tools/modules lists (MODULES=list): VMware's storage drivers only.
INITRAMFS_MODULES = ("vmw_pvscsi", "mptspi", "mptsas", "ahci", "sd_mod", "ext4")
# Never unpacked (dpkg path-exclude): documentation, and kernel modules no VM of this guest uses.
EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*",
            "/usr/share/lintian/*", "/lib/firmware/*", "/usr/lib/firmware/*",
            *(f"/lib/modules/*/kernel/{d}/*" for d in (
                "sound", "drivers/gpu", "drivers/media", "drivers/net/wireless", "drivers/infiniband",
                "drivers/staging", "drivers/bluetooth", "net/bluetooth", "drivers/iio", "drivers/isdn",
                "net/wireless", "net/mac80211", "drivers/hid", "drivers/usb", "drivers/input/touchscreen",
                "drivers/net/ethernet/mellanox", "drivers/net/ethernet/intel/ice", "drivers/scsi/lpfc",
                "drivers/scsi/qla2xxx", "fs/nls", "fs/ocfs2", "fs/xfs", "fs/btrfs", "fs/f2fs")))

MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
PART_START = 2048   # sectors (1 MiB)

INTERFACES = f"""# This file describes the network interfaces available on your system
# and how to activate them. For more information, see interfaces(5).

source /etc/network/interfaces.d/*

# The loopback network interface
auto lo
iface lo inet loopback

# The primary network interface
allow-hotplug {NIC_NAME}
iface {NIC_NAME} inet static
\taddress {ADDRESS}
\tgateway {GATEWAY}
"""

REPORT = f"""#!/bin/sh
# vmferry test guest: print the booted marker, the root disk's drivers and the addresses, power off.
root=$(findmnt -n -o SOURCE /)
via=
d=$(readlink -f "/sys/class/block/${{root#/dev/}}")
while [ -n "$d" ] && [ "$d" != /sys/devices ] && [ "$d" != / ]; do
  [ -e "$d/driver" ] && via="$via $(basename "$(readlink -f "$d/driver")")"
  d=$(dirname "$d")
done
echo "{MARK_BOOTED} $(uname -r) root=$root via=$(echo $via | tr ' ' ,)"
i=0
while [ $i -lt 20 ] && ! ip -4 -o addr show scope global | grep -q inet; do sleep 1; i=$((i + 1)); done
for n in /sys/class/net/*; do
  [ -e "$n/device" ] || continue
  echo "{MARK_NIC} $(basename "$n") $(cat "$n/address") $(basename "$(readlink -f "$n/device/driver")")"
done
ip -br addr | sed 's/^/{MARK_ADDR} /'
echo "{MARK_DONE}"
systemctl --no-block poweroff
"""

UNIT = """[Unit]
Description=vmferry test guest: print the booted marker and the addresses on the console
Wants=network-online.target
After=network-online.target networking.service
# before the serial getty, whose hangup of ttyS0 would cut the report short
Before=getty.target serial-getty@ttyS0.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vmferry-report
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0

[Install]
WantedBy=multi-user.target
"""


BOOTLOADERS = ("extlinux", "grub")
KERNEL_CMDLINE = "console=tty0 console=ttyS0,115200"
DEFAULT_GRUB = f"""GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="{KERNEL_CMDLINE}"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
"""


def extlinux_conf(version: str) -> str:
    return ("SERIAL 0 115200\nDEFAULT debian\nTIMEOUT 1\nPROMPT 0\nLABEL debian\n"
            f"  KERNEL /boot/vmlinuz-{version}\n  INITRD /boot/initrd.img-{version}\n"
            f"  APPEND root=UUID={ROOT_UUID} ro {KERNEL_CMDLINE}\n")


@dataclass
class DebianGuest:
    """The built guest and what was put in it (the tests' ground truth)."""
    image: str                          # raw disk image (MBR, one ext4 partition)
    kernel_version: str
    initramfs_modules: list[str]        # every module in /boot/initrd.img-<version>, read back
    nic_name: str
    mac: str
    address: str
    root_uuid: str
    build_seconds: float
    image_bytes: int                    # bytes allocated on the host (the image is sparse)

    @classmethod
    def load(cls, path: Path) -> DebianGuest:
        return cls(**json.loads(path.read_text()))


@dataclass
class BootReport:
    """What the guest printed on its console (the lines of ``vmferry-report``)."""
    booted: bool
    kernel: str | None = None
    root: str | None = None                          # the device / is mounted from
    via: list[str] = field(default_factory=list)     # drivers from the root disk up to its controller
    nics: dict[str, tuple[str, str]] = field(default_factory=dict)     # name -> (mac, driver)
    addresses: dict[str, list[str]] = field(default_factory=dict)      # interface -> addresses (CIDR)
    states: dict[str, str] = field(default_factory=dict)               # interface -> UP/DOWN/...
    done: bool = False
    stuck: str | None = None                         # the initramfs/kernel failure line, if any
    console: str = ""

    def interface_with(self, address: str) -> str | None:
        return next((n for n, addrs in self.addresses.items() if address in addrs), None)


def parse_report(text: str) -> BootReport:
    """Read the report lines out of a console log (other lines, kernel messages included, are skipped)."""
    report = BootReport(False, console=text)
    for raw in text.splitlines():
        line = raw.strip("\r\x00 ")
        if report.stuck is None and any(m in line for m in MARKS_STUCK):
            report.stuck = line
        for mark in (MARK_BOOTED, MARK_NIC, MARK_ADDR, MARK_DONE):
            at = line.find(mark + " ") if mark != MARK_DONE else line.find(mark)
            if at >= 0:
                break
        else:
            continue
        words = line[at + len(mark):].split()
        if mark == MARK_BOOTED and words:
            fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            report.booted, report.kernel, report.root = True, words[0], fields.get("root")
            report.via = [d for d in fields.get("via", "").split(",") if d]
        elif mark == MARK_NIC and len(words) >= 3:
            report.nics[words[0]] = (words[1].lower(), words[2])
        elif mark == MARK_ADDR and len(words) >= 2:
            name = words[0].split("@")[0]
            report.states[name] = words[1]
            report.addresses[name] = words[2:]
        elif mark == MARK_DONE:
            report.done = True
    return report


def host_mirrors() -> list[str]:
    """One-line apt entries for ``SUITE`` (and its -updates/-security) from the host's apt sources."""
    entries: list[str] = []
    files = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list")),
             *sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))]
    for name in files:
        if not os.path.isfile(name):
            continue
        text = Path(name).read_text()
        if name.endswith(".sources"):
            for stanza in text.split("\n\n"):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    key, sep, value = line.partition(":")
                    if sep and not line.startswith((" ", "#")):
                        fields[key.strip().lower()] = value.strip()
                if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    for suite in fields.get("suites", "").split():
                        if suite.startswith(SUITE):
                            entries.append(f"deb {uri} {suite} main")
        else:
            for line in text.splitlines():
                parts = line.split("#", 1)[0].split()
                if len(parts) >= 3 and parts[0] == "deb" and "[" not in parts[1] and parts[2].startswith(SUITE):
                    entries.append(f"deb {parts[1]} {parts[2]} main")
    return entries or [f"deb http://deb.debian.org/debian {SUITE} main"]


def recipe_key(mirrors: list[str], bootloader: str) -> str:
    """A hash of everything that shapes the image (not of the OVA, the report parser or the tests)."""
    import inspect

    h = hashlib.sha256("\n".join([*mirrors, bootloader]).encode())
    h.update(repr((SUITE, ROOT_UUID, ROOT_LABEL, HOSTNAME, PACKAGES, INITRAMFS_MODULES, EXCLUDES, INTERFACES,
                   REPORT, UNIT, PART_START, DEFAULT_GRUB)).encode())
    for fn in (extlinux_conf, configure_before_install, configure_after_install, mmdebstrap, make_disk):
        h.update(inspect.getsource(fn).encode())
    return h.hexdigest()[:16]


def _write(tree: Path, rel: str, text: str, mode: int = 0o644) -> None:
    path = tree / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def configure_before_install(tree: Path) -> None:
    """Written before any package is unpacked (mmdebstrap setup hook): the kernel's postinst then builds
    the restricted initramfs the first and only time. ``modules`` is a conffile of initramfs-tools: dpkg
    keeps this version (``--force-confold``)."""
    _write(tree, "etc/initramfs-tools/conf.d/vmferry-modules-list", "MODULES=list\n")
    _write(tree, "etc/initramfs-tools/modules",
           "# List of modules that you want to include in your initramfs.\n"
           "# VMware's storage controllers only (MODULES=list in conf.d)\n" + "\n".join(INITRAMFS_MODULES) + "\n")
    _write(tree, "etc/hostname", HOSTNAME + "\n")


def configure_after_install(tree: Path, version: str, bootloader: str) -> None:
    """The VMware guest's own configuration (mmdebstrap customize step, done here on the tree)."""
    _write(tree, "etc/fstab", "# <file system> <mount point> <type> <options> <dump> <pass>\n"
                              "/dev/sda1 / ext4 errors=remount-ro 0 1\n")
    _write(tree, "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n")
    _write(tree, "etc/network/interfaces", INTERFACES)
    _write(tree, "etc/resolv.conf", "nameserver 192.0.2.53\n")
    _write(tree, "usr/local/sbin/vmferry-report", REPORT, 0o755)
    _write(tree, "etc/systemd/system/vmferry-report.service", UNIT)
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "vmferry-report.service").symlink_to("/etc/systemd/system/vmferry-report.service")
    if bootloader == "grub":
        _write(tree, "etc/default/grub", DEFAULT_GRUB)
    else:
        _write(tree, "boot/extlinux/extlinux.conf", extlinux_conf(version))
    # a root password so the serial getty can be used by hand when debugging a boot (never on a network)
    run(["chroot", str(tree), "sh", "-c", "echo root:vmferry | chpasswd"])


def mmdebstrap(tree: Path, mirrors: list[str], tmp: Path, bootloader: str) -> None:
    overlay = tmp / "before-install"
    configure_before_install(overlay)
    argv = ["mmdebstrap", "--mode=root", "--variant=apt", "--format=directory", "--quiet",
            "--include=" + ",".join(PACKAGES + (("grub-pc",) if bootloader == "grub" else ())),
            "--dpkgopt=force-confold", "--dpkgopt=force-confdef",
            *(f"--dpkgopt=path-exclude={p}" for p in EXCLUDES),
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            f"--setup-hook=sync-in {overlay} /",
            SUITE, str(tree), *mirrors]
    run(argv, timeout=1800, env={"LC_ALL": "C.UTF-8"})


def make_disk(tree: Path, image: Path, bootloader: str) -> None:
    used_kib = int(run(["du", "-s", "-k", "-x", str(tree)]).stdout.split()[0])
    fs_mib = (used_kib * 13 // 10) // 1024 + 256
    disk_mib = fs_mib + 1
    with open(image, "wb") as fh:
        fh.truncate(disk_mib * 1024 * 1024)
    # ext4 without the features EXTLINUX 6.04 cannot boot from (64bit, metadata_csum)
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^64bit,^metadata_csum", "-L", ROOT_LABEL, "-U", ROOT_UUID,
         "-d", str(tree), "-E", f"offset={PART_START * 512}", str(image), f"{fs_mib}M"], timeout=600)
    run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(image)],
        input=f"label: dos\nlabel-id: 0x5eb1a2c3\n{PART_START},{fs_mib * 2048},83,*\n")
    with open(image, "r+b") as fh:
        fh.write(MBR_BIN.read_bytes()[:440])
    # the bootloader is installed from inside a libguestfs appliance (no loop device on the host); GRUB
    # by the guest's own grub-install and update-grub (run chrooted in the guest by libguestfs)
    install = (["extlinux", "/boot/extlinux"] if bootloader == "extlinux" else
               ["command", "grub-install --target=i386-pc /dev/sda", ":", "command", "update-grub"])
    run(["guestfish", "--format=raw", "-a", str(image), "run", ":", "mount", "/dev/sda1", "/", ":", *install,
         ":", "umount-all"], env=guestfs_env(), timeout=900)


def build(cache: Path | None = None, bootloader: str = "extlinux") -> DebianGuest:
    """Build the guest (or take it from the cache). ``bootloader``: EXTLINUX (the tests) or GRUB, as
    Debian's installer sets up (the benchmark: virt-v2v converts only guests with GRUB)."""
    if bootloader not in BOOTLOADERS:
        raise ValueError(f"bootloader {bootloader!r}: one of {BOOTLOADERS}")
    if os.geteuid() != 0:
        raise RuntimeError("building the Debian test guest needs root (mmdebstrap --mode=root, mke2fs -d)")
    cache = cache or cache_dir()
    mirrors = host_mirrors()
    out = cache / f"debian12-vmware-{bootloader}-{recipe_key(mirrors, bootloader)}"
    manifest = out / "guest.json"
    with _locked(cache / f".debian12-{bootloader}.lock"):
        if manifest.exists():
            return DebianGuest.load(manifest)
        started = time.monotonic()
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        with tempfile.TemporaryDirectory(prefix="vmferry-debian-", dir=cache) as tmp:
            tree = Path(tmp) / "root"
            mmdebstrap(tree, mirrors, Path(tmp), bootloader)
            version = next(p.name for p in (tree / "lib" / "modules").iterdir())
            configure_after_install(tree, version, bootloader)
            modules = list(summarise("", read_file(tree / "boot" / f"initrd.img-{version}")).modules)
            image = Path(tmp) / "disk.img"
            make_disk(tree, image, bootloader)
            os.replace(image, out / "disk.img")
        guest = DebianGuest(str(out / "disk.img"), version, modules, NIC_NAME, MAC, ADDRESS, ROOT_UUID,
                            round(time.monotonic() - started, 1), os.stat(out / "disk.img").st_blocks * 512)
        tmp_manifest = manifest.with_suffix(".tmp")
        tmp_manifest.write_text(json.dumps(asdict(guest), indent=2))
        os.replace(tmp_manifest, manifest)
        return guest


# ---- the VMware-style OVA -------------------------------------------------------------------------

OVF = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="build-21495797" xmlns="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vmw="http://www.vmware.com/schema/ovf"
  xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="{name}-disk1.vmdk" ovf:id="file1" ovf:size="{vmdk_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1"
      ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
      ovf:populatedSize="{populated}"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian12_64Guest">
      <Info>The kind of installed guest operating system</Info>
      <Description>Debian GNU/Linux 12 (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-20</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>1 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>1</rasd:VirtualQuantity>
        <vmw:CoresPerSocket ovf:required="false">1</vmw:CoresPerSocket>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>{memory}MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{memory}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
        <vmw:Config ovf:required="false" vmw:key="slotInfo.pciSlotNumber" vmw:value="160"/>
      </Item>
      <Item>
        <rasd:Address>1</rasd:Address>
        <rasd:Description>IDE Controller</rasd:Description>
        <rasd:ElementName>IDE 1</rasd:ElementName>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:ResourceType>5</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>IDE Controller</rasd:Description>
        <rasd:ElementName>IDE 0</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceType>5</rasd:ResourceType>
      </Item>
      <Item ovf:required="false">
        <rasd:AutomaticAllocation>false</rasd:AutomaticAllocation>
        <rasd:ElementName>Video card</rasd:ElementName>
        <rasd:InstanceID>6</rasd:InstanceID>
        <rasd:ResourceType>24</rasd:ResourceType>
        <vmw:Config ovf:required="false" vmw:key="enable3DSupport" vmw:value="false"/>
        <vmw:Config ovf:required="false" vmw:key="videoRamSizeInKB" vmw:value="4096"/>
      </Item>
      <Item ovf:required="false">
        <rasd:AutomaticAllocation>false</rasd:AutomaticAllocation>
        <rasd:ElementName>VMCI device</rasd:ElementName>
        <rasd:InstanceID>7</rasd:InstanceID>
        <rasd:ResourceSubType>vmware.vmci</rasd:ResourceSubType>
        <rasd:ResourceType>1</rasd:ResourceType>
        <vmw:Config ovf:required="false" vmw:key="allowUnrestrictedCommunication" vmw:value="false"/>
        <vmw:Config ovf:required="false" vmw:key="slotInfo.pciSlotNumber" vmw:value="32"/>
      </Item>
      <Item ovf:required="false">
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>false</rasd:AutomaticAllocation>
        <rasd:ElementName>CD/DVD drive 1</rasd:ElementName>
        <rasd:InstanceID>8</rasd:InstanceID>
        <rasd:Parent>4</rasd:Parent>
        <rasd:ResourceSubType>vmware.cdrom.remotepassthrough</rasd:ResourceSubType>
        <rasd:ResourceType>15</rasd:ResourceType>
        <vmw:Config ovf:required="false" vmw:key="backing.exclusive" vmw:value="false"/>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>9</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
        <vmw:Config ovf:required="false" vmw:key="backing.writeThrough" vmw:value="false"/>
      </Item>
      <Item>
        <rasd:Address>{mac}</rasd:Address>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:Description>VmxNet3 ethernet adapter on "VM Network"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>10</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
        <vmw:Config ovf:required="false" vmw:key="connectable.allowGuestControl" vmw:value="true"/>
        <vmw:Config ovf:required="false" vmw:key="slotInfo.pciSlotNumber" vmw:value="192"/>
        <vmw:Config ovf:required="false" vmw:key="uptCompatibilityEnabled" vmw:value="true"/>
        <vmw:Config ovf:required="false" vmw:key="wakeOnLanEnabled" vmw:value="true"/>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="cpuHotAddEnabled" vmw:value="false"/>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="bios"/>
      <vmw:Config ovf:required="false" vmw:key="memoryHotAddEnabled" vmw:value="false"/>
      <vmw:Config ovf:required="false" vmw:key="powerOpInfo.powerOffType" vmw:value="soft"/>
      <vmw:Config ovf:required="false" vmw:key="tools.syncTimeWithHost" vmw:value="false"/>
      <vmw:Config ovf:required="false" vmw:key="tools.toolsUpgradePolicy" vmw:value="manual"/>
      <vmw:ExtraConfig ovf:required="false" vmw:key="nvram" vmw:value="{name}.nvram"/>
      <vmw:ExtraConfig ovf:required="false" vmw:key="svga.autodetect" vmw:value="TRUE"/>
    </VirtualHardwareSection>
    <AnnotationSection ovf:required="false">
      <Info>A human-readable annotation</Info>
      <Annotation>Debian 12 built by the vmferry test suite (tests/guestimage/debian.py)</Annotation>
    </AnnotationSection>
  </VirtualSystem>
</Envelope>
"""


def vmware_ova(guest: DebianGuest, name: str = "debian12-vmware") -> Path:
    """The guest as vSphere exports it (cached beside the image); a path to a read-only OVA."""
    from tests.conftest import run_vmferry

    out = Path(guest.image).parent
    ovf_key = hashlib.sha256(repr((OVF, name, MEMORY_MIB, MAC)).encode()).hexdigest()[:8]
    ova = out / f"{name}-{ovf_key}.ova"
    with _locked(out / ".ova.lock"):
        if ova.exists():
            return ova
        with tempfile.TemporaryDirectory(prefix="vmferry-ova-", dir=out) as tmp:
            pkg = Path(tmp) / "pkg"
            pkg.mkdir()
            vmdk = pkg / f"{name}-disk1.vmdk"
            res = run_vmferry("disk", "convert", guest.image, "-O", "vmdk-stream", "-o", vmdk, timeout=900)
            if res.returncode != 0:
                raise RuntimeError(f"vmferry disk convert failed: {res.stderr}")
            capacity = os.path.getsize(guest.image)
            (pkg / f"{name}.ovf").write_text(OVF.format(
                name=name, capacity=capacity, vmdk_size=os.path.getsize(vmdk), populated=guest.image_bytes,
                memory=MEMORY_MIB, mac=MAC))
            res = run_vmferry("pack", pkg, "-o", Path(tmp) / "x.ova", timeout=900)
            if res.returncode != 0:
                raise RuntimeError(f"vmferry pack failed: {res.stderr}")
            os.replace(Path(tmp) / "x.ova", ova)
        return ova


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ova", action="store_true", help="pack the VMware-style OVA too")
    parser.add_argument("--bootloader", choices=BOOTLOADERS, default="extlinux")
    args = parser.parse_args(argv)
    guest = build(bootloader=args.bootloader)
    print(json.dumps(asdict(guest), indent=2))
    if args.ova:
        print(vmware_ova(guest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
