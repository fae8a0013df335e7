"""Package and descriptor rules the samples do not exercise: several descriptors in an OVA, unreadable
and unsupported manifest lines, a certificate without a manifest, a system without hardware, and a
network-config giving one NIC two addresses."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import COT
from tests.package.helpers import files_of, make_ova
from tests.rules.builder import descriptor, write
from vmferry.errors import CertificateError, PackageError
from vmferry.package import open_package
from vmferry.validate import validate_package

VMWARE = (COT / "vmware.ovf").read_bytes()


def rules(report) -> set[str]:
    return {f.rule for f in report.findings}


def test_two_descriptors_in_one_ova(tmp_path):
    ova = make_ova(tmp_path / "x.ova", [("a.ovf", VMWARE), ("b.ovf", VMWARE)] + files_of(COT, ["input.vmdk"]))
    pkg = open_package(ova)
    assert pkg.descriptor_name == "a.ovf"
    assert "VMF-PKG-002" in {f.rule for f in pkg.findings}


def test_manifest_lines_unreadable_and_unsupported(tmp_path):
    """Each problem of the manifest is a finding of the reader; the first stops validate (exit 2): a
    manifest that cannot be read cannot vouch for anything."""
    mf = b"this is not a manifest line\nMD5(vm.ovf)= d41d8cd98f00b204e9800998ecf8427e\n"
    ova = make_ova(tmp_path / "x.ova", [("vm.ovf", (COT / "minimal.ovf").read_bytes()), ("vm.mf", mf)])
    assert {"VMF-PKG-010", "VMF-PKG-011"} <= {f.rule for f in open_package(ova).manifest_problems()}
    with pytest.raises(PackageError, match="manifest line cannot be read") as exc:
        validate_package(ova)
    assert "x.ova:vm.mf" in str(exc.value)


def test_certificate_without_manifest(tmp_path):
    ova = make_ova(tmp_path / "x.ova", [("vm.ovf", (COT / "minimal.ovf").read_bytes()),
                                        ("vm.cert", b"SHA256(vm.mf)= 00\n")])
    with pytest.raises(CertificateError, match="no manifest"):
        validate_package(ova)


def test_system_without_virtual_hardware(tmp_path):
    xml = descriptor().replace("<VirtualHardwareSection", "<Dropped").replace("</VirtualHardwareSection>",
                                                                               "</Dropped>")
    xml = xml.replace("<Dropped", '<AnnotationSection><Info>a</Info><Annotation>x</Annotation>'
                                  '</AnnotationSection><!--').replace("</Dropped>", "-->")
    report = validate_package(write(tmp_path, xml), descriptor_only=True)
    assert "VMF-HW-008" in rules(report)


def test_network_config_with_two_addresses_keeps_the_first():
    from vmferry.ovfenv.netcfg import decode_network_config

    yaml = ("network:\n  version: 2\n  ethernets:\n    eth0:\n      addresses: [192.0.2.5/24, 192.0.2.6/24]\n"
            "      gateway4: 192.0.2.1\n")
    configs, findings = decode_network_config(base64.b64encode(yaml.encode()).decode())
    assert configs[0].address == "192.0.2.5"
    assert "VMF-NETCFG-013" in {f.rule for f in findings}
