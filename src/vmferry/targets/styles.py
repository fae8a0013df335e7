"""Per-target OVF styles: the OVF version, namespaces, hardware family, OS id and device spellings each
consumer accepts. Data, not code paths: :data:`STYLES` is a table."""

from __future__ import annotations

from dataclasses import dataclass

from vmferry.ovf import names as N


@dataclass(frozen=True)
class OvfStyle:
    name: str
    ovf_version: str                 # "1.x" or "2.x"
    declared_version: str            # ovf:version attribute
    vendor_ns: dict[str, str]        # prefix -> URI allowed in the output
    default_family: str | None       # hardware family when the source's is not acceptable
    accepts_family: tuple[str, ...]  # prefixes of families the target takes as they are
    os_attr: str | None              # "vmw:osType" or None
    os_element: str | None           # "vbox:OSType" or None
    disk_format: str                 # default disk format short name
    nic_models: dict[str, str]       # portable model -> ResourceSubType
    nic_fallback: str | None         # ResourceSubType for a model the target lacks (None: omit)
    sata: tuple[int, str] | None     # (ResourceType, ResourceSubType) of a SATA controller
    scsi_models: dict[str, str]      # portable SCSI model -> ResourceSubType
    keep_vendor_config: bool = False  # write vmw:Config for firmware/cores


DMTF = OvfStyle(
    name="dmtf", ovf_version="1.x", declared_version="1.1", vendor_ns={}, default_family=None,
    accepts_family=("",), os_attr=None, os_element=None, disk_format="vmdk-stream",
    nic_models={"e1000": "E1000", "e1000e": "E1000e", "vmxnet3": "VmxNet3", "pcnet32": "PCNet32",
                "virtio": "virtio", "rtl8139": "rtl8139", "netvsc": "netvsc"},
    nic_fallback=None, sata=(20, "AHCI"),
    scsi_models={"lsilogic": "lsilogic", "lsisas1068": "lsilogicsas", "buslogic": "buslogic",
                 "pvscsi": "VirtualSCSI", "virtio-scsi": "virtio-scsi"})

VMWARE = OvfStyle(
    name="vmware", ovf_version="1.x", declared_version="1.0", vendor_ns={"vmw": N.VMW}, default_family="vmx-10",
    accepts_family=("vmx-",), os_attr="vmw:osType", os_element=None, disk_format="vmdk-stream",
    nic_models={"e1000": "E1000", "e1000e": "E1000e", "vmxnet3": "VmxNet3", "pcnet32": "PCNet32",
                "vmxnet2": "VmxNet2"},
    nic_fallback="E1000", sata=(20, "vmware.sata.ahci"),
    scsi_models={"lsilogic": "lsilogic", "lsisas1068": "lsilogicsas", "buslogic": "buslogic",
                 "pvscsi": "VirtualSCSI"},
    keep_vendor_config=True)

VIRTUALBOX = OvfStyle(
    name="virtualbox", ovf_version="1.x", declared_version="1.0", vendor_ns={"vbox": N.VBOX},
    default_family="virtualbox-2.2", accepts_family=("virtualbox",), os_attr=None, os_element="vbox:OSType",
    disk_format="vmdk-stream",
    nic_models={"e1000": "E1000", "pcnet32": "PCNet32", "virtio": "virtio"},
    nic_fallback="E1000", sata=(20, "AHCI"),
    scsi_models={"lsilogic": "lsilogic", "lsisas1068": "lsilogicsas", "buslogic": "buslogic"})

XEN = OvfStyle(
    name="xen", ovf_version="1.x", declared_version="1.0", vendor_ns={}, default_family="xen-3.0-unknown",
    accepts_family=("xen-", "hvm-"), os_attr=None, os_element=None, disk_format="vhd",
    nic_models={"e1000": "E1000", "rtl8139": "rtl8139", "netfront": "netfront"},
    nic_fallback="E1000", sata=None, scsi_models={"lsilogic": "lsilogic"})

STYLES = {s.name: s for s in (DMTF, VMWARE, VIRTUALBOX, XEN)}
