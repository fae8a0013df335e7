"""``inspect``: a typed summary of a package that scripts can rely on (see ``docs/json.md``).

>>> from vmferry.summary import summarize
>>> s = summarize("tests/data/cot/vmware.ovf")
>>> s.systems[0].cpus, s.systems[0].memory_mib
(1, 512)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from vmferry.findings import Finding
from vmferry.ovf.envelope import Envelope, VirtualSystem
from vmferry.ovf.rasd import NIC_TYPES, ResourceType


@dataclass
class FileInfo:
    id: str | None
    href: str | None
    size: int | None
    compression: str | None
    chunk_size: int | None


@dataclass
class NetworkInfo:
    name: str | None
    description: str | None


@dataclass
class DiskInfo:
    id: str | None
    file_id: str | None
    capacity_bytes: int | None
    populated_bytes: int | None
    format: str | None
    format_uri: str | None


@dataclass
class OsInfo:
    cim_id: int | None
    description: str | None
    vendor_type: str | None
    version: str | None = None


@dataclass
class SystemDisk:
    disk_id: str | None
    controller: str
    controller_model: str | None
    address_on_parent: str | None = None


@dataclass
class Nic:
    network: str | None
    model: str | None
    mac: str | None


@dataclass
class PropertyInfo:
    key: str | None
    type: str | None
    value: str | None
    user_configurable: bool
    label: str | None
    full_key: str | None = None
    category: str | None = None
    password: bool = False
    qualifiers: str | None = None
    description: str | None = None


@dataclass
class ProfileInfo:
    id: str | None
    label: str | None
    default: bool
    cpus: int | None
    memory_mib: int | None
    nics: int


@dataclass
class SystemInfo:
    id: str | None
    name: str | None
    path: list[str]
    os: OsInfo
    hardware_family: list[str]
    cpus: int | None
    memory_mib: int | None
    disks: list[SystemDisk]
    nics: list[Nic]
    cdroms: int
    floppies: int
    serial_ports: int
    properties: list[PropertyInfo]
    profiles: list[ProfileInfo]


@dataclass
class Summary:
    path: str
    container: str
    ovf_version: str
    files: list[FileInfo]
    networks: list[NetworkInfo]
    disks: list[DiskInfo]
    systems: list[SystemInfo]
    findings: list[Finding] = field(default_factory=list)
    dialect: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _cpus(items) -> int | None:
    for i in items:
        if i.resource_type == ResourceType.PROCESSOR:
            return i.cpu_count
    return None


def _memory(items) -> int | None:
    for i in items:
        if i.resource_type == ResourceType.MEMORY:
            return i.memory_mib
    return None


def _nics(items) -> list[Nic]:
    kinds = {int(t) for t in NIC_TYPES}
    return [Nic(i.connections[0] if i.connections else None, i.resource_subtype, i.mac)
            for i in items if i.resource_type in kinds]


def _system_disks(env: Envelope, items) -> list[SystemDisk]:
    from vmferry.dialects.ovirt import disk_controller

    by_id = {i.instance_id: i for i in items if i.instance_id}
    out = []
    for item in items:
        if item.resource_type != ResourceType.DISK_DRIVE:
            continue
        ddef = next((d for d in map(env.disk_for_host_resource, item.host_resources) if d is not None), None)
        parent = by_id.get(item.parent) if item.parent else None
        if parent is not None:
            kind, model = parent.controller_kind, parent.resource_subtype
        else:
            bus = disk_controller(ddef) if ddef is not None else None
            kind, model = (bus.kind, bus.source_model) if bus is not None else ("other", None)
        out.append(SystemDisk(ddef.disk_id if ddef is not None else None, kind, model, item.address_on_parent))
    return out


def _ovirt_os(os_sec, dialect: str | None) -> str | None:
    """The oVirt OS name of an oVirt descriptor's OperatingSystemSection (``rhel_8x64``)."""
    from vmferry.dialects.ovirt import os_name

    return os_name(os_sec) if dialect == "ovirt" or os_sec.ovirt_id else None


def system_info(env: Envelope, system: VirtualSystem, dialect: str | None = None) -> SystemInfo:
    hw = system.hardware
    default = env.default_profile
    items = hw.items_for(default) if hw else []
    os_sec = system.operating_system
    osinfo = (OsInfo(os_sec.cim_id, os_sec.description, os_sec.vendor_type or _ovirt_os(os_sec, dialect),
                      os_sec.version)
              if os_sec else OsInfo(None, None, None))
    props = []
    for product in system.product_sections:
        for p in product.properties():
            props.append(PropertyInfo(p.key, p.type, p.value_for(default), p.user_configurable, p.label,
                                      p.full_key, p.category, p.password, p.qualifiers, p.description))
    profiles = []
    for opt in env.deployment_options:
        pitems = hw.items_for(opt.id) if hw else []
        profiles.append(ProfileInfo(opt.id, opt.label, opt.id == default, _cpus(pitems), _memory(pitems),
                                    len(_nics(pitems))))
    count = lambda *types: sum(1 for i in items if i.resource_type in {int(t) for t in types})  # noqa: E731
    return SystemInfo(
        id=system.id, name=system.name, path=list(system.path), os=osinfo,
        hardware_family=hw.system_types if hw else [], cpus=_cpus(items), memory_mib=_memory(items),
        disks=_system_disks(env, items), nics=_nics(items),
        cdroms=count(ResourceType.CD_DRIVE, ResourceType.DVD_DRIVE), floppies=count(ResourceType.FLOPPY_DRIVE),
        serial_ports=count(ResourceType.SERIAL_PORT), properties=props, profiles=profiles)


def _file_id(env: Envelope, ddef) -> str | None:
    """The id of the File backing a Disk (oVirt's fileRef names the File's href), else the fileRef."""
    backing = env.file_for_ref(ddef.file_ref)
    return backing.id if backing is not None else ddef.file_ref


def summarize_envelope(env: Envelope, *, path: str, container: str) -> Summary:
    from vmferry.checks.descriptor import descriptor_findings
    from vmferry.dialects import detect

    dialect = detect(env)
    return Summary(
        path=path, container=container, ovf_version=env.version,
        files=[FileInfo(f.id, f.href, f.size, f.compression, f.chunk_size) for f in env.references],
        networks=[NetworkInfo(n.name, n.description) for n in env.networks],
        disks=[DiskInfo(d.disk_id, _file_id(env, d), d.capacity_bytes, d.populated_bytes, d.format_name,
                        d.format) for d in env.disks],
        systems=[system_info(env, s, dialect.name) for s in env.systems],
        findings=descriptor_findings(env),
        dialect=dialect.to_dict(),
    )


def summarize(path: str | os.PathLike) -> Summary:
    """Summarise a descriptor, OVF directory or OVA (the OVA is not unpacked)."""
    from vmferry.package import open_package

    path = os.fspath(path)
    pkg = open_package(path)
    summary = summarize_envelope(pkg.envelope, path=path, container=pkg.container)
    summary.findings = list(pkg.findings) + summary.findings
    return summary
