"""Issue 5 end to end: a real Linux guest packed by vmferry as a VMware-style OVA (streamOptimized
VMDK on an LSI Logic SCSI controller, an E1000 NIC, its IP address as a VMware vApp property) is
converted with `vmferry convert --to kvm` and started with `vmferry deploy --start` on a private real
libvirtd (QEMU under TCG); its console shows that it booted and read the IP from its OVF environment.

The failure mode too: the same guest built without virtio drivers is reported by `vmferry check
--target kvm` as "will not boot" naming the missing driver, really does not boot when forced onto
virtio, and is put on SATA by `convert` on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import TRIGGERED, run_vmferry
from tests.guestimage import build
from vmferry.tools.libvirt import connect, wait_console

pytestmark = pytest.mark.slow
IP = "10.9.8.7"
BOOT_TIMEOUT = 180

OVF = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="build-vmferry-test" xmlns="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:vmw="http://www.vmware.com/schema/ovf"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References><File ovf:href="guest.vmdk" ovf:id="file1"/></References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:capacity="{capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1"
      ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection><Info>networks</Info><Network ovf:name="VM Network"><Description>lan</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}"><Info>test guest</Info><Name>{name}</Name>
    <ProductSection><Info>vApp properties</Info><Product>vmferry test guest</Product>
      <Property ovf:key="ip0" ovf:type="string" ovf:userConfigurable="true" ovf:value="{ip}">
        <Label>IP address of eth0</Label></Property>
      <Property ovf:key="netmask0" ovf:type="string" ovf:userConfigurable="true" ovf:value="255.255.255.0"/>
    </ProductSection>
    <OperatingSystemSection ovf:id="101" vmw:osType="debian12_64Guest"><Info>os</Info></OperatingSystemSection>
    <VirtualHardwareSection ovf:transport="iso com.vmware.guestInfo"><Info>hw</Info>
      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-10</vssd:VirtualSystemType></System>
      <Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:ElementName>1 CPU</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>384 MB</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>384</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>0</rasd:Address><rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>7</rasd:AddressOnParent><rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection><rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceSubType>E1000</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""


def vmware_ova(guest: build.BuiltGuest, work: Path) -> Path:
    """The guest as VMware would export it, made with vmferry's own disk writer and packer."""
    pkg = work / "pkg"
    pkg.mkdir()
    res = run_vmferry("disk", "convert", guest.image, "-O", "vmdk-stream", "-o", pkg / "guest.vmdk")
    assert res.returncode == 0, res.stderr
    name = f"guest-{guest.variant}"
    capacity = os.path.getsize(guest.image)
    (pkg / f"{name}.ovf").write_text(OVF.format(name=name, capacity=capacity, ip=IP))
    ova = work / f"{name}.ova"
    res = run_vmferry("pack", pkg, "-o", ova)
    assert res.returncode == 0, res.stderr
    return ova


def own_tree(daemon, top: Path) -> None:
    for root, _dirs, files in os.walk(top):
        daemon.own(Path(root))
        for f in files:
            daemon.own(Path(root) / f)


def deploy(daemon, out: Path, until: list[str]):
    own_tree(daemon, out)
    (xml,) = out.glob("*.xml")
    log = Path(etree.parse(str(xml)).find("devices/serial/log").get("file"))
    res = run_vmferry("deploy", out, "--connect", daemon.uri, "--start", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    with connect(daemon.uri) as conn:
        try:
            return wait_console(log, until, BOOT_TIMEOUT, stop_when=lambda: not conn.info(info["name"]).active)
        finally:
            conn.undefine(info["name"])


@pytest.fixture(scope="module")
def ovas(guests, libvirtd):
    out = {}
    for variant in ("virtio", "legacy"):
        work = libvirtd.workdir / "e2e" / variant
        work.mkdir(parents=True)
        out[variant] = vmware_ova(guests[variant], work)
    return out


def test_vmware_ova_converted_by_vmferry_boots_on_kvm_and_reads_its_ip(ovas, libvirtd):
    ova = ovas["virtio"]
    assert json.loads(run_vmferry("inspect", "--json", ova).stdout)["dialect"]["name"] == "vmware"
    out = libvirtd.workdir / "e2e" / "virtio-kvm"
    res = run_vmferry("convert", ova, "--to", "kvm", "-o", out, "--domain-type", "qemu",
                      "--network-map", "VM Network=user", "--json", timeout=900)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["choices"][0]["disk_bus"] == "virtio"        # the inspected guest has virtio_blk at boot
    result = deploy(libvirtd, out, [build.MARK_IP, build.MARK_ROOT_MISSING])
    assert result.found == build.MARK_IP, result.text[-3000:]
    assert build.MARK_ROOT_FOUND in result.text and build.MARK_BOOTED in result.text
    assert f"{build.MARK_IP} {IP}" in result.text


def test_guest_without_virtio_is_caught_and_really_does_not_boot_on_virtio(ovas, libvirtd):
    ova = ovas["legacy"]
    # check and an unforced convert inspect the guest: run them side by side (two appliances)
    env = {k: v for k, v in os.environ.items() if k != "VMFERRY_DEBUG"}
    auto_out = libvirtd.workdir / "e2e" / "legacy-auto"
    check = subprocess.Popen([sys.executable, "-m", "vmferry", "check", str(ova), "--target", "kvm", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    auto = run_vmferry("convert", ova, "--to", "kvm", "-o", auto_out, "--domain-type", "qemu",
                       "--network-map", "VM Network=user", "--json", timeout=900)
    stdout, stderr = check.communicate(timeout=900)
    TRIGGERED.update(f["rule"] for f in json.loads(stdout)["findings"])
    # virtio would not boot it, and check says so; convert puts the disk on SATA, so it is ready after convert
    assert check.returncode == 0, stderr
    doc = json.loads(stdout)
    assert (doc["verdict"], doc["portable"]) == ("ready-after-convert", True)
    fatal = [f for f in doc["findings"] if f["rule"] == "VMF-GUEST-001"]
    assert fatal and "will not boot" in fatal[0]["message"] and "virtio_blk" in fatal[0]["message"]
    assert fatal[0]["fixed_by"] == "convert" and "sata" in fatal[0]["fix"]
    assert auto.returncode == 0, auto.stderr
    assert json.loads(auto.stdout)["choices"][0]["disk_bus"] == "sata"    # convert avoids it on its own
    forced = libvirtd.workdir / "e2e" / "legacy-virtio"
    res = run_vmferry("convert", ova, "--to", "kvm", "-o", forced, "--domain-type", "qemu", "--no-guest",
                      "--disk-bus", "virtio", "--network-map", "VM Network=user", "--json", timeout=900)
    assert res.returncode == 0, res.stderr
    result = deploy(libvirtd, forced, [build.MARK_ROOT_MISSING, build.MARK_BOOTED])
    assert result.found == build.MARK_ROOT_MISSING, result.text[-3000:]
    assert build.MARK_BOOTED not in result.text
    result = deploy(libvirtd, auto_out, [build.MARK_IP, build.MARK_ROOT_MISSING])
    assert result.found == build.MARK_IP, result.text[-3000:]
