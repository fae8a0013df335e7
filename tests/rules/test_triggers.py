"""One small descriptor per rule: each rule of the descriptor and portability catalogues fires on the
input it is about (and the rules test in conftest checks the whole catalogue is covered)."""

from __future__ import annotations

import pytest

from tests.rules.builder import CPU, DISK, IDE, MEM, descriptor, item, write
from vmferry.check import check_package
from vmferry.validate import validate_package

VMW = 'xmlns:vmw="http://www.vmware.com/schema/ovf"'
VBOX = 'xmlns:vbox="http://www.virtualbox.org/ovf/machine"'
SATA = item(20, "6", ResourceSubType="AHCI", Address="0")
SATA_DISK = item(17, "4", Parent="6", HostResource="ovf:/disk/d1", AddressOnParent="0")
PRODUCT = ('<ProductSection><Info>p</Info>{}</ProductSection>')
EFI = '<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>'
SECURE = '<vmw:Config ovf:required="false" vmw:key="uefi.secureBoot.enabled" vmw:value="true"/>'
PROFILES = ('<DeploymentOptionSection><Info>p</Info><Configuration ovf:id="a" ovf:default="true"><Label>a</Label>'
            '<Description>a</Description></Configuration><Configuration ovf:id="b" ovf:default="true"><Label>b'
            '</Label><Description>b</Description></Configuration></DeploymentOptionSection>')

