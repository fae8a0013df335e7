"""`convert --to kvm` with the disks present: qcow2 disks written from the package, the guest inspected
(here an empty disk: no OS, so the choice falls back and says why), the domain defined on libvirt."""

from __future__ import annotations

import json

from lxml import etree

from tests.conftest import COT, run_vmferry
from tests.package.helpers import files_of, make_ova
from vmferry.tools.proc import run_json


def test_ova_to_kvm_converts_disks_and_reports_uninspectable_guest(tmp_path):
    ova = make_ova(tmp_path / "in.ova", files_of(COT, ["input.ovf", "input.mf", "input.vmdk", "input.iso",
                                                       "sample_cfg.txt"]))
    out = tmp_path / "vm"
    result = run_vmferry("convert", ova, "--to", "kvm", "-o", out, "--domain-type", "qemu", "--json",
                         env={"LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}, timeout=900)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert any(f["rule"] == "VMF-KVM-003" and "no operating system" in f["message"] for f in doc["findings"])
    info = run_json(["qemu-img", "info", "--output=json", str(out / "input.qcow2")])
    assert info["format"] == "qcow2" and info["virtual-size"] == 1 << 30
    root = etree.parse(doc["domains"][0]).getroot()
    devices = [(d.get("device"), d.find("target").get("bus")) for d in root.iter("disk")]
    assert devices[0] == ("disk", "sata")                        # the source's SCSI → SATA when unknown
    assert ("cdrom", "sata") in devices                          # input.iso, and the OVF environment
    assert (out / "test-ovf-env.iso").exists() and (out / "input.iso").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ova", "vm"]


def test_check_with_disks_inspects_the_guest_and_says_when_it_cannot():
    """vmware.ovf carries an empty disk: libguestfs finds no OS, which check reports without failing."""
    result = run_vmferry("check", COT / "vmware.ovf", "--target", "kvm", "--json",
                         env={"LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}, timeout=900)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (finding,) = [f for f in doc["findings"] if f["rule"] == "VMF-GUEST-004"]
    assert "no operating system" in finding["message"] and finding["location"] == "input.vmdk"


def test_guest_command_takes_a_package_and_reads_its_boot_disk_from_the_archive(tmp_path):
    ova = make_ova(tmp_path / "in.ova", files_of(COT, ["vmware.ovf", "input.vmdk"]))
    result = run_vmferry("guest", ova, env={"LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}, timeout=900)
    assert result.returncode == 2          # an empty disk: libguestfs finds no OS, said in one line
    assert result.stderr.count("\n") == 1 and "no operating system" in result.stderr
    assert "input.qcow2" in result.stderr  # read from the OVA into a temporary qcow2, not unpacked
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ova"]
