"""The project's test guest (tests/guestimage, busybox + Debian kernel, virtio drivers in its initramfs)
exported as a VMware-style OVA (LSI Logic SCSI, E1000), converted with ``--to gce`` and ``--to openstack``:
the outputs checked with tools that are not vmferry (GNU tar, qemu-img), the documents against the
providers' published field lists, and the written disk BOOTED in QEMU (TCG) on the bus and with the NIC
model the written documents name."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DATA, run_vmferry
from tests.guestimage import build
from tests.targets.qemu_boot import boot
from tests.targets.test_cloud_framework import assert_glance_document
from vmferry.tools.proc import run, run_json

pytestmark = pytest.mark.slow
ENV = {"LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}
MARKS = [build.MARK_BOOTED, build.MARK_ROOT_MISSING]


@pytest.fixture(scope="module")
def guest():
    return build.build("virtio")


@pytest.fixture(scope="module")
def guest_ova(guest, tmp_path_factory):
    from tests.guest.test_end_to_end import vmware_ova

    return vmware_ova(guest, tmp_path_factory.mktemp("ova"))


def test_gce_archive_is_gnu_oldgnu_sparse_and_the_disk_boots(guest, guest_ova, tmp_path):
    out = tmp_path / "gce"
    # --no-repair: the archive's disk.raw is then byte for byte the guest (the repair is test_cloud_repair's)
    res = run_vmferry("convert", guest_ova, "--to", "gce", "-o", out, "--bucket", "vmferry-test", "--json",
                      "--no-repair", env=ENV, timeout=900)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    choice = doc["choices"][0]
    assert (choice["disk_bus_value"], choice["nic_value"]) == ("SCSI", "VIRTIO_NET")
    (archive,) = out.glob("*.tar.gz")
    # GNU tar's own listing: one member, disk.raw, a whole number of GiB, no larger than needed
    listing = run(["tar", "--list", "--verbose", "--gzip", "--file", str(archive)]).stdout.splitlines()
    assert len(listing) == 1, listing
    mode, owner, size, *_, name = listing[0].split()
    assert (mode, owner, name) == ("-rw-r--r--", "root/root", "disk.raw")
    source_size = Path(guest.image).stat().st_size
    assert int(size) % (1 << 30) == 0 and 0 <= int(size) - source_size < 1 << 30
    # the member is stored sparse in the old GNU format: header type 'S', magic "ustar  \0"
    with gzip.open(archive, "rb") as fh:
        head = fh.read(512)
    assert head[156:157] == b"S" and head[257:265] == b"ustar  \0"
    assert archive.stat().st_size < source_size   # holes are not stored
    # GNU tar extracts it (keeping holes) to the same bytes as the guest's disk
    run(["tar", "--extract", "--sparse", "--gzip", "--file", str(archive), "-C", str(tmp_path)])
    raw = tmp_path / "disk.raw"
    assert raw.stat().st_size == int(size)
    assert raw.stat().st_blocks * 512 < raw.stat().st_size      # still sparse after extraction
    run(["qemu-img", "compare", "-f", "raw", "-F", "raw", guest.image, str(raw)])
    # the image description against the Image resource's published fields
    spec = json.loads((DATA / "providers" / "gce-image.json").read_text())
    (image_doc,) = [json.loads(p.read_text()) for p in out.glob("*.image.json")]
    assert set(image_doc) <= set(spec["image_fields"])
    assert set(image_doc["rawDisk"]) <= set(spec["rawDisk_fields"])
    assert image_doc["rawDisk"]["containerType"] in spec["rawDisk_containerType"]
    assert image_doc["rawDisk"]["source"] == f"https://storage.googleapis.com/vmferry-test/{archive.name}"
    assert image_doc["architecture"] in spec["architecture"]
    assert re.match(spec["name_pattern"], image_doc["name"]) and len(image_doc["name"]) <= spec["name_max"]
    assert int(image_doc["diskSizeGb"]) == int(size) >> 30
    kinds = [f["type"] for f in image_doc["guestOsFeatures"]]
    assert set(kinds) <= set(spec["guestOsFeature_type"])
    assert "VIRTIO_SCSI_MULTIQUEUE" in kinds and "GVNIC" not in kinds   # virtio_scsi yes, gve no
    script = next(out.glob("*.gcloud.sh")).read_text()
    assert f"--source-uri=gs://${{BUCKET}}/{archive.name}" in script
    assert subprocess.run(["sh", "-n", str(next(out.glob('*.gcloud.sh')))]).returncode == 0
    # Compute Engine attaches the boot disk on virtio-scsi and gives a virtio-net NIC: it boots
    result = boot(raw, "raw", bus="scsi", nic=choice["nic_value"], until=MARKS, log=tmp_path / "gce.log")
    assert result.found == build.MARK_BOOTED, result.text[-3000:]
    assert build.MARK_ROOT_FOUND in result.text


def test_openstack_image_boots_on_the_bus_and_nic_its_properties_name(guest, guest_ova, tmp_path):
    out = tmp_path / "osk"
    res = run_vmferry("convert", guest_ova, "--to", "openstack", "-o", out, "--json", env=ENV, timeout=900)
    assert res.returncode == 0, res.stderr
    (image,) = out.glob("*.qcow2")
    info = run_json(["qemu-img", "info", "--output=json", str(image)])
    assert info["format"] == "qcow2" and info["virtual-size"] == Path(guest.image).stat().st_size
    assert run(["qemu-img", "check", "-f", "qcow2", str(image)]).returncode == 0
    # the guest repaired for kvm by default, then booted below (the repair mounts it read-write, so the
    # disk is not byte for byte the guest's: --no-repair's is, test_gce_archive_is_gnu_oldgnu_sparse...)
    (repair,) = json.loads(res.stdout)["repairs"]
    assert repair["targets"] == ["kvm"], repair
    (glance,) = [json.loads(p.read_text()) for p in out.glob("*.glance.json")]
    assert_glance_document(glance)
    props = glance["properties"]
    # the guest drives virtio (virtio_blk, virtio_net): the properties say so; it came on LSI Logic + E1000
    assert (props["hw_disk_bus"], props["hw_vif_model"]) == ("virtio", "virtio"), props
    assert props["hw_machine_type"] == "q35" and props["hw_firmware_type"] == "bios"
    assert props["hw_qemu_guest_agent"] == "yes"     # the guest carries qemu-guest-agent's files
    assert glance["min_ram"] == 384 and glance["min_disk"] == 1
    result = boot(image, "qcow2", bus=props["hw_disk_bus"], nic=props["hw_vif_model"],
                  machine=props["hw_machine_type"], until=MARKS, log=tmp_path / "osk.log")
    assert result.found == build.MARK_BOOTED, result.text[-3000:]
    assert build.MARK_ROOT_FOUND in result.text


def test_hyperv_generation_2_of_a_guest_without_hyperv_drivers_is_reported(tmp_path):
    """The legacy test guest (no hv_* drivers) exported with UEFI firmware: generation 2 boots from the
    synthetic SCSI controller and has synthetic NICs only, and the guest drives neither: both said."""
    from tests.guest.test_end_to_end import vmware_ova

    legacy = build.build("legacy")
    ova = vmware_ova(legacy, tmp_path)
    pkg = tmp_path / "pkg"
    (ovf,) = pkg.glob("*.ovf")
    ovf.write_text(ovf.read_text().replace(
        "</VirtualHardwareSection>",
        '<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/></VirtualHardwareSection>'))
    (pkg / f"{ovf.stem}.mf").unlink(missing_ok=True)
    ova.unlink()
    assert run_vmferry("pack", pkg, "-o", ova).returncode == 0
    res = run_vmferry("convert", ova, "--to", "hyperv", "-o", tmp_path / "hv", "--json", env=ENV, timeout=900)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    rules = {f["rule"]: f for f in doc["findings"]}
    assert rules["VMF-HYV-001"]["severity"] == "error" and "hv_storvsc" in rules["VMF-HYV-001"]["message"]
    assert "no network" in rules["VMF-HYV-002"]["message"]
    script = next((tmp_path / "hv").glob("*.create-vm.ps1")).read_text()
    assert "-Generation 2" in script and "-EnableSecureBoot Off" in script   # no secure boot at the source
    info = run_json(["qemu-img", "info", "--output=json", str(next((tmp_path / "hv").glob("*.vhdx")))])
    assert info["format"] == "vhdx" and info["virtual-size"] == Path(legacy.image).stat().st_size


def test_proxmox_of_the_virtio_guest_puts_its_disk_on_virtio_scsi_with_the_agent(guest_ova, tmp_path):
    from tests.targets.test_cloud_targets import qm_reading

    out = tmp_path / "pve"
    res = run_vmferry("convert", guest_ova, "--to", "proxmox", "-o", out, "--json", env=ENV, timeout=900)
    assert res.returncode == 0, res.stderr
    seen = qm_reading(next(out.glob("*.ovf")))
    assert [d["address"] for d in seen["disks"]] == ["scsi0"] and seen["ostype_id"] == "96"
    qm_set = next(line for line in next(out.glob("*.qm.sh")).read_text().splitlines() if line.startswith("qm set"))
    for part in ("--scsihw virtio-scsi-pci", "--boot order=scsi0", "--agent enabled=1", "--net0 virtio,",
                 "--ostype l26"):
        assert part in qm_set, qm_set


def test_openstack_properties_of_a_guest_without_virtio_name_sata_and_e1000(tmp_path):
    """virtio only if the guest drives it: the legacy test guest (ahci, ata_piix, e1000 in its initramfs,
    no virtio module) gets hw_disk_bus=sata and hw_vif_model=e1000, and check says it is ready after convert."""
    from tests.guest.test_end_to_end import vmware_ova

    ova = vmware_ova(build.build("legacy"), tmp_path)
    res = run_vmferry("convert", ova, "--to", "openstack", "-o", tmp_path / "osk", "--json", env=ENV, timeout=900)
    assert res.returncode == 0, res.stderr
    (glance,) = [json.loads(p.read_text()) for p in (tmp_path / "osk").glob("*.glance.json")]
    assert_glance_document(glance)
    props = glance["properties"]
    assert (props["hw_disk_bus"], props["hw_vif_model"]) == ("sata", "e1000"), props
    assert "hw_scsi_model" not in props and "hw_qemu_guest_agent" not in props   # open-vm-tools, no qemu agent
    why = json.loads(res.stdout)["choices"][0]["why"]
    assert "sata" in why and "ahci" in why