# rule -> (where: "validate" or a target, descriptor keyword arguments)
CASES = {
    "VMF-OVF-001": ("validate", {"system": False}),
    "VMF-OVF-002": ("validate", {"ns": "http://schemas.dmtf.org/ovf/envelope/1/"}),
    "VMF-OVF-004": ("validate", {"version": "2.0"}),
    "VMF-REF-002": ("validate", {"refs": '<File ovf:href="../x.vmdk" ovf:id="f1"/>'}),
    "VMF-REF-005": ("validate", {"items": CPU + MEM + IDE + item(17, "4", Parent="3",
                                                                HostResource="ovf:/disk/nope")}),
    "VMF-REF-007": ("validate", {"refs": '<File ovf:href="a" ovf:id="f1"/><File ovf:href="b" ovf:id="f1"/>'}),
    "VMF-REF-008": ("validate", {"refs": '<File ovf:id="f1"/>'}),
    "VMF-REF-009": ("validate", {"refs": '<File ovf:href="d1.vmdk" ovf:id="f1" ovf:size="${size}"/>'}),
    "VMF-HW-001": ("validate", {"envelope_sections": PROFILES,
                                "items": CPU + item(3, "1", config="a", VirtualQuantity="4") +
                                item(3, "1", config="a", VirtualQuantity="8") + MEM}),
    "VMF-HW-002": ("validate", {"items": CPU + MEM + item(17, "4", Parent="99", HostResource="ovf:/disk/d1")}),
    "VMF-HW-004": ("validate", {"disks": '<Disk ovf:capacity="1" ovf:capacityAllocationUnits="furlongs" '
                                         'ovf:diskId="d1" ovf:fileRef="f1"/>'}),
    "VMF-HW-006": ("validate", {"items": CPU + item(4, "2", AllocationUnits="parsecs", VirtualQuantity="1")}),
    "VMF-HW-009": ("validate", {"items": CPU + MEM + "<Item><rasd:ElementName>x</rasd:ElementName>"
                                                     "<rasd:ResourceType>1</rasd:ResourceType></Item>"}),
    "VMF-NET-001": ("validate", {"items": CPU + MEM + item(10, "5", Connection="elsewhere")}),
    "VMF-NET-002": ("validate", {"items": CPU + MEM + item(10, "5")}),
    "VMF-PROF-001": ("validate", {"envelope_sections": PROFILES}),
    "VMF-PROF-002": ("validate", {"items": CPU + item(4, "2", config="ghost", VirtualQuantity="1")}),
    "VMF-PROP-001": ("validate", {"system_sections": PRODUCT.format(
        '<Property ovf:key="n" ovf:type="uint8" ovf:value="many"/>')}),
    "VMF-PROP-002": ("validate", {"system_sections": PRODUCT.format(
        '<Property ovf:key="n" ovf:type="string"/><Property ovf:key="n" ovf:type="string"/>')}),
    "VMF-PROP-003": ("validate", {"system_sections": PRODUCT.format('<Property ovf:type="string"/>')}),
    "VMF-VER-002": ("xen", {"ns": "http://www.vmware.com/schema/ovf/1/envelope", "version": "0.9"}),
    "VMF-FAM-003": ("vmware", {"family": ""}),
    "VMF-CPU-001": ("vmware", {"family": "vmx-04", "items": item(3, "1", VirtualQuantity="64") + MEM}),
    "VMF-MEM-001": ("vmware", {"family": "vmx-04",
                               "items": CPU + item(4, "2", AllocationUnits="byte * 2^20",
                                                   VirtualQuantity="1048576")}),
    "VMF-OS-001": ("vmware", {"os_id": "1"}),
    "VMF-OS-003": ("vmware", {"extra_ns": VMW, "os_extra": 'vmw:osType="martian64Guest"'}),
    "VMF-OS-004": ("vmware", {"extra_ns": VMW, "os_id": "74", "os_extra": 'vmw:osType="ubuntu64Guest"'}),
    "VMF-NIC-003": ("kvm", {"items": CPU + MEM + item(10, "5", Connection="net", Address="00:50:56:01:02:03")}),
    "VMF-NIC-004": ("vmware", {"items": CPU + MEM + item(10, "5", ResourceSubType="E1000")}),
    "VMF-NIC-005": ("virtualbox", {"items": CPU + MEM + "".join(item(10, str(10 + i), Connection="net")
                                                                for i in range(9))}),
    "VMF-DISK-001": ("xen", {"items": CPU + MEM + SATA + SATA_DISK}),
    "VMF-DISK-002": ("virtualbox", {"items": CPU + MEM + item(6, "6", ResourceSubType="VirtualSCSI") +
                                    item(17, "4", Parent="6", HostResource="ovf:/disk/d1")}),
    "VMF-DISK-003": ("xen", {"items": CPU + MEM + item(20, "6", ResourceSubType="vmware.nvme.controller") +
                             item(17, "4", Parent="6", HostResource="ovf:/disk/d1")}),
    "VMF-DISK-005": ("vmware", {"disks": '<Disk ovf:capacity="lots" ovf:diskId="d1" ovf:fileRef="f1"/>'}),
    "VMF-DISK-006": ("xen", {"refs": '<File ovf:href="d1.vmdk" ovf:id="f1" ovf:compression="gzip"/>'}),
    "VMF-DISK-007": ("xen", {"disks": '<Disk ovf:capacity="3" ovf:capacityAllocationUnits="byte * 2^40" '
                                      'ovf:diskId="d1" ovf:fileRef="f1" ovf:format="http://www.vmware.com/'
                                      'interfaces/specifications/vmdk.html#streamOptimized"/>'}),
    "VMF-DISK-008": ("vmware", {"disks": '<Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30" '
                                         'ovf:diskId="d1"/>'}),
    "VMF-DISK-009": ("vmware", {"items": CPU + MEM + SATA + SATA_DISK}),
    "VMF-FW-001": ("xen", {"extra_ns": VMW, "items": CPU + MEM + IDE + DISK + EFI}),
    "VMF-FW-002": ("virtualbox", {"extra_ns": VMW, "items": CPU + MEM + IDE + DISK + EFI + SECURE}),
    "VMF-DEV-002": ("kvm", {"items": CPU + MEM + item(14, "7")}),
    "VMF-DEV-003": ("xen", {"items": CPU + MEM + item(35, "7", ResourceSubType="ensoniq1371")}),
    "VMF-PROP-011": ("kvm", {"system_sections": PRODUCT.format(
        '<Property ovf:key="pw" ovf:type="string" ovf:password="true" ovf:value=""/>')}),
    "VMF-PROP-012": ("kvm", {"hw_attrs": 'ovf:transport="com.vmware.guestInfo"'}),
    "VMF-PROF-010": ("xen", {"envelope_sections": PROFILES}),
    "VMF-COLL-001": ("virtualbox", {"collection": ""}),
    "VMF-START-001": ("vmware", {"extra_ns": 'xmlns:xen="http://schemas.citrix.com/ovf/envelope/1"',
                                 "collection": '<StartupSection><Info>s</Info><Item ovf:id="vm" ovf:order="1" '
                                               'xen:delay="5"/></StartupSection>'}),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires(tmp_path, rule):
    where, kwargs = CASES[rule]
    path = write(tmp_path, descriptor(**kwargs))
    if where == "validate":
        findings = validate_package(path, descriptor_only=True).findings
    else:
        findings = check_package(path, where, descriptor_only=True, guest=False).findings
    assert rule in {f.rule for f in findings}, [str(f) for f in findings]


def test_a_clean_descriptor_has_only_errors_that_convert_fixes(tmp_path):
    path = write(tmp_path, descriptor())
    assert validate_package(path, descriptor_only=True).ok
    assert check_package(path, "vmware", descriptor_only=True, guest=False).portable
    for target in ("dmtf", "virtualbox", "xen", "kvm"):
        result = check_package(path, target, descriptor_only=True, guest=False)
        assert all(f.fixed_by == "convert" for f in result.findings if f.severity == "error"), \
            [str(f) for f in result.findings]
        assert result.portable
