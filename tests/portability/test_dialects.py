"""Dialect detection on every real sample, and on descriptors of producers we have no sample of, built
from their documented conventions."""

from __future__ import annotations

import pytest

from tests.conftest import COT, OVIRT, V2V
from vmferry.dialects import detect
from vmferry.ovf import Envelope

EXPECTED = {
    COT / "vmware.ovf": "vmware", COT / "input.ovf": "vmware", COT / "v0.9.ovf": "vmware",
    COT / "csr1000v.ovf": "cisco", COT / "csr1000v_2017.ovf": "cisco", COT / "iosv.ovf": "cisco",
    COT / "ubuntu.2.0.ovf": "virtualbox", COT / "minimal.ovf": "generic", COT / "invalid.ovf": "generic",
    V2V / "test-i-ova.ovf": "vmware", V2V / "test-i-ova-two-disks.ovf": "vmware",
    OVIRT / "v2v-rhv-windows.ovf": "ovirt", OVIRT / "v2v-vdsm-ovirt-rhel8.ovf": "ovirt",
    OVIRT / "engine-ova-rhel7.ovf": "ovirt", OVIRT / "export-domain-windows2022.ovf": "ovirt",
}


@pytest.mark.parametrize("path", list(EXPECTED), ids=lambda p: p.name)
def test_sample_dialect(path):
    match = detect(Envelope.from_file(path))
    assert match.name == EXPECTED[path]
    assert 0.5 <= match.confidence <= 1.0


def test_every_sample_has_a_dialect_expectation():
    from tests.conftest import ALL_SAMPLES

    assert set(ALL_SAMPLES) == set(EXPECTED)


def _envelope(family: str, extra_ns: str = "", extra: str = "", subtype: str = "") -> Envelope:
    xml = f"""<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" {extra_ns}>
  <References/>
  <VirtualSystem ovf:id="vm"><Info>x</Info>{extra}
    <VirtualHardwareSection><Info>hw</Info>
      <System><vssd:ElementName>h</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemType>{family}</vssd:VirtualSystemType></System>
      <Item><rasd:ElementName>nic</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceSubType>{subtype}</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>"""
    return Envelope.from_bytes(xml.encode())


def test_citrix_xenserver_style():
    env = _envelope("xen-3.0-unknown", 'xmlns:xenovf="http://schemas.citrix.com/ovf/envelope/1"',
                    '<xenovf:VirtualSystemOtherConfigurationData Name="HVM_boot_policy"><Value>BIOS order'
                    '</Value></xenovf:VirtualSystemOtherConfigurationData>')
    assert detect(env).name == "xen"


def test_hyperv_style():
    env = _envelope("Microsoft:Hyper-V:SubType:2", subtype="Microsoft:Hyper-V:Synthetic Ethernet Port")
    assert detect(env).name == "hyperv"


def test_ovirt_style():
    env = _envelope("ENGINE 4.1.0.0", 'xmlns:ovirt="http://www.ovirt.org/ovf"',
                    "<Origin>0</Origin><TemplateId>00000000-0000-0000-0000-000000000000</TemplateId>")
    assert detect(env).name == "ovirt"


def test_plain_dmtf_is_generic_and_vmware_family_is_vmware():
    assert detect(_envelope("dmtf-generic")).name == "generic"
    assert detect(_envelope("vmx-13", subtype="VmxNet3")).name == "vmware"


def test_inspect_json_reports_the_dialect(vmferry):
    import json

    doc = json.loads(vmferry("inspect", "--json", COT / "ubuntu.2.0.ovf").stdout)
    assert doc["dialect"]["name"] == "virtualbox" and doc["dialect"]["confidence"] > 0.9
