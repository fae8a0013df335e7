"""The portable profile: a vendor-free, typed description of what a package asks for.

No XML here. A dialect (:mod:`vmferry.dialects`) reads an :class:`~vmferry.ovf.Envelope` into a
:class:`PortablePackage` and writes one back in its own dialect; checks and targets (libvirt, VMware,
VirtualBox, Xen, generic DMTF) read it. Values that differ per deployment profile are kept as
:class:`Variant` lists (``profiles=None`` means every profile), so deployment options survive every
conversion. What could not be expressed portably is listed in ``not_portable`` with its origin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Variant(Generic[T]):
    """A value and the deployment profiles it holds for (None: all profiles)."""

    value: T
    profiles: tuple[str, ...] | None = None

    def applies_to(self, profile: str | None) -> bool:
        return self.profiles is None or (profile is not None and profile in self.profiles)


def pick(variants: list[Variant[T]], profile: str | None) -> T | None:
    """The value for ``profile``: a profile-specific variant wins over a general one."""
    general = None
    for v in variants:
        if v.profiles is not None and profile is not None and profile in v.profiles:
            return v.value
        if v.profiles is None and general is None:
            general = v
    return general.value if general else None


@dataclass
class Profile:
    id: str
    label: str | None = None
    description: str | None = None
    default: bool = False


@dataclass
class Cpu:
    count: int
    cores_per_socket: int | None = None
    threads_per_core: int | None = None     # oVirt/RHV rasd:threads_per_cpu

    @property
    def sockets(self) -> int:
        per_socket = (self.cores_per_socket or 1) * (self.threads_per_core or 1)
        return max(1, self.count // per_socket)


@dataclass
class Firmware:
    kind: str = "bios"            # "bios" or "efi"
    secure_boot: bool = False


@dataclass
class OsSpec:
    cim_id: int | None = None
    description: str | None = None
    family: str | None = None     # "linux", "windows", "bsd", "solaris", "other"
    distro: str | None = None     # "ubuntu", "rhel", "debian", ... when known
    version: str | None = None
    bits: int | None = None       # 32 or 64
    vmware: str | None = None     # guestId, e.g. "ubuntu64Guest"
    virtualbox: str | None = None  # OSType, e.g. "Ubuntu_64"
    libosinfo: str | None = None  # short id, e.g. "ubuntu22.04"
    ovirt: str | None = None      # oVirt/RHV OS name, e.g. "rhel_8x64", "windows_2022"


@dataclass
class Controller:
    id: str                       # the source InstanceID (stable reference for devices)
    kind: str                     # "ide", "scsi", "sata", "nvme", "usb", "other"
    model: str | None = None      # portable model name: "lsilogic", "lsisas1068", "pvscsi", "buslogic",
                                  # "virtio-scsi", "ahci", "piix4", ...
    source_model: str | None = None  # ResourceSubType as written
    profiles: tuple[str, ...] | None = None
    address: str | None = None    # bus number (rasd:Address), e.g. IDE 0 / IDE 1


@dataclass
class FileSpec:
    id: str
    href: str
    size: int | None = None
    compression: str | None = None
    chunk_size: int | None = None


@dataclass
class Disk:
    id: str                       # diskId
    capacity_bytes: int | None
    file_id: str | None = None    # None: a blank disk created at deployment
    format: str | None = None     # short format name (vmdk-stream, vhd, qcow2, raw, ...)
    format_uri: str | None = None
    populated_bytes: int | None = None
    controller_id: str | None = None
    address: str | None = None    # AddressOnParent
    boot_order: int | None = None
    profiles: tuple[str, ...] | None = None
    instance_id: str | None = None
    name: str | None = None


@dataclass
class Drive:
    """A CD/DVD or floppy drive, possibly backed by a file of the package."""

    kind: str                     # "cdrom" or "floppy"
    controller_id: str | None = None
    address: str | None = None
    file_id: str | None = None
    profiles: tuple[str, ...] | None = None
    instance_id: str | None = None


@dataclass
class NetConfig:
    """Guest network settings of one NIC (from vApp properties, appliance properties, ...)."""

    dhcp: bool | None = None
    address: str | None = None    # IPv4 or IPv6 address without prefix
    prefix: int | None = None
    gateway: str | None = None
    dns_servers: list[str] = field(default_factory=list)
    search_domains: list[str] = field(default_factory=list)
    hostname: str | None = None
    origin: str | None = None     # where it came from: "vmware-vapp", "cisco", "vmferry", ...

    @property
    def is_empty(self) -> bool:
        return not any([self.dhcp is not None, self.address, self.gateway, self.dns_servers,
                        self.search_domains, self.hostname])


@dataclass
class Nic:
    index: int                    # order in the descriptor, across every profile (0-based); the guest's
                                  # own numbering is the position in nics_for(profile)
    network: str | None
    model: str | None = None      # portable: "e1000", "e1000e", "vmxnet3", "pcnet32", "virtio", "rtl8139",
                                  # "netvsc", "other"
    source_model: str | None = None
    mac: str | None = None
    profiles: tuple[str, ...] | None = None
    instance_id: str | None = None
    name: str | None = None


@dataclass
class Device:
    """Other hardware: serial, parallel, usb controller, sound, video, ..."""

    kind: str                     # "serial", "parallel", "usb", "sound", "video", "other"
    model: str | None = None
    profiles: tuple[str, ...] | None = None
    instance_id: str | None = None
    name: str | None = None


@dataclass
class PropertySpec:
    key: str
    type: str = "string"
    value: str | None = None
    values: list[Variant[str]] = field(default_factory=list)   # per-profile values
    qualifiers: str | None = None
    user_configurable: bool = False
    password: bool = False
    label: str | None = None
    description: str | None = None
    category: str | None = None


@dataclass
class ProductInfo:
    product_class: str | None = None
    instance: str | None = None
    product: str | None = None
    vendor: str | None = None
    version: str | None = None
    full_version: str | None = None
    product_url: str | None = None
    vendor_url: str | None = None
    info: str | None = None
    properties: list[PropertySpec] = field(default_factory=list)


@dataclass
class NonPortable:
    """Something the source says that the portable profile cannot carry."""

    origin: str                   # dialect or namespace it came from, e.g. "vmware", "virtualbox"
    what: str                     # element or attribute, e.g. "vmw:Config tools.syncTimeWithHost"
    detail: str = ""
    location: str = ""


@dataclass
class StartupEntry:
    id: str
    order: int | None = None
    start_delay: int | None = None
    stop_delay: int | None = None
    start_action: str | None = None
    stop_action: str | None = None
    wait_for_guest: bool = False


@dataclass
class PortableVM:
    id: str
    name: str | None = None
    info: str | None = None
    os: OsSpec = field(default_factory=OsSpec)
    firmware: Firmware = field(default_factory=Firmware)
    cpus: list[Variant[Cpu]] = field(default_factory=list)
    memory_mib: list[Variant[int]] = field(default_factory=list)
    controllers: list[Controller] = field(default_factory=list)
    disks: list[Disk] = field(default_factory=list)
    drives: list[Drive] = field(default_factory=list)
    nics: list[Nic] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    net_config: dict[int, NetConfig] = field(default_factory=dict)   # guest NIC number (eth<n>, the
                                  # position in nics_for(profile), as the property conventions count) -> settings
    products: list[ProductInfo] = field(default_factory=list)
    eulas: list[str] = field(default_factory=list)
    annotation: str | None = None
    hardware_family: list[str] = field(default_factory=list)   # as written by the source
    transports: list[str] = field(default_factory=list)        # ovf:transport (iso, com.vmware.guestInfo)
    not_portable: list[NonPortable] = field(default_factory=list)

    def cpu_for(self, profile: str | None) -> Cpu | None:
        return pick(self.cpus, profile)

    def memory_for(self, profile: str | None) -> int | None:
        return pick(self.memory_mib, profile)

    def nics_for(self, profile: str | None) -> list[Nic]:
        return [n for n in self.nics if n.profiles is None or (profile and profile in n.profiles)]

    def disks_for(self, profile: str | None) -> list[Disk]:
        return [d for d in self.disks if d.profiles is None or (profile and profile in d.profiles)]

    def controller(self, controller_id: str | None) -> Controller | None:
        return next((c for c in self.controllers if c.id == controller_id), None)

    def properties(self) -> list[PropertySpec]:
        return [p for product in self.products for p in product.properties]


@dataclass
class PortablePackage:
    """Everything in a package, vendor-free: networks, files, profiles and the systems."""

    name: str | None
    systems: list[PortableVM]
    networks: list[tuple[str, str | None]] = field(default_factory=list)   # (name, description)
    files: list[FileSpec] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    spare_disks: list[Disk] = field(default_factory=list)   # DiskSection disks no system attaches
    collection_id: str | None = None          # set when the source was a VirtualSystemCollection
    collection_products: list[ProductInfo] = field(default_factory=list)
    startup: list[StartupEntry] = field(default_factory=list)
    source_dialect: str | None = None
    source_version: str | None = None

    @property
    def default_profile(self) -> str | None:
        return next((p.id for p in self.profiles if p.default), self.profiles[0].id if self.profiles else None)

    def file(self, file_id: str | None) -> FileSpec | None:
        return next((f for f in self.files if f.id == file_id), None)

    def to_dict(self) -> dict:
        return asdict(self)
