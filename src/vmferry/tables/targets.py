"""What each target accepts: one row per target, the only place these facts are written.

    from vmferry.tables.targets import TARGETS, target
    target("vmware").ovf.declared_version        # '1.0'
    target("kvm").boot_buses                      # ('virtio', 'virtio-scsi', 'sata', 'ide')
    names(output="ovf")                           # the targets `convert` writes an OVF for

A row (:class:`Target`) says how the target's OVF is written (:class:`OvfDialect`: version, namespaces,
OS id element), the disk formats it imports, the hardware families it takes, its NIC models and storage
controllers with their spellings and fallbacks, the buses and NIC models its guests are judged with
(readiness, :mod:`vmferry.guest.drivers`), its limits, guest agent and cloud-init datasources.

Readers: :mod:`vmferry.tables.nics` and :mod:`vmferry.tables.controllers` (the per-target spellings and
fallbacks), :mod:`vmferry.tables.families` (default family), the portability checks, the OVF writer,
the KVM target, guest readiness and the CLI's ``choices=``. A new target (aws, azure, gce, openstack,
proxmox...) is one more row. docs/tables.md documents the table; a test keeps both equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmferry.errors import UsageError

IDE, SCSI, OTHER_STORAGE = 5, 6, 20


@dataclass(frozen=True, slots=True)
class TargetModel:
    """A NIC model the target has, and the value written for it."""
    target: str
    model: str                    # portable model (vmferry.tables.nics.MODELS)
    value: str                    # what to write (ResourceSubType; libvirt model name for kvm)
    preference: int               # lower is better when several alternatives fit


@dataclass(frozen=True, slots=True)
class Fallback:
    """The NIC model written instead of one the target lacks."""
    target: str
    model: str
    use: str                      # a model the target has
    note: str


@dataclass(frozen=True, slots=True)
class ControllerTarget:
    """A storage controller the target has, and its (ResourceType, ResourceSubType)."""
    target: str
    kind: str                     # ide, scsi, sata, nvme
    model: str | None             # None: the target's only controller of this kind (no model choice)
    resource_type: int
    subtype: str | None           # ResourceSubType to write (libvirt controller model for kvm); None: omit
    preference: int               # lower is the target's default for the kind


@dataclass(frozen=True, slots=True)
class ControllerFallback:
    target: str
    kind: str
    model: str | None             # None: any model of this kind the target lacks
    use_kind: str
    use_model: str | None
    note: str


@dataclass(frozen=True, slots=True)
class OvfDialect:
    """How the OVF descriptor for the target is written."""
    version: str                  # "1.x" or "2.x": the envelope namespace written
    declared_version: str         # the ovf:version attribute
    vendor_ns: tuple[str, ...]    # vendor namespace roles allowed in the output (vmferry.ovf.names.CANONICAL)
    os_attr: str | None           # "vmw:osType" or None
    os_element: str | None        # "vbox:OSType" or None
    keep_vendor_config: bool      # write vmw:Config (firmware) and vmw:CoresPerSocket


@dataclass(frozen=True, slots=True)
class Limits:
    """What the target refuses beyond; None: no limit vmferry knows of (per-family limits: families)."""
    max_nics: int | None
    max_cpus: int | None
    max_memory_mib: int | None
    max_disk_bytes: int | None


@dataclass(frozen=True, slots=True)
class CloudSpec:
    """How a target that imports disk images and documents (no OVF of vmferry's dialects) is written:
    :mod:`vmferry.targets.clouds` reads it, the module ``writer`` writes the target's own documents."""
    writer: str                   # module of vmferry.targets.clouds that writes the target's documents
    documents: tuple[str, ...]    # what the output holds besides the disks (docs/targets.md)
    bus_values: tuple[tuple[str, str], ...]  # guest bus (boot_buses) -> the target's spelling of it
    nic_values: tuple[tuple[str, str], ...] = ()  # guest NIC model -> its spelling, where `nics` has none
    size_align: int = 1           # disk virtual sizes are rounded up to a multiple of this many bytes
    max_disks: int | None = None  # disks one VM (one import) takes
    max_boot_disk_bytes: int | None = None  # the boot disk's largest size
    partition_tables: tuple[str, ...] = ()  # the boot disk must carry one of these (mbr, gpt) with a
    #                                         bootable partition; () not checked
    upload: str | None = None     # how ``--upload`` sends the output (openstacksdk, s3, azure-blob); None: no upload
    repair_for: tuple[str, ...] = ()  # hypervisors (vmferry.guest.repair.HYPERVISORS) whose drivers, tools and
    #                                   device naming the converted guest is repaired for (() not repaired)
    keeps_macs: bool = False      # the output sets the source's MACs (else the cloud gives the NICs its own)
    note: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    output: str | None            # what `convert` writes: "ovf", "libvirt", "cloud" (disk images and the
    #                               target's documents, :attr:`cloud`); None: readiness only (no converter)
    ovf: OvfDialect | None
    disk_formats: tuple[str, ...]  # formats the target imports (vmferry.disks.formats names); first: default
    accepts_family: tuple[str, ...]  # VirtualSystemType prefixes taken as they are ("": any)
    default_family: str | None    # written when the source's is not accepted (vmferry.tables.families)
    os_ids: tuple[str, ...]       # OS id schemes it reads: cim, vmware, virtualbox, libosinfo
    nics: tuple[TargetModel, ...]  # in order of preference
    nic_fallbacks: tuple[Fallback, ...]
    controllers: tuple[ControllerTarget, ...]
    controller_fallbacks: tuple[ControllerFallback, ...]
    refuses_controllers: tuple[str, ...]  # controller kinds whose import fails on the target (an error)
    boot_buses: tuple[str, ...]   # buses a guest's boot disk is judged on (vmferry.guest.drivers.Bus), in order
    #                               of preference, first: the default; () the target has no hardware of its own
    guest_nics: tuple[str, ...]   # NIC models a guest is judged with (vmferry.guest.drivers.NicModel), likewise
    follows_guest: bool           # convert picks the first boot bus / guest NIC the guest has drivers for
    limits: Limits
    agent: str                    # the guest agent for the target
    datasources: tuple[str, ...]  # cloud-init datasources that work there
    ovf_versions: tuple[tuple[str, str], ...] = ()  # source OVF version -> reads, tolerates, deprecated; absent: refuses
    reads_packed_files: bool = True   # imports gzip-compressed and chunked files
    firmware: tuple[str, ...] = ("bios",)  # what its output can state: bios, efi, secure_boot
    env_transports: tuple[str, ...] = ("iso",)  # OVF environment transports, the one it uses first
    vendor_net_properties: bool = False  # its guests read vendor (VMware) network properties
    profiles: bool = True         # imports every DeploymentOptionSection configuration
    collections: bool = True      # imports a VirtualSystemCollection as one unit
    masked_properties: bool = True  # has a masked entry for password properties
    tools_conflict: bool = False  # its guest tools run services (time sync, balloon) that fight other vendors'
    cloud: CloudSpec | None = None  # output == "cloud": how it is written
    note: str = ""


def _row(name: str, *, follows_guest: bool = False, nics: tuple[tuple[str, str], ...], nic_fallbacks: tuple[tuple[str, str, str], ...],
         controllers: tuple[tuple, ...], controller_fallbacks: tuple[tuple, ...], **kw) -> Target:
    prefs: dict[str, int] = {}
    ctl = []
    for kind, model, rtype, subtype in controllers:
        ctl.append(ControllerTarget(name, kind, model, rtype, subtype, prefs.get(kind, 0)))
        prefs[kind] = prefs.get(kind, 0) + 1
    return Target(name, follows_guest=follows_guest, nics=tuple(TargetModel(name, m, v, i) for i, (m, v) in enumerate(nics)),
                  nic_fallbacks=tuple(Fallback(name, *f) for f in nic_fallbacks), controllers=tuple(ctl),
                  controller_fallbacks=tuple(ControllerFallback(name, *f) for f in controller_fallbacks), **kw)


_E1000 = "E1000 is emulated by VMware, VirtualBox, QEMU and Xen and has inbox drivers in Windows and Linux"
_AHCI = "AHCI has inbox drivers in Windows Vista and later and in every Linux"
_SAS = "LSI SAS has inbox drivers in Windows 2008 and later and in every Linux (mptsas)"
_EC2_NIC = ("VM Import gives the instance one NIC of EC2's own: ENA on Nitro instance types (driver ena), Xen's "
            "netfront on older ones")
_EC2_DISK = ("EC2 attaches EBS volumes as NVMe on Nitro instance types (driver nvme), as Xen block devices on "
             "older ones")
_HV = ("Hyper-V emulates only the Gen 1 legacy DEC 21140 adapter; the guest needs hv_netvsc (Linux 2.6.32+) "
       "or integration services (Windows 2008 R2+ inbox)")
_OVF_DATASOURCES = ("OVF",)

ROWS: tuple[Target, ...] = (
    _row("dmtf", output="ovf", ovf=OvfDialect("1.x", "1.1", (), None, None, False),
         disk_formats=("vmdk-stream",), accepts_family=("",),
         default_family=None, os_ids=("cim",),
         nics=(("e1000", "E1000"), ("e1000e", "E1000e"), ("vmxnet3", "VmxNet3"), ("virtio", "virtio"),
               ("pcnet32", "PCNet32"), ("rtl8139", "rtl8139")),
         nic_fallbacks=(("netvsc", "e1000", "a generic DMTF consumer knows no Hyper-V NIC; " + _E1000),
                        ("other", "e1000", _E1000)),
         controllers=(("ide", None, IDE, None), ("scsi", "lsilogic", SCSI, "lsilogic"),
                      ("scsi", "lsisas1068", SCSI, "lsilogicsas"), ("scsi", "buslogic", SCSI, "buslogic"),
                      ("scsi", "pvscsi", SCSI, "VirtualSCSI"), ("scsi", "virtio-scsi", SCSI, "virtio-scsi"),
                      ("sata", "ahci", OTHER_STORAGE, "AHCI")),
         controller_fallbacks=(
             ("scsi", "storvsc", "scsi", "lsisas1068", "a generic DMTF consumer knows no Hyper-V SCSI; " + _SAS),
             ("nvme", None, "sata", "ahci", "DMTF names no NVMe controller; " + _AHCI)),
         refuses_controllers=(), boot_buses=(), guest_nics=(),
         limits=Limits(None, None, None, None), agent="", datasources=_OVF_DATASOURCES,
         ovf_versions=(("1.x", "reads"), ("2.x", "reads")),
         note="the generic portable profile: DMTF elements only, read by any OVF 1.x consumer"),
    _row("vmware", output="ovf", ovf=OvfDialect("1.x", "1.0", ("vmw",), "vmw:osType", None, True),
         disk_formats=("vmdk-stream",), accepts_family=("vmx-",), default_family="vmx-10",
         os_ids=("vmware", "cim"),
         nics=(("vmxnet3", "VmxNet3"), ("e1000e", "E1000e"), ("e1000", "E1000"), ("pcnet32", "PCNet32")),
         nic_fallbacks=(("virtio", "e1000", "VMware has no virtio devices; " + _E1000),
                        ("rtl8139", "e1000", "VMware has no RTL8139; " + _E1000),
                        ("netvsc", "e1000", "VMware has no Hyper-V synthetic NIC; " + _E1000),
                        ("other", "e1000", _E1000)),
         controllers=(("ide", "piix4", IDE, None), ("scsi", "lsisas1068", SCSI, "lsilogicsas"),
                      ("scsi", "pvscsi", SCSI, "VirtualSCSI"), ("scsi", "lsilogic", SCSI, "lsilogic"),
                      ("scsi", "buslogic", SCSI, "buslogic"), ("sata", "ahci", OTHER_STORAGE, "vmware.sata.ahci"),
                      ("nvme", None, OTHER_STORAGE, "vmware.nvme.controller")),
         controller_fallbacks=(("ide", None, "ide", "piix4", "VMware's IDE controller is a PIIX4"),
                               ("scsi", None, "scsi", "lsisas1068", "VMware has no such HBA; " + _SAS)),
         refuses_controllers=(), boot_buses=("lsilogic", "pvscsi", "lsisas1068", "sata", "ide"),
         guest_nics=("vmxnet3", "e1000e", "e1000"),
         limits=Limits(10, None, None, 62 << 40), agent="open-vm-tools", datasources=("VMware", "OVF"),
         ovf_versions=(("0.9", "deprecated"), ("1.x", "reads")), firmware=("bios", "efi", "secure_boot"),
         env_transports=("com.vmware.guestInfo", "iso"), vendor_net_properties=True, tools_conflict=True,
         note="vSphere / ESXi and Workstation; CPU and memory limits are per hardware family"),
    _row("virtualbox", output="ovf", ovf=OvfDialect("1.x", "1.0", ("vbox",), None, "vbox:OSType", False),
         disk_formats=("vmdk-stream",), accepts_family=("virtualbox",),
         default_family="virtualbox-2.2", os_ids=("virtualbox", "cim"),
         nics=(("virtio", "virtio"), ("e1000", "E1000"), ("pcnet32", "PCNet32")),
         nic_fallbacks=(("e1000e", "e1000", "VirtualBox has no 82574 (e1000e) model"),
                        ("vmxnet3", "e1000", "VirtualBox has no VMXNET3; " + _E1000),
                        ("rtl8139", "e1000", "VirtualBox has no RTL8139"),
                        ("netvsc", "e1000", "VirtualBox has no Hyper-V synthetic NIC"),
                        ("other", "e1000", _E1000)),
         controllers=(("ide", "piix4", IDE, "PIIX4"), ("ide", "piix3", IDE, "PIIX3"),
                      ("sata", "ahci", OTHER_STORAGE, "AHCI"), ("scsi", "lsilogic", SCSI, "lsilogic"),
                      ("scsi", "lsisas1068", SCSI, "lsilogicsas"), ("scsi", "buslogic", SCSI, "buslogic")),
         controller_fallbacks=(
             ("scsi", None, "scsi", "lsisas1068", "VirtualBox writes no such HBA in OVF; " + _SAS),
             ("nvme", None, "sata", "ahci", "VirtualBox OVF export has no NVMe controller; " + _AHCI)),
         refuses_controllers=("nvme",), boot_buses=("sata", "ide", "lsilogic", "lsisas1068"),
         guest_nics=("e1000", "virtio"),
         limits=Limits(8, None, None, None), agent="virtualbox-guest-additions", datasources=("NoCloud", "OVF"),
         ovf_versions=(("1.x", "reads"), ("2.x", "tolerates")), reads_packed_files=False, collections=False,
         tools_conflict=True),
    _row("xen", output="ovf", ovf=OvfDialect("1.x", "1.0", (), None, None, False),
         disk_formats=("vhd", "vhd-fixed"), accepts_family=("xen-", "hvm-"), default_family="hvm-3.0-unknown",
         os_ids=("cim",),
         nics=(("e1000", "E1000"), ("rtl8139", "rtl8139")),
         nic_fallbacks=(("e1000e", "e1000", "Xen's device model is given the older e1000"),
                        ("vmxnet3", "e1000", "no VMXNET3 on Xen"), ("pcnet32", "e1000", "no PCnet on Xen HVM"),
                        ("virtio", "e1000", "Xen HVM guests use netfront or an emulated NIC, not virtio"),
                        ("netvsc", "e1000", "no Hyper-V synthetic NIC on Xen"), ("other", "e1000", _E1000)),
         controllers=(("ide", "piix3", IDE, None),),
         controller_fallbacks=(
             ("ide", None, "ide", "piix3", "Xen HVM emulates a PIIX3 IDE controller"),
             ("scsi", None, "ide", "piix3", "Xen HVM boots from emulated IDE; PV drivers (blkfront) take over"),
             ("sata", None, "ide", "piix3", "Xen's OVF import knows IDE only; PV drivers (blkfront) take over"),
             ("nvme", None, "ide", "piix3", "Xen's OVF import knows IDE only")),
         refuses_controllers=("nvme",), boot_buses=("xen", "ide"), guest_nics=("xen", "e1000"),
         limits=Limits(7, None, None, 2040 << 30), agent="xe-guest-utilities",
         datasources=("NoCloud", "ConfigDrive", "Ec2"), ovf_versions=(("1.x", "reads"),),
         reads_packed_files=False, profiles=False, masked_properties=False, tools_conflict=True,
         note="XenServer / XCP-ng import of OVF 1.x; disks are VHD, which holds 2040 GiB at most"),
    _row("kvm", output="libvirt", ovf=None, disk_formats=("qcow2", "raw"), accepts_family=("",),
         default_family=None, os_ids=("libosinfo",),
         nics=(("virtio", "virtio"), ("e1000e", "e1000e"), ("e1000", "e1000"), ("rtl8139", "rtl8139"),
               ("vmxnet3", "vmxnet3"), ("pcnet32", "pcnet")),
         nic_fallbacks=(("netvsc", "e1000", "QEMU has no Hyper-V synthetic NIC; " + _E1000),
                        ("other", "e1000", _E1000)),
         controllers=(("scsi", "virtio-scsi", SCSI, "virtio-scsi"), ("scsi", "lsilogic", SCSI, "lsilogic"),
                      ("scsi", "lsisas1068", SCSI, "lsisas1068"), ("scsi", "pvscsi", SCSI, "vmpvscsi"),
                      ("scsi", "buslogic", SCSI, "buslogic"), ("sata", "ahci", OTHER_STORAGE, "ahci"),
                      ("ide", "piix3", IDE, "piix3"), ("ide", "piix4", IDE, "piix4")),
         controller_fallbacks=(
             ("scsi", "storvsc", "sata", "ahci", "QEMU has no Hyper-V SCSI; " + _AHCI),
             ("nvme", None, "sata", "ahci", "libvirt's NVMe controller is too new to rely on; " + _AHCI)),
         refuses_controllers=(), boot_buses=("virtio", "virtio-scsi", "sata", "ide"),
         guest_nics=("virtio", "e1000e", "e1000", "rtl8139"),
         follows_guest=True, limits=Limits(32, None, None, None), agent="qemu-guest-agent",
         datasources=("NoCloud", "ConfigDrive", "OVF"), ovf_versions=(("1.x", "reads"), ("2.x", "reads")),
         reads_packed_files=False, firmware=("bios", "efi", "secure_boot"), profiles=False, collections=False,
         masked_properties=False,
         note="libvirt domain XML and qcow2 disks; the disk bus and NIC model follow the guest's drivers"),
    _row("openstack", output="cloud", ovf=None, disk_formats=("qcow2", "raw"), accepts_family=("",),
         default_family=None, os_ids=("libosinfo",),
         nics=(("virtio", "virtio"), ("e1000e", "e1000e"), ("e1000", "e1000"), ("rtl8139", "rtl8139"),
               ("vmxnet3", "vmxnet3"), ("pcnet32", "pcnet")),
         nic_fallbacks=(("netvsc", "e1000", "Nova's libvirt driver has no Hyper-V synthetic NIC; " + _E1000),
                        ("other", "e1000", _E1000)),
         controllers=(("scsi", "virtio-scsi", SCSI, "virtio-scsi"), ("sata", "ahci", OTHER_STORAGE, "sata"),
                      ("ide", "piix3", IDE, "ide")),
         controller_fallbacks=(
             ("scsi", None, "sata", "ahci", "Glance's hw_scsi_model names virtio-scsi only; " + _AHCI),
             ("ide", None, "ide", "piix3", "QEMU's IDE controller is a PIIX3"),
             ("nvme", None, "sata", "ahci", "Nova's hw_disk_bus has no NVMe; " + _AHCI)),
         refuses_controllers=(), boot_buses=("virtio", "virtio-scsi", "sata", "ide"),
         guest_nics=("virtio", "e1000e", "e1000", "rtl8139"), follows_guest=True,
         limits=Limits(None, None, None, None), agent="qemu-guest-agent",
         datasources=("ConfigDrive", "OpenStack", "NoCloud"), ovf_versions=(("1.x", "reads"), ("2.x", "reads")),
         reads_packed_files=False, firmware=("bios", "efi", "secure_boot"), env_transports=(), profiles=False,
         collections=False, masked_properties=False,
         cloud=CloudSpec("openstack", ("Glance image properties (JSON)",),
                         bus_values=(("virtio", "virtio"), ("virtio-scsi", "scsi"), ("sata", "sata"), ("ide", "ide")),
                         upload="openstacksdk", repair_for=("kvm",),
                         note="Nova's libvirt driver reads hw_disk_bus, hw_scsi_model, hw_vif_model, hw_machine_type, "
                         "hw_firmware_type, os_secure_boot, os_type, os_distro and the hw_cpu_* topology"),
         note="Glance images (qcow2) with the properties Nova's libvirt driver reads; bus and NIC follow the guest"),
    _row("gce", output="cloud", ovf=None, disk_formats=("raw",), accepts_family=("",), default_family=None,
         os_ids=("libosinfo",),
         nics=(("virtio", "VIRTIO_NET"),),
         nic_fallbacks=tuple((m, "virtio", "Compute Engine offers virtio-net and gVNIC only")
                             for m in ("e1000", "e1000e", "vmxnet3", "pcnet32", "rtl8139", "netvsc", "other")),
         controllers=(("scsi", "virtio-scsi", SCSI, "VIRTIO_SCSI"),),
         controller_fallbacks=tuple((k, None, "scsi", "virtio-scsi", "Compute Engine attaches disks on virtio-scsi "
                                     "(or NVMe on newer machine series)") for k in ("ide", "sata", "scsi", "nvme")),
         refuses_controllers=(), boot_buses=("virtio-scsi",), guest_nics=("virtio", "gvnic"),
         limits=Limits(None, None, None, 2048 << 30), agent="google-guest-agent", datasources=("GCE",),
         ovf_versions=(("1.x", "reads"), ("2.x", "reads")), reads_packed_files=False,
         firmware=("bios", "efi", "secure_boot"), env_transports=(), profiles=False, collections=False,
         masked_properties=False,
         cloud=CloudSpec("gce", ("disk.raw in a gzip'd GNU oldgnu tar (sparse)", "image description (JSON)",
                                 "gcloud command line"),
                         bus_values=(("virtio-scsi", "SCSI"),), nic_values=(("virtio", "VIRTIO_NET"), ("gvnic", "GVNIC")),
                         size_align=1 << 30, max_boot_disk_bytes=2048 << 30, partition_tables=("mbr", "gpt"),
                         repair_for=("kvm",),
                         note="Compute Engine's manual import: one image per disk, sizes in whole GB (GiB)"),
         note="Compute Engine images: a raw disk in a gzip'd tar, guest OS features from the guest's drivers"),
    _row("hyperv", output="cloud", ovf=None, disk_formats=("vhdx", "vhd"), accepts_family=("Microsoft:Hyper-V:",),
         default_family="Microsoft:Hyper-V:SubType:1", os_ids=(),
         nics=(("netvsc", "Microsoft:Hyper-V:Synthetic Ethernet Port"),),
         nic_fallbacks=tuple((m, "netvsc", _HV if m == "e1000" else "see e1000")
                             for m in ("e1000", "e1000e", "vmxnet3", "pcnet32", "virtio", "rtl8139", "other")),
         controllers=(("ide", "piix4", IDE, "Microsoft:Hyper-V:Emulated IDE Controller"),
                      ("scsi", "storvsc", SCSI, "Microsoft:Hyper-V:Synthetic SCSI Controller")),
         controller_fallbacks=(
             ("ide", None, "ide", "piix4", "Hyper-V Gen 1 IDE is a PIIX4"),
             ("scsi", None, "scsi", "storvsc", "Hyper-V has only its synthetic SCSI (storvsc); note that a "
              "Gen 1 VM boots from IDE only"),
             ("sata", None, "ide", "piix4", "Hyper-V has no SATA; Gen 1 boots from IDE"),
             ("nvme", None, "scsi", "storvsc", "Hyper-V has no NVMe for guests")),
         refuses_controllers=(), boot_buses=("hyperv", "ide"), guest_nics=("hyperv",),
         limits=Limits(None, 240, 12 << 20, 64 << 40), agent="hyperv-daemons", datasources=("Azure", "NoCloud"),
         ovf_versions=(("1.x", "reads"), ("2.x", "reads")), reads_packed_files=False,
         firmware=("bios", "efi", "secure_boot"), env_transports=(), profiles=False, collections=False,
         masked_properties=False,
         cloud=CloudSpec("hyperv", ("PowerShell script creating the VM (New-VM -Generation 1|2)",),
                         bus_values=(("hyperv", "SCSI"), ("ide", "IDE")), nic_values=(("hyperv", "Synthetic"),),
                         max_disks=64 * 4 + 4, repair_for=("hyperv",), keeps_macs=True,
                         note="generation 2 (UEFI) boots from SCSI, generation 1 (BIOS) from IDE"),
         note="Hyper-V on Windows Server 2016 and later: VHDX disks and a New-VM script (Hyper-V imports no OVF)"),
    _row("proxmox", output="cloud", ovf=None, disk_formats=("qcow2", "raw", "vmdk-stream"), accepts_family=("",),
         default_family=None, os_ids=("cim",),
         nics=(("virtio", "virtio"), ("e1000e", "e1000e"), ("e1000", "e1000"), ("vmxnet3", "vmxnet3"),
               ("rtl8139", "rtl8139"), ("pcnet32", "pcnet")),
         nic_fallbacks=(("netvsc", "e1000", "QEMU has no Hyper-V synthetic NIC; " + _E1000),
                        ("other", "e1000", _E1000)),
         controllers=(("scsi", "virtio-scsi", SCSI, "virtio-scsi-pci"), ("scsi", "lsilogic", SCSI, "lsi"),
                      ("scsi", "lsisas1068", SCSI, "lsi"), ("scsi", "pvscsi", SCSI, "pvscsi"),
                      ("sata", "ahci", OTHER_STORAGE, None), ("ide", "piix3", IDE, None)),
         controller_fallbacks=(
             ("scsi", None, "scsi", "lsilogic", "Proxmox's scsihw choices: lsi, megasas, pvscsi, virtio-scsi-pci"),
             ("ide", None, "ide", "piix3", "QEMU's IDE controller is a PIIX3"),
             ("nvme", None, "sata", "ahci", "qm importovf attaches IDE, SCSI and SATA disks only; " + _AHCI)),
         refuses_controllers=(), boot_buses=("virtio-scsi", "sata", "ide"),
         guest_nics=("virtio", "e1000e", "e1000", "rtl8139"), follows_guest=True,
         limits=Limits(32, None, None, None), agent="qemu-guest-agent", datasources=("NoCloud", "ConfigDrive"),
         ovf_versions=(("1.x", "reads"), ("2.x", "reads")), reads_packed_files=False,
         firmware=("bios", "efi", "secure_boot"), env_transports=(), profiles=False, collections=False,
         masked_properties=False,
         cloud=CloudSpec("proxmox", ("OVF that qm importovf reads", "qm importovf / qm set command lines"),
                         bus_values=(("virtio-scsi", "scsi"), ("sata", "sata"), ("ide", "ide")), max_disks=31,
                         repair_for=("kvm",), keeps_macs=True,
                         note="qm importovf reads OVF 1.x: one VirtualSystem, one CPU and one memory Item, disk "
                         "Items on IDE (5), SCSI (6) or SATA (20) controllers, hrefs beside the OVF, CIM OS ids"),
         note="Proxmox VE: the OVF subset qm importovf reads, qcow2 disks, qm set for what it does not read"),
    _row("aws", output="cloud", ovf=None, disk_formats=("vmdk-stream", "vhd", "vhd-fixed", "vhdx", "raw"),
         accepts_family=("",), default_family=None, os_ids=(),
         nics=(("other", "ENA"),),
         nic_fallbacks=tuple((m, "other", _EC2_NIC) for m in ("e1000", "e1000e", "vmxnet3", "pcnet32", "virtio",
                                                                "rtl8139", "netvsc")),
         controllers=(("nvme", None, OTHER_STORAGE, "nvme"),),
         controller_fallbacks=tuple((k, None, "nvme", None, _EC2_DISK) for k in ("ide", "sata", "scsi")),
         refuses_controllers=(), boot_buses=("nvme", "xen"), guest_nics=("ena", "xen"),
         limits=Limits(None, None, None, 4 << 40), agent="amazon-ssm-agent", datasources=("Ec2",),
         ovf_versions=(("1.x", "reads"),), reads_packed_files=False, firmware=("bios", "efi"), env_transports=(),
         profiles=False, collections=False, masked_properties=False,
         cloud=CloudSpec("aws", ("import-image request (JSON for aws ec2 import-image --cli-input-json)",
                                 "aws CLI commands (S3 upload, import-image)"),
                         bus_values=(("nvme", "NVMe"), ("xen", "Xen PV")), nic_values=(("ena", "ENA"), ("xen", "Xen PV")),
                         max_disks=21, upload="s3", repair_for=("aws",),
                         note="VM Import/Export: streamOptimized VMDK (as VMware exports it), VHD/VHDX or raw images "
                         "in S3 and an ImportImage request; the instance gets one NIC"),
         note="EC2 VM Import/Export: images in S3 and the import-image request; boot mode legacy-bios or uefi"),
    _row("azure", output="cloud", ovf=None, disk_formats=("vhd-fixed",), accepts_family=("",), default_family=None,
         os_ids=(),
         nics=(("netvsc", "Microsoft:Hyper-V:Synthetic Ethernet Port"),),
         nic_fallbacks=tuple((m, "netvsc", "Azure VMs have Hyper-V synthetic NICs (hv_netvsc) only")
                             for m in ("e1000", "e1000e", "vmxnet3", "pcnet32", "virtio", "rtl8139", "other")),
         controllers=(("ide", "piix4", IDE, "Microsoft:Hyper-V:Emulated IDE Controller"),
                      ("scsi", "storvsc", SCSI, "Microsoft:Hyper-V:Synthetic SCSI Controller")),
         controller_fallbacks=(
             ("ide", None, "ide", "piix4", "a generation 1 VM boots from emulated IDE (a PIIX4)"),
             ("scsi", None, "scsi", "storvsc", "Azure attaches data disks on its synthetic SCSI (storvsc)"),
             ("sata", None, "scsi", "storvsc", "Azure has no SATA"),
             ("nvme", None, "scsi", "storvsc", "Azure's NVMe is for newer VM sizes only; SCSI everywhere")),
         refuses_controllers=(), boot_buses=("hyperv",), guest_nics=("hyperv",),
         limits=Limits(None, None, None, 2040 << 30), agent="walinuxagent", datasources=("Azure",),
         ovf_versions=(("1.x", "reads"),), reads_packed_files=False, firmware=("bios", "efi", "secure_boot"),
         env_transports=(), profiles=False, collections=False, masked_properties=False,
         cloud=CloudSpec("azure", ("VHD page blob and managed disk/image settings (JSON)",
                                   "az CLI commands (disk and image from the blob)"),
                         bus_values=(("hyperv", "VMBus SCSI"),), nic_values=(("hyperv", "Synthetic"),),
                         size_align=1 << 20, upload="azure-blob", repair_for=("hyperv",),
                         note="fixed VHD, virtual size a whole number of MiB, at most 2040 GiB; generation 1 (BIOS) "
                         "or 2 (UEFI); the Linux guest needs hv_vmbus, hv_storvsc and hv_netvsc"),
         note="Azure: fixed VHDs uploaded as page blobs, managed disks and images made from them"),
)

TARGETS: dict[str, Target] = {t.name: t for t in ROWS}


def names(*, output: str | None | type = ...) -> tuple[str, ...]:
    """Target names in table order; ``output="ovf"``: those `convert` writes an OVF for; ``output=None``:
    readiness-only ones. ``converters()`` gives every target with a converter."""
    return tuple(t.name for t in ROWS if output is ... or t.output == output)


def doc_row(row: Target) -> str:
    """The row of docs/tables.md that documents ``row`` (tests keep the document equal to the data)."""
    ovf = f"{row.ovf.version} (`ovf:version=\"{row.ovf.declared_version}\"`" + \
        "".join(f", `{r}`" for r in row.ovf.vendor_ns) + ")" if row.ovf else "–"
    fam = ", ".join(f"`{p}*`" if p else "any" for p in row.accepts_family) + \
        (f" → `{row.default_family}`" if row.default_family else "")
    lim = row.limits
    limits = ", ".join(x for x in (lim.max_nics and f"{lim.max_nics} NICs",
                                   lim.max_disk_bytes and f"disks ≤ {lim.max_disk_bytes >> 30} GiB") if x) or "–"
    cells = [f"`{row.name}`", row.output or "–", ovf, ", ".join(row.disk_formats), fam,
             ", ".join(row.os_ids) or "–", " > ".join(row.boot_buses) or "–", " > ".join(row.guest_nics) or "–",
             "guest" if row.follows_guest else "default", limits, row.agent or "–", _behaviour(row)]
    return "| " + " | ".join(cells) + " |"


def _behaviour(row: Target) -> str:
    flags = {"packed files": row.reads_packed_files, "profiles": row.profiles, "collections": row.collections,
             "masked properties": row.masked_properties, "vendor network properties": row.vendor_net_properties}
    parts = ["OVF " + (", ".join(f"{v} {how}" for v, how in row.ovf_versions) or "–"),
             "firmware " + "/".join(row.firmware), "environment " + ("/".join(row.env_transports) or "–"),
             ", ".join(("" if on else "no ") + name for name, on in flags.items())]
    if row.tools_conflict:
        parts.append("tools fight other vendors'")
    return "; ".join(parts)


def ovf_version_support(name: str, version: str) -> str:
    """How the target takes a source of OVF ``version``: reads, tolerates, deprecated or refuses."""
    return dict(target(name).ovf_versions).get(version, "refuses")


def readiness_targets() -> tuple[str, ...]:
    """The targets a guest is judged for (those with hardware of their own: boot buses and NICs)."""
    return tuple(t.name for t in ROWS if t.boot_buses)


def converters() -> tuple[str, ...]:
    """The targets `convert` and `check` take (those with a converter), in table order."""
    return tuple(t.name for t in ROWS if t.output is not None)


def target(name: str) -> Target:
    """The row of one target; :class:`UsageError` naming the known ones otherwise."""
    row = TARGETS.get(name)
    if row is None:
        raise UsageError(f"unknown target {name!r} (one of {', '.join(TARGETS)})")
    return row
