"""`check` answers "will it work after `convert`": ready as is (exit 0), ready after the fixes convert
applies (exit 0, listed), not ready (exit 1); each finding says as data who fixes it."""

from __future__ import annotations

import json
from dataclasses import replace

from tests.conftest import COT, run_vmferry
from tests.rules.builder import CPU, MEM, descriptor, item, write
from vmferry.check import judged_findings
from vmferry.findings import verdict
from vmferry.guest.model import DiskName, GuestReport, Initramfs, Kernel, OsInfo
from vmferry.portable import PortableVM


def _check(path, target, *extra):
    got = run_vmferry("check", path, "--target", target, "--descriptor-only", *extra)
    return got.returncode, got.stdout


def test_ready_as_is():
    code, out = _check(COT / "vmware.ovf", "vmware")
    assert code == 0 and out.splitlines()[0].endswith("ready for vmware as is (dialect vmware)")
    code, out = _check(COT / "vmware.ovf", "vmware", "--json")
    assert json.loads(out)["verdict"] == "ready" and out.count("\n") == 1


def test_ready_after_the_fixes_convert_applies(tmp_path):
    code, out = _check(COT / "ubuntu.2.0.ovf", "vmware")
    assert code == 0
    assert "ready for vmware after the fixes 'vmferry convert' applies" in out.splitlines()[0]
    fixed, left = out.split("left to you")
    assert "VMF-FAM-001" in fixed and "VMF-VER-001" in fixed and "VMF-OS-005" in left
    code, out = _check(COT / "ubuntu.2.0.ovf", "vmware", "--json")
    doc = json.loads(out)
    assert (doc["verdict"], doc["portable"]) == ("ready-after-convert", True)
    errors = [f for f in doc["findings"] if f["severity"] == "error"]
    assert errors and all(f["fixed_by"] == "convert" for f in errors)
    # and convert really does it
    conv = run_vmferry("convert", COT / "ubuntu.2.0.ovf", "--to", "vmware", "-o", tmp_path / "out", "--descriptor-only")
    assert conv.returncode == 0, conv.stderr
    code, out = _check(next((tmp_path / "out").glob("*.ovf")), "vmware", "--json")
    assert code == 0 and not [f for f in json.loads(out)["findings"] if f["severity"] == "error"]


def test_not_ready_when_an_error_is_left_to_the_user(tmp_path):
    path = write(tmp_path, descriptor(items=CPU + MEM + "".join(item(10, str(10 + i), Connection="net")
                                                                 for i in range(9))))
    code, out = _check(path, "virtualbox")
    assert code == 1 and "NOT ready for virtualbox" in out.splitlines()[0] and "VMF-NIC-005" in out
    code, out = _check(path, "virtualbox", "--json")
    doc = json.loads(out)
    assert doc["verdict"] == "not-ready" and doc["portable"] is False
    conv = run_vmferry("convert", path, "--to", "virtualbox", "-o", tmp_path / "out", "--descriptor-only")
    assert conv.returncode == 2 and "VMF-NIC-005" in conv.stderr      # convert refuses what check said


def _legacy_guest(drivers) -> GuestReport:
    initrd = Initramfs("/boot/initrd.img-6.1", "6.1", tuple(sorted(drivers)), tuple(sorted(drivers)))
    kernel = Kernel("6.1", "/boot/vmlinuz-6.1", (), ("e1000", "vmxnet3"), 2, initrd, default=True)
    return GuestReport("disk", OsInfo("linux", "debian", "Debian 12", "12", "x86_64"), "bios", "msdos", "grub2",
                       kernels=[kernel], disk_names=[DiskName("/boot/grub/grub.cfg", "root=", "/dev/sda1", "device")])


def test_a_guest_convert_moves_to_sata_is_ready_after_convert():
    """The guest lacks virtio and boots root=/dev/sda1: virtio would not boot, SATA (convert's choice) does."""
    vm = PortableVM("vm")
    findings = judged_findings(_legacy_guest({"ahci", "sd_mod", "mptspi", "vmxnet3"}), vm, "kvm", "disk.qcow2")
    by_rule = {f.rule: f for f in findings}
    assert by_rule["VMF-GUEST-001"].fixed_by == "convert" and "sata" in by_rule["VMF-GUEST-001"].fix
    assert by_rule["VMF-GUEST-010"].fixed_by == "convert"
    assert "virtio" in by_rule["VMF-GUEST-001"].message
    assert verdict(findings) == "ready-after-convert"
    stuck = judged_findings(_legacy_guest({"mptspi", "vmxnet3"}), vm, "kvm", "disk.qcow2")
    assert verdict(stuck) == "not-ready"
    assert all(f.fixed_by is None for f in stuck if f.rule == "VMF-GUEST-001")


def test_what_guest_repair_fixes_counts_as_fixed_where_convert_repairs():
    """VMF-GUEST-041 (sr_mod/cdrom/isofs only on disk) is repaired by guest repair, which convert --to kvm runs."""
    from vmferry.check import CheckResult
    from vmferry.guest.model import CloudInit
    from vmferry.guest.readiness import readiness

    guest = _legacy_guest({"virtio_pci", "virtio_blk", "virtio_net", "ahci", "sd_mod"})
    guest.disk_names = []
    guest.cloud_init = CloudInit(True, (), "/etc/cloud/cloud.cfg")
    guest.kernels[0] = Kernel("6.1", "/boot/vmlinuz-6.1", (), ("sr_mod", "cdrom", "isofs", "virtio_net"), 4,
                              guest.kernels[0].initramfs, default=True)
    kvm = CheckResult("p", "kvm", None, readiness(guest, "kvm").findings)
    assert [f.rule for f in kvm.fixes] == ["VMF-GUEST-041"] and kvm.verdict == "ready-after-convert"
    xen = CheckResult("p", "xen", None, [f for f in readiness(guest, "xen").findings if f.rule == "VMF-GUEST-041"])
    assert xen.fixes == [] and xen.verdict == "ready"          # convert --to xen does not repair: left to you


def test_a_guest_whose_virtio_drivers_are_only_on_disk_is_repaired_not_moved_to_sata():
    """virtio_blk/virtio_pci are modules on disk but not in the initramfs, and root=/dev/sda1: convert --to
    kvm repairs both (guest repair), so the findings stand on virtio, each fixed by repair."""
    guest = _legacy_guest({"ahci", "sd_mod", "mptspi", "vmxnet3"})
    guest.kernels[0] = replace(guest.kernels[0], modules=("virtio_pci", "virtio_blk", "virtio_net", "e1000"))
    findings = judged_findings(guest, PortableVM("vm"), "kvm", "disk.qcow2")
    by_rule = {f.rule: f for f in findings}
    assert by_rule["VMF-GUEST-001"].fixed_by == "repair" and "virtio" in by_rule["VMF-GUEST-001"].message
    assert by_rule["VMF-GUEST-010"].fixed_by == "repair"
    assert verdict(findings, {"convert", "repair"}) == "ready-after-convert"
    assert verdict(findings, {"convert"}) == "not-ready"      # where convert does not repair
