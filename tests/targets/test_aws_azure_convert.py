"""``convert --to aws`` and ``--to azure`` on the samples and on the project's test guest, checked with tools
that are not vmferry: qemu-img info/check/compare (format, virtual size, identical content), the fixed VHD's
footer parsed by tests/disks/test_vhd_fixed.py (the specification's fields, geometry, checksum, whole MiB)
and read by qemu's vpc driver, the import-image request against the EC2 field list and botocore's model;
the test guest converted --to azure boots in QEMU (TCG) from the written VHD; ``--upload`` against moto's
server and Azurite on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import pytest

from tests.conftest import COT, run_vmferry
from tests.disks.test_vhd_fixed import assert_fixed_vhd, compare_vpc
from tests.targets import cloud_servers
from tests.targets.test_aws_import import botocore_problems
from vmferry.targets.aws_import import problems

MIB = 1 << 20
SAMPLES = [("vmware.ovf", "input.vmdk"), ("ubuntu.2.0.ovf", "ubuntu.2.0-disk1.vmdk")]


def qemu_info(path, fmt: str) -> dict:
    return json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-f", fmt, path], check=True,
                                     capture_output=True, text=True).stdout)


def same(a, a_fmt: str, b, b_fmt: str) -> bool:
    return subprocess.run(["qemu-img", "compare", "-q", "-f", a_fmt, "-F", b_fmt, a, b]).returncode == 0


def convert(*args, timeout=900) -> dict:
    res = run_vmferry("convert", *args, "--json", timeout=timeout)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def rules_of(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in doc["findings"]:
        out.setdefault(f["rule"], []).append(f)
    return out


@pytest.mark.parametrize("fmt,qemu", [("vmdk-stream", "vmdk"), ("vhd", "vpc"), ("raw", "raw")])
@pytest.mark.parametrize("sample,disk", SAMPLES)
def test_samples_to_aws(tmp_path, sample, disk, fmt, qemu):
    out = tmp_path / "out"
    doc = convert(COT / sample, "--to", "aws", "-o", out, "--disk-format", fmt, "--no-guest",
                  "--bucket", "vm-imports", "--s3-prefix", "team/web")
    (written,) = doc["files"]
    path = out / written["href"]
    info = qemu_info(path, qemu)
    assert info["virtual-size"] == qemu_info(COT / disk, "vmdk")["virtual-size"] == written["virtual_size"]
    if qemu == "vmdk":   # qemu-img check knows VMDK (its vpc and raw drivers have no check)
        subprocess.run(["qemu-img", "check", "-q", "-f", qemu, path], check=True)
    if fmt == "vmdk-stream":   # VMware's export format: sparse extent version 3, streamOptimized
        assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
        assert int.from_bytes(path.read_bytes()[4:8], "little") == 3
    assert same(COT / disk, "vmdk", path, qemu)
    (request_doc,) = [d["href"] for d in doc["documents"] if d["href"].endswith(".import-image.json")]
    request = json.loads((out / request_doc).read_text())
    assert problems(request) == [] and botocore_problems(request) == []
    assert request["DiskContainers"] == [{"Description": request["DiskContainers"][0]["Description"],
                                          "Format": {"vmdk-stream": "VMDK", "vhd": "VHD", "raw": "RAW"}[fmt],
                                          "UserBucket": {"S3Bucket": "vm-imports",
                                                         "S3Key": f"team/web/{written['href']}"}}]
    assert request["BootMode"] == "legacy-bios"
    script = (out / request_doc.replace(".import-image.json", ".aws-import.sh")).read_text()
    assert f"s3://vm-imports/team/web/{written['href']}" in script and "--cli-input-json" in script
    assert os.access(out / request_doc.replace(".import-image.json", ".aws-import.sh"), os.X_OK)
    found = rules_of(doc)
    assert "VMF-AWS-007" in found
    if sample == "vmware.ovf":   # four NICs: one survives the import
        assert "VMF-AWS-002" in found
        assert sum(c["kind"] == "dropped" and c["what"].startswith("NIC ") for c in doc["changes"]) == 3


@pytest.mark.parametrize("sample,disk", SAMPLES)
def test_samples_to_azure(tmp_path, sample, disk):
    out = tmp_path / "out"
    doc = convert(COT / sample, "--to", "azure", "-o", out, "--no-guest")
    (written,) = doc["files"]
    vhd = out / written["href"]
    footer = assert_fixed_vhd(vhd, align=MIB)
    source_size = qemu_info(COT / disk, "vmdk")["virtual-size"]
    assert footer["current"] == -(-source_size // MIB) * MIB == written["virtual_size"]
    assert compare_vpc(vhd, COT / disk, "vmdk").returncode == 0
    (name,) = [d["href"] for d in doc["documents"] if d["href"].endswith(".azure.json")]
    settings = json.loads((out / name).read_text())
    assert settings["hyperVGeneration"] == "V1" and settings["osDisk"]["vhd"] == written["href"]
    assert "VMF-AZURE-002" in rules_of(doc)


def test_aws_ova_as_vmware_exports_it(tmp_path):
    """--ova: one OVA (descriptor first, streamOptimized VMDK, SHA256 manifest) named by the request."""
    import tarfile

    out = tmp_path / "out"
    doc = convert(COT / "vmware.ovf", "--to", "aws", "--ova", "-o", out, "--no-guest", "--bucket", "vm-imports")
    (written,) = doc["files"]
    assert written["format"] == "ova" and sorted(os.listdir(out)) == sorted(
        [written["href"], "vmw.import-image.json", "vmw.aws-import.sh", "vmw.report.json"])
    with tarfile.open(out / written["href"]) as tar:
        names = tar.getnames()
        assert names[0].endswith(".ovf") and names[-1].endswith(".mf")
        tar.extractall(tmp_path / "x", filter="data")
    for line in (tmp_path / "x" / names[-1]).read_text().splitlines():   # SHA256(name)= digest
        name, digest = line[len("SHA256("):].split(")= ")
        assert hashlib.sha256((tmp_path / "x" / name).read_bytes()).hexdigest() == digest
    vmdk = tmp_path / "x" / "input.vmdk"
    assert qemu_info(vmdk, "vmdk")["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert same(COT / "input.vmdk", "vmdk", vmdk, "vmdk")
    request = json.loads((out / "vmw.import-image.json").read_text())
    assert request["DiskContainers"][0]["Format"] == "OVA" and problems(request) == []
    assert request["DiskContainers"][0]["UserBucket"] == {"S3Bucket": "vm-imports", "S3Key": written["href"]}


def test_aws_without_a_bucket_names_a_placeholder_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("VMFERRY_AWS_BUCKET", raising=False)
    doc = convert(COT / "vmware.ovf", "--to", "aws", "-o", tmp_path / "o", "--no-guest")
    assert "VMF-AWS-008" in rules_of(doc)


def test_upload_needs_its_settings_before_anything_is_written(tmp_path, monkeypatch):
    for var in ("VMFERRY_AWS_BUCKET", "VMFERRY_AZURE_CONTAINER", "AZURE_STORAGE_CONNECTION_STRING",
                "AZURE_STORAGE_ACCOUNT_URL"):
        monkeypatch.delenv(var, raising=False)
    for target in ("aws", "azure"):
        res = run_vmferry("convert", COT / "vmware.ovf", "--to", target, "-o", tmp_path / target, "--no-guest",
                          "--upload")
        assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
        assert ("bucket" if target == "aws" else "container") in res.stderr
        assert not (tmp_path / target).exists() and os.listdir(tmp_path) == []


def test_cli_upload_to_moto(tmp_path):
    with cloud_servers.moto(tmp_path) as server:
        server.client("s3").create_bucket(Bucket="vm-imports")
        res = run_vmferry("convert", COT / "vmware.ovf", "--to", "aws", "-o", tmp_path / "o", "--no-guest",
                          "--bucket", "vm-imports", "--upload", "--endpoint-url", server.endpoint,
                          env=cloud_servers.MOTO_KEYS)
        obj = server.client("s3").get_object(Bucket="vm-imports", Key="input.vmdk")["Body"].read()
        sent = [r for r in server.requests() if b"Action=ImportImage" in r["body"]]
    # moto 5.2 implements S3 but not EC2 ImportImage: the upload happened, the import is refused by moto
    assert res.returncode == 2 and "EC2 ImportImage failed" in res.stderr and res.stderr.count("\n") == 1
    assert hashlib.sha256(obj).digest() == hashlib.sha256((tmp_path / "o" / "input.vmdk").read_bytes()).digest()
    assert len(sent) >= 1 and b"DiskContainer.1.UserBucket.S3Key=input.vmdk" in sent[0]["body"]


def test_cli_upload_to_azurite(tmp_path):
    with cloud_servers.azurite(tmp_path) as server:
        env = {"AZURE_STORAGE_CONNECTION_STRING": server.connection_string}
        res = run_vmferry("convert", COT / "vmware.ovf", "--to", "azure", "-o", tmp_path / "o2", "--no-guest",
                          "--upload", "--container", "vhds", "--json", env=env)
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        (up,) = doc["uploads"]
        blob = server.service().get_blob_client("vhds", up["blob"])
        props = blob.get_blob_properties()
        data = blob.download_blob().readall()
    vhd = tmp_path / "o2" / up["href"]
    assert props.blob_type == "PageBlob" and props.size == os.path.getsize(vhd) == up["size"]
    assert data == vhd.read_bytes()
    assert up["sent"] < props.size   # the zero ranges of the 1 GiB disk were not sent


@pytest.fixture(scope="module")
def legacy_ova(tmp_path_factory):
    from tests.guest.test_end_to_end import vmware_ova
    from tests.guestimage import build

    guest = build.build("legacy")
    return guest, vmware_ova(guest, tmp_path_factory.mktemp("legacy-ova"))


@pytest.mark.slow
def test_test_guest_to_aws(tmp_path, legacy_ova):
    guest, ova = legacy_ova
    out = tmp_path / "aws"
    # the guest as it is (its repair for EC2 is test_cloud_repair's): the same bytes, judged as they are
    doc = convert(ova, "--to", "aws", "-o", out, "--bucket", "vm-imports", "--no-repair")
    (written,) = doc["files"]
    assert same(guest.image, "raw", out / written["href"], "vmdk") and doc["repairs"] == []
    found = rules_of(doc)
    # the legacy guest as libguestfs reads it: open-vm-tools installed, ~60 MiB free on /, no nvme/ena/xen
    assert "VMF-AWS-006" in found and "VMF-AWS-005" in found and "VMF-GUEST-001" in found
    request = json.loads((out / "guest-legacy.import-image.json").read_text())
    assert request["BootMode"] == "legacy-bios" and request["Platform"] == "Linux" and problems(request) == []
    # check --target aws judges the same guest from the package (the writer's guest rules included)
    res = run_vmferry("check", ova, "--target", "aws", "--json", timeout=900)
    assert res.returncode == 1, res.stderr
    checked = json.loads(res.stdout)
    assert checked["verdict"] == "not-ready"
    assert {"VMF-AWS-005", "VMF-AWS-006", "VMF-GUEST-001"} <= {f["rule"] for f in checked["findings"]}


BOOT_TIMEOUT = 420


@pytest.mark.slow
def test_test_guest_to_azure_boots_in_qemu_from_the_vhd(tmp_path, legacy_ova):
    """The written VHD, as it is, is the boot disk of a QEMU VM (TCG): a generation 1 Azure VM boots from
    emulated IDE; QEMU has no VMBus, so the disk is on its IDE controller and the VM has no NIC (the NIC
    Azure gives, Hyper-V synthetic, has no QEMU model). QEMU reads the VHD with its vpc driver, sized by the
    footer's current size."""
    guest, ova = legacy_ova
    out = tmp_path / "azure"
    doc = convert(ova, "--to", "azure", "-o", out)   # repaired for Hyper-V by default, then booted
    (written,) = doc["files"]
    vhd = out / written["href"]
    assert_fixed_vhd(vhd, align=MIB)
    (repair,) = doc["repairs"]
    assert repair["targets"] == ["hyperv"] and any(c["file"] == "/etc/fstab" for c in repair["changes"])
    assert compare_vpc(vhd, guest.image, "raw").returncode == 1      # the converted copy was repaired
    settings = json.loads((out / "guest-legacy.azure.json").read_text())
    assert settings["hyperVGeneration"] == "V1" and settings["diskController"] == "VMBus SCSI"
    found = rules_of(doc)
    # the legacy guest has no Hyper-V modules at all: a kernel with them is needed before the repair
    (hv,) = found["VMF-AZURE-001"]
    assert hv["severity"] == "error" and "vmferry guest repair --for hyperv" in hv["fix"]
    assert settings["hypervDrivers"] == "missing"
    log = tmp_path / "console.log"
    argv = ["qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "384", "-smp", "1", "-nodefaults",
            "-display", "none", "-serial", f"file:{log}", "-no-reboot", "-nic", "none",
            "-drive", f"file={vhd},format=vpc,force_size_calc=current_size,if=ide"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            if "VMFERRY-GUEST-BOOTED" in text or "VMFERRY-ROOT-MISSING" in text:
                break
            time.sleep(1)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    text = log.read_text(errors="replace")
    assert "VMFERRY-ROOT-FOUND" in text and "VMFERRY-GUEST-BOOTED" in text, text[-3000:]
