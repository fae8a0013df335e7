"""``vmferry guest --json`` on the real test guests lists exactly what the builder put in them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guestimage import build
from vmferry.guest.kmod import KCONFIG, WATCHED

pytestmark = pytest.mark.slow


def _kernel(doc: dict) -> dict:
    kernels = doc["report"]["kernels"]
    assert len(kernels) == 1 and kernels[0]["default"]
    return kernels[0]


def _config_builtin(guest: build.BuiltGuest) -> list[str]:
    """Watched drivers the Debian kernel config builds in, read independently from the package."""
    extract = build.cache_dir() / "extract" / Path(guest.kernel_package).stem
    config = (extract / "boot" / f"config-{guest.kernel_version}").read_text()
    return sorted({KCONFIG[k] for line in config.splitlines() for k, _, v in [line.partition("=")]
                   if k in KCONFIG and v == "y"})


@pytest.mark.parametrize("variant", ["virtio", "legacy"])
def test_drivers_and_tools_are_exactly_what_was_built(variant, request):
    guest = request.getfixturevalue(f"guest_{variant}")
    _, doc = request.getfixturevalue(f"inspected_{variant}")
    kernel = _kernel(doc)
    assert kernel["version"] == guest.kernel_version
    assert kernel["initramfs"]["path"] == f"/boot/initrd.img-{guest.kernel_version}"
    assert kernel["initramfs"]["kernel_version"] == guest.kernel_version
    assert kernel["initramfs"]["modules"] == guest.initramfs_modules
    assert kernel["initramfs"]["drivers"] == sorted(set(guest.initramfs_modules) & set(WATCHED))
    assert kernel["modules"] == sorted(set(guest.disk_modules) & set(WATCHED))
    assert kernel["module_count"] == len(guest.disk_modules)
    assert kernel["builtin"] == _config_builtin(guest)
    assert [t["name"] for t in doc["report"]["tools"]] == guest.tools
    assert all(t["evidence"].startswith("package ") for t in doc["report"]["tools"])


@pytest.mark.parametrize("variant", ["virtio", "legacy"])
def test_os_boot_and_configuration(variant, request):
    guest = request.getfixturevalue(f"guest_{variant}")
    _, doc = request.getfixturevalue(f"inspected_{variant}")
    report = doc["report"]
    assert report["os"]["type"] == "linux" and report["os"]["arch"] == "x86_64"
    assert report["os"]["os_release_id"] == "vmferry-testguest"
    assert report["os"]["hostname"] == f"vmferry-{variant}"
    assert (report["firmware"], report["partition_table"], report["bootloader"]) == ("bios", "msdos", "extlinux")
    names = {(d["where"], d["mountpoint"]): (d["spec"], d["style"]) for d in report["disk_names"]}
    assert names[("/boot/extlinux/extlinux.conf", "root=")] == (f"UUID={guest.root_uuid}", "uuid")
    expected_root = (f"UUID={guest.root_uuid}", "uuid") if guest.fstab_by == "uuid" else ("/dev/sda1", "device")
    assert names[("/etc/fstab", "/")] == expected_root
    macs = [n for n in report["network"] if n["kind"] == "mac"]
    assert [(m["interface"], m["mac"]) for m in macs] == ([("eth0", build.LEGACY_MAC)] if guest.mac_bound else [])
    assert report["cloud_init"] is None


def test_virtio_guest_is_ready_for_kvm(inspected_virtio):
    code, doc = inspected_virtio
    assert code == 0  # no --target: the matrix is informational
    kvm = doc["readiness"]["kvm"]
    assert (kvm["status"], kvm["bus"], kvm["nic"]) == ("ready", "virtio", "virtio")
    assert kvm["findings"] == []
    assert doc["readiness"]["vmware"]["status"] == "ready"
    xen = doc["readiness"]["xen"]
    assert xen["status"] == "will-not-boot"
    assert "xen_blkfront" in xen["findings"][0]["message"] and "ide" in xen["findings"][0]["fix"]


def test_guest_without_virtio_will_not_boot_on_kvm(inspected_legacy, guest_legacy):
    code, doc = inspected_legacy
    assert code == 1  # --target given and some target will not boot
    kvm = doc["readiness"]["kvm"]
    assert kvm["status"] == "will-not-boot"
    first = kvm["findings"][0]
    assert first["rule"] == "VMF-GUEST-001" and first["severity"] == "error"
    assert first["message"].startswith("will not boot: ")
    assert first["location"] == f"/boot/initrd.img-{guest_legacy.kernel_version}"
    assert "virtio_blk" in first["message"] and "virtio_pci" in first["message"]
    assert "sata" in first["fix"]  # the guest has ahci: the fallback is named
    rules = {f["rule"] for f in kvm["findings"]}
    assert {"VMF-GUEST-011", "VMF-GUEST-020", "VMF-GUEST-021", "VMF-GUEST-032"} <= rules
    vmware = doc["readiness"]["vmware"]
    assert vmware["status"] == "ready"                  # MAC kept: 021 is a note
    assert [f["rule"] for f in vmware["findings"] if f["severity"] != "info"] == []   # MAC kept: 021 is a note
