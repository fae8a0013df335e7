"""VMF-GUEST-041: the OVF environment's CD-ROM is only read by cloud-init when sr_mod, cdrom and isofs are
usable at boot (built in or in the initramfs)."""

from __future__ import annotations

from vmferry.guest.model import CloudInit, GuestReport, Initramfs, Kernel, OsInfo
from vmferry.guest.readiness import readiness

BOOT = ("virtio_pci", "virtio_blk", "virtio_net", "ahci", "sd_mod")


def _guest(initramfs=(), builtin=(), on_disk=(), cloud=True) -> GuestReport:
    initrd = Initramfs("/boot/initrd.img-6.1", "6.1", tuple(sorted(initramfs)), tuple(sorted(initramfs)))
    kernel = Kernel("6.1", "/boot/vmlinuz-6.1", tuple(builtin), tuple(on_disk), len(on_disk), initrd, default=True)
    return GuestReport("disk", OsInfo("linux", "debian", "Debian 12", "12", "x86_64"), "bios", "msdos", "grub2",
                       kernels=[kernel], cloud_init=CloudInit(cloud, (), "/etc/cloud/cloud.cfg"))


def test_cdrom_drivers_only_on_disk_are_repaired_by_guest_repair():
    r = readiness(_guest(BOOT, on_disk=("sr_mod", "cdrom", "isofs")), "kvm")
    (f,) = [f for f in r.findings if f.rule == "VMF-GUEST-041"]
    assert f.severity == "warning" and f.fixed_by == "repair"
    assert "sr_mod, cdrom, isofs" in f.message and f.location == "/boot/initrd.img-6.1"
    assert r.status == "needs-fixes"


def test_kernel_without_the_drivers_cannot_be_repaired():
    r = readiness(_guest(BOOT), "xen")
    (f,) = [f for f in r.findings if f.rule == "VMF-GUEST-041"]
    assert f.fixed_by is None and "install a kernel" in f.fix


def test_no_finding_when_usable_at_boot_or_not_needed():
    built_in = _guest(BOOT + ("sr_mod",), builtin=("cdrom", "isofs"))
    assert "VMF-GUEST-041" not in {f.rule for f in readiness(built_in, "kvm").findings}
    missing = _guest(BOOT, on_disk=("sr_mod", "cdrom", "isofs"))
    assert "VMF-GUEST-041" not in {f.rule for f in readiness(missing, "vmware").findings}   # guestinfo there
    no_cloud_init = _guest(BOOT, on_disk=("sr_mod",), cloud=False)
    assert "VMF-GUEST-041" not in {f.rule for f in readiness(no_cloud_init, "kvm").findings}
