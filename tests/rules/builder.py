"""Build small OVF descriptors that exercise one rule each (a real file on disk, read by vmferry)."""

from __future__ import annotations

from pathlib import Path

OVF1 = "http://schemas.dmtf.org/ovf/envelope/1"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"


def item(rt: int, iid: str, *, name: str | None = None, config: str | None = None, **props) -> str:
    props = {"ElementName": name or f"item{iid}", "InstanceID": iid, "ResourceType": str(rt), **props}
    body = "".join(f"<rasd:{k}>{v}</rasd:{k}>" for k, v in sorted(props.items()) for v in
                   (v if isinstance(v, list) else [v]))
    attr = f' ovf:configuration="{config}"' if config else ""
    return f"<Item{attr}>{body}</Item>"


CPU = item(3, "1", VirtualQuantity="2")
MEM = item(4, "2", AllocationUnits="byte * 2^20", VirtualQuantity="1024")
IDE = item(5, "3", Address="0")
DISK = item(17, "4", Parent="3", HostResource="ovf:/disk/d1", AddressOnParent="0")
NIC = item(10, "5", Connection="net", ResourceSubType="E1000")


def descriptor(*, items: str | None = None, family: str = "vmx-10", os_id: str | None = "94",
               os_extra: str = "", refs: str = '<File ovf:href="d1.vmdk" ovf:id="f1" ovf:size="1024"/>',
               disks: str = '<Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="d1" '
                            'ovf:fileRef="f1"/>',
               networks: str = '<Network ovf:name="net"><Description>n</Description></Network>',
               envelope_sections: str = "", system_sections: str = "", ns: str = OVF1, version: str = "1.0",
               extra_ns: str = "", hw_attrs: str = "", system: bool = True, collection: str | None = None) -> str:
    items = items if items is not None else CPU + MEM + IDE + DISK + NIC
    os_section = (f'<OperatingSystemSection ovf:id="{os_id}" {os_extra}><Info>os</Info></OperatingSystemSection>'
                  if os_id is not None else "")
    fam = f"<vssd:VirtualSystemType>{family}</vssd:VirtualSystemType>" if family else ""
    vs = (f'<VirtualSystem ovf:id="vm"><Info>vm</Info>{system_sections}{os_section}'
          f'<VirtualHardwareSection {hw_attrs}><Info>hw</Info><System><vssd:ElementName>h</vssd:ElementName>'
          f"<vssd:InstanceID>0</vssd:InstanceID>{fam}</System>{items}</VirtualHardwareSection></VirtualSystem>"
          if system else "")
    if collection is not None:
        vs = f'<VirtualSystemCollection ovf:id="coll"><Info>c</Info>{collection}{vs}</VirtualSystemCollection>'
    return (f'<?xml version="1.0"?>\n<Envelope xmlns="{ns}" xmlns:ovf="{ns}" xmlns:rasd="{RASD}" '
            f'xmlns:vssd="{VSSD}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" {extra_ns} '
            f'ovf:version="{version}"><References>{refs}</References>'
            f"<DiskSection><Info>disks</Info>{disks}</DiskSection>"
            f"<NetworkSection><Info>nets</Info>{networks}</NetworkSection>{envelope_sections}{vs}</Envelope>")


def write(tmp: Path, xml: str, name: str = "vm.ovf") -> Path:
    path = tmp / name
    path.write_text(xml)
    return path
