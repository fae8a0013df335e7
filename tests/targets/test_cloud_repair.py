"""Cloud converters repair the converted guest by default, as ``convert --to kvm`` does (issue 15 +
guest repair): the project's legacy test guest (tests/guestimage: root named /dev/sda1 in fstab, eth0
bound by name, open-vm-tools units, VMware's and legacy drivers in its initramfs) exported as VMware
does, converted with ``--to openstack`` (repair for kvm, written in place in the qcow2) and ``--to aws``
(repair for EC2; its default streamOptimized VMDK is repaired as a raw copy and written again). The
written disks are then read with libguestfs' own guestfish and qemu-img, not with vmferry; the package
is unchanged (``--no-repair`` writes the guest as it came: test_aws_azure_convert, test_cloud_boot)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_vmferry
from tests.guestimage import build

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
ENV = {"LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}


@pytest.fixture(scope="module")
def legacy_ova(tmp_path_factory) -> Path:
    from tests.guest.test_end_to_end import vmware_ova

    return vmware_ova(build.build("legacy"), tmp_path_factory.mktemp("legacy"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def guest_files(image: Path, fmt: str, *paths: str) -> dict[str, str]:
    """Files of the guest on ``image`` read by guestfish (libguestfs' own shell), read-only."""
    script = "".join(f"echo ==={p}===\n-cat {p}\n-readlink {p}\n" for p in paths)
    res = subprocess.run(["guestfish", "--ro", "--format=" + fmt, "-a", str(image), "-i"], input=script,
                         capture_output=True, text=True, env={**__import__("os").environ, **ENV}, timeout=600)
    assert res.returncode == 0, res.stderr
    out, current = {}, None
    for line in res.stdout.splitlines():
        if line.startswith("===") and line.endswith("==="):
            current = line.strip("=")
            out[current] = ""
        elif current:
            out[current] += line + "\n"
    return out


def converted(ova: Path, target: str, out: Path, *extra: str) -> dict:
    res = run_vmferry("convert", ova, "--to", target, "-o", out, "--json", *extra, env=ENV, timeout=1200)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_openstack_repairs_the_converted_qcow2_for_kvm_and_leaves_the_package(legacy_ova, tmp_path):
    before = sha256(legacy_ova)
    doc = converted(legacy_ova, "openstack", tmp_path / "osk")
    assert sha256(legacy_ova) == before                       # the package is never the one repaired
    (repair,) = doc["repairs"]
    assert repair["targets"] == ["kvm"] and repair["source"] == ["vmware"] and repair["image"].endswith(".qcow2")
    changed = {c["file"]: c["reason"] for c in repair["changes"]}
    assert "/etc/fstab" in changed and "/etc/systemd/system/open-vm-tools.service" in changed, changed
    assert {c["what"] for c in doc["changes"] if c["kind"] == "repaired"} >= {"guest /etc/fstab"}
    # eth0 is bound by name and OpenStack gives the NIC a MAC of its own: said, not guessed
    (mac,) = [f for f in doc["findings"] if f["rule"] == "VMF-CLOUD-007"]
    assert "eth0" in mac["message"] and "DHCP" in mac["fix"], mac
    # the repaired guest is what the properties were chosen from: no virtio module exists in its kernel
    (glance,) = [json.loads(p.read_text()) for p in (tmp_path / "osk").glob("*.glance.json")]
    assert (glance["properties"]["hw_disk_bus"], glance["properties"]["hw_vif_model"]) == ("sata", "e1000")
    (disk,) = (tmp_path / "osk").glob("*.qcow2")
    subprocess.run(["qemu-img", "check", str(disk)], check=True, capture_output=True)
    files = guest_files(disk, "qcow2", "/etc/fstab", "/etc/systemd/system/open-vm-tools.service")
    assert files["/etc/fstab"].startswith("UUID=") and "/dev/sda1" not in files["/etc/fstab"], files
    assert "/dev/null" in files["/etc/systemd/system/open-vm-tools.service"], files
    assert not list((tmp_path / "osk").glob(".*"))            # nothing of the work left beside the output


def test_aws_repairs_its_stream_vmdk_through_a_raw_copy(legacy_ova, tmp_path):
    doc = converted(legacy_ova, "aws", tmp_path / "aws", "--bucket", "b")
    (repair,) = doc["repairs"]
    assert repair["targets"] == ["aws"] and any(c["file"] == "/etc/fstab" for c in repair["changes"])
    (vmdk,) = (tmp_path / "aws").glob("*.vmdk")
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(vmdk)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "vmdk" and info["format-specific"]["data"]["create-type"] == "streamOptimized"
    subprocess.run(["qemu-img", "check", str(vmdk)], check=True, capture_output=True)
    assert [p.name for p in (tmp_path / "aws").iterdir() if p.name.startswith(".")] == []   # raw copy gone
    assert guest_files(vmdk, "vmdk", "/etc/fstab")["/etc/fstab"].startswith("UUID=")
    # not the guest as it came (--no-repair writes that, byte for byte: test_aws_azure_convert's
    # test_test_guest_to_aws)
    differs = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "vmdk", str(build.build("legacy").image),
                              str(vmdk)], capture_output=True)
    assert differs.returncode == 1, differs.stdout
