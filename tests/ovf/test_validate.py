"""`vmferry validate` on the real samples: XSD, semantic rules, exit statuses."""

from __future__ import annotations

import json

import pytest

from tests.conftest import COT, V2V, run_vmferry
from vmferry.errors import MissingFile
from vmferry.validate import validate_package

VALID_1X = ["vmware.ovf", "input.ovf", "csr1000v.ovf", "csr1000v_2017.ovf", "iosv.ovf", "minimal.ovf"]


@pytest.mark.parametrize("name", VALID_1X)
def test_valid_cot_samples_pass_with_their_files(name):
    report = validate_package(COT / name, strict=True)
    assert report.ok, [str(f) for f in report.findings]
    assert not [f for f in report.findings if f.rule == "VMF-XSD-001"]


@pytest.mark.parametrize("name", ["test-i-ova.ovf", "test-i-ova-two-disks.ovf"])
def test_virt_v2v_descriptors_are_valid_alone(name):
    report = validate_package(V2V / name, descriptor_only=True)
    assert report.ok, [str(f) for f in report.findings]
    # with the package checks, the package is incomplete: its first missing disk is named, exit 2
    with pytest.raises(MissingFile, match="not in the package") as exc:
        validate_package(V2V / name)
    assert exc.value.path.startswith(str(V2V))


def test_input_ovf_manifest_is_verified():
    report = validate_package(COT / "input.ovf")
    assert report.files_checked == 4  # descriptor, vmdk, iso, cfg (SHA1)


def test_invalid_ovf_is_rejected_naming_each_reason():
    result = run_vmferry("validate", "--strict", "--descriptor-only", COT / "invalid.ovf")
    assert result.returncode == 1
    out = result.stdout
    assert "VMF-XSD-001" in out and "ElementName" in out        # NIC item lacks ElementName
    assert "VMF-REF-001" in out and "flash2" in out             # fileRef missing from References
    assert "VMF-REF-010" in out and "nonexistent.vmdk" in out   # HostResource not ovf:/disk/
    assert "VMF-HW-003" in out and "Parent 27" in out           # CD-ROM parent is the NIC


def test_ubuntu_virtualbox_export_schema_errors_are_reported():
    report = validate_package(COT / "ubuntu.2.0.ovf", strict=True)
    xsd = [f for f in report.findings if f.rule == "VMF-XSD-001"]
    assert xsd and any("ElementName" in f.message for f in xsd)
    assert report.files_checked == 2  # SHA256 manifest verified


def test_v09_has_no_schema_but_validates_semantically():
    report = validate_package(COT / "v0.9.ovf")
    assert report.ok
    assert any(f.rule == "VMF-XSD-002" for f in report.findings)


def test_unknown_ovf_version_is_exit_2_one_line():
    result = run_vmferry("validate", COT / "ersatz_ovf_3.0.ovf")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "envelope/3" in result.stderr


def test_validate_json_document():
    result = run_vmferry("validate", "--json", "--descriptor-only", COT / "vmware.ovf", COT / "invalid.ovf")
    assert result.returncode == 1
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["valid"] for d in docs] == [True, False]
    assert all({"rule", "severity", "message", "location"} <= set(f) for d in docs for f in d["findings"])
