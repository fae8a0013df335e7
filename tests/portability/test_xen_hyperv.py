"""Citrix XenServer/XenCenter and Hyper-V conventions with a portable meaning, on descriptors built as
their writers write them (no sample of either is public): XenCenter puts the VM's XenAPI fields in
``xenovf:VirtualSystemOtherConfigurationData Name="..."`` elements of the VirtualHardwareSection whose
VirtualSystemType starts with ``xen`` or ``hvm`` (XenAdmin ``OVF.AddOtherSystemSettingData``); Hyper-V
names its generation in the VirtualSystemType (``Microsoft:Hyper-V:SubType:2`` = generation 2, UEFI)."""

from __future__ import annotations

from lxml import etree

from tests.conftest import run_vmferry
from vmferry.dialects import detect, read_package
from vmferry.ovf import Envelope


def _descriptor(family: str, config: dict[str, str] | None = None, nic: str = "", ctrl: str = "") -> bytes:
    data = "".join(f'<xenovf:VirtualSystemOtherConfigurationData ovf:required="false" Name="{k}">'
                   f"<xenovf:Value>{v}</xenovf:Value></xenovf:VirtualSystemOtherConfigurationData>"
                   for k, v in (config or {}).items())
    return f"""<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
  xmlns:xenovf="http://schemas.citrix.com/ovf/envelope/1">
  <References/>
  <DiskSection><Info>disks</Info>
    <Disk ovf:diskId="d1" ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^30"/></DiskSection>
  <NetworkSection><Info>nets</Info><Network ovf:name="lan"><Description>lan</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="vm"><Info>x</Info>
    <VirtualHardwareSection><Info>hw</Info>
      <System><vssd:ElementName>h</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemType>{family}</vssd:VirtualSystemType></System>
      <Item><rasd:ElementName>2 CPU</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>mem</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>2048</rasd:VirtualQuantity></Item>
      <Item><rasd:ElementName>ctrl</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>{ctrl}</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:ElementName>disk</rasd:ElementName><rasd:HostResource>ovf:/disk/d1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:Connection>lan</rasd:Connection><rasd:ElementName>nic</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceSubType>{nic}</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType></Item>
      {data}
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>""".encode()


def _vm(xml: bytes):
    env = Envelope.from_bytes(xml)
    return detect(env).name, read_package(env).systems[0]


def test_xenserver_uefi_and_secure_boot_are_read():
    dialect, vm = _vm(_descriptor("hvm-3.0-unknown", {
        "HVM_boot_policy": "BIOS order", "HVM_boot_params": "order=dc;firmware=uefi",
        "platform": "nx=true;acpi=1;apic=true;pae=true;viridian=true;secureboot=true"}))
    assert dialect == "xen"
    assert (vm.firmware.kind, vm.firmware.secure_boot) == ("efi", True)
    # the platform flags with no portable meaning are listed, not lost silently
    assert [n.what for n in vm.not_portable if n.origin == "xen"] == ["xenovf platform"]


def test_xenserver_bios_hvm_guest_stays_bios():
    _, vm = _vm(_descriptor("hvm-3.0-unknown", {"HVM_boot_policy": "BIOS order", "HVM_boot_params": "order=dc"}))
    assert (vm.firmware.kind, vm.firmware.secure_boot) == ("bios", False)
    assert not any("paravirtualised" in n.detail for n in vm.not_portable)


def test_xenserver_pv_guest_is_named():
    _, vm = _vm(_descriptor("xen-3.0-unknown", {"HVM_boot_policy": "", "PV_bootloader": "pygrub",
                                                 "PV_args": "console=hvc0"}))
    pv = [n for n in vm.not_portable if "paravirtualised" in n.detail]
    assert len(pv) == 1 and pv[0].origin == "xen"
    assert {n.what for n in vm.not_portable} >= {"xenovf PV_bootloader", "xenovf PV_args"}
    assert vm.hardware_family == ["xen-3.0-unknown"]


def test_hyperv_generation_2_is_uefi_with_its_synthetic_devices(tmp_path):
    xml = _descriptor("Microsoft:Hyper-V:SubType:2", nic="Microsoft:Hyper-V:Synthetic Ethernet Port",
                      ctrl="Microsoft:Hyper-V:Synthetic SCSI Controller")
    dialect, vm = _vm(xml)
    assert dialect == "hyperv"
    assert vm.firmware.kind == "efi"
    assert [n.model for n in vm.nics] == ["netvsc"]
    assert [(c.kind, c.model) for c in vm.controllers] == [("scsi", "storvsc")]
    # through the KVM target: a UEFI domain, and a NIC model QEMU has
    src = tmp_path / "hv.ovf"
    src.write_bytes(xml)
    result = run_vmferry("convert", src, "--to", "kvm", "-o", tmp_path / "vm", "--descriptor-only", "--no-guest")
    assert result.returncode == 0, result.stderr
    domain = etree.parse(str(next((tmp_path / "vm").glob("*.xml"))))
    assert domain.find("os").get("firmware") == "efi"
    assert domain.find("devices/interface/model").get("type") in ("e1000", "virtio", "e1000e")


def test_hyperv_generation_1_is_bios():
    _, vm = _vm(_descriptor("Microsoft:Hyper-V:SubType:1", ctrl="Microsoft:Hyper-V:Synthetic SCSI Controller"))
    assert vm.firmware.kind == "bios"
