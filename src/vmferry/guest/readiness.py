"""Per-target readiness of an inspected guest: ``ready``, ``needs-fixes`` or ``will-not-boot``.

Each reason is a :class:`Finding` with a stable rule id (``VMF-GUEST-0xx``, documented in
docs/guest.md), a severity (``error`` -> will not boot, ``warning`` -> needs fixes, ``info`` -> a note),
the place in the guest it concerns and the fix (:class:`vmferry.findings.Finding`, as every check). The target's disk bus and NIC model default to the ones vmferry would choose for it
(:data:`TARGETS`, read from the targets table :mod:`vmferry.tables.targets`: ``boot_buses`` and
``guest_nics``, first is the default) and can be overridden, e.g. ``readiness(report, "kvm", bus="sata")``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from vmferry.errors import UsageError
from vmferry.findings import Finding
from vmferry.guest.drivers import (
    BUS_DRIVERS,
    NIC_DRIVERS,
    GuestDrivers,
    guest_drivers,
    missing_linux,
)
from vmferry.guest.model import GuestReport
from vmferry.tables.targets import TARGETS as TARGET_ROWS

# device-name prefix the first disk gets on each bus (libata and SCSI disks are all "sd")
BUS_PREFIX = {"virtio": "vd", "xen": "xvd", "nvme": "nvme"}


@dataclass(frozen=True)
class TargetSpec:
    bus: str                          # default boot disk bus
    nic: str                          # default NIC model
    buses: tuple[str, ...]            # every bus the target offers (fallbacks)
    nics: tuple[str, ...]
    agent: str                        # the target's guest agent
    datasources: tuple[str, ...]      # cloud-init datasources that work there


TARGETS: dict[str, TargetSpec] = {
    t.name: TargetSpec(t.boot_buses[0], t.guest_nics[0], t.boot_buses, t.guest_nics, t.agent, t.datasources)
    for t in TARGET_ROWS.values() if t.boot_buses}
# Tools of these vendors run services that fight each other (time sync, memory balloon, shutdown).
CONFLICTING_VENDORS = frozenset(t.name for t in TARGET_ROWS.values() if t.tools_conflict)

READY, NEEDS_FIXES, WILL_NOT_BOOT = "ready", "needs-fixes", "will-not-boot"


def _f(rule: str, severity: str, message: str, fix: str, location: str = "",
       fixed_by: str | None = None) -> Finding:
    if severity == "error":
        message = "will not boot: " + message
    return Finding(rule, severity, message, location, fix, fixed_by)


@dataclass
class Readiness:
    target: str
    bus: str
    nic: str
    status: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def reasons(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != "info"]

    def to_dict(self) -> dict:
        return asdict(self)


def _check_disk(report: GuestReport, target: str, spec: TargetSpec, bus: str, drv: GuestDrivers) -> list[Finding]:
    others = [b for b in spec.buses if b != bus and b in drv.storage_buses]
    alt = f"; or put the disk on {' or '.join(others)}, which the guest can boot from" if others else ""
    if report.os.type == "windows":
        if bus not in drv.storage_buses:
            return [_f("VMF-GUEST-001", "error",
                       f"on {target} the disk is on {bus}, and Windows cannot boot from it ({drv.evidence[bus]})",
                       "install the driver (e.g. virtio-win viostor) and register its service boot-start "
                       "(Start=0) before moving" + alt)]
        if not drv.boot_start_checked:
            return [_f("VMF-GUEST-002", "warning",
                       f"the Windows driver for {bus} is present, but whether it starts at boot is not checked",
                       "make sure the driver's service has Start=0 (boot) before moving")]
        return []
    if bus in drv.storage_buses:
        return []
    kernel = report.default_kernel
    if kernel is None:
        return [_f("VMF-GUEST-003", "error", "no Linux kernel found in /boot",
                        "check that /boot is on the inspected disk")]
    missing = missing_linux(BUS_DRIVERS[bus], kernel.boot_drivers())
    where = f"the initramfs of kernel {kernel.version}" if kernel.initramfs else \
        f"kernel {kernel.version} (no initramfs found for it)"
    on_disk = [d for d in missing if any(a in kernel.modules for a in d.split("|"))]
    how = ("rebuild the initramfs with " + ", ".join(missing) +
           " (initramfs-tools: list them in /etc/initramfs-tools/modules and run update-initramfs -u; "
           "dracut: dracut -f --add-drivers '" + " ".join(missing) + "')")
    if len(on_disk) < len(missing):
        how = "install a kernel that has " + ", ".join(d for d in missing if d not in on_disk) + ", then " + how
    return [_f("VMF-GUEST-001", "error",
                    f"on {target} the boot disk is on {bus}, and {where} has no {', '.join(missing)}: "
                    "the root file system will not be found", how + alt,
               kernel.initramfs.path if kernel.initramfs else kernel.path,
               fixed_by="repair" if len(on_disk) == len(missing) else None)]


def _check_names(report: GuestReport, target: str, bus: str) -> list[Finding]:
    out = []
    new_prefix = BUS_PREFIX.get(bus, "sd")
    for name in report.disk_names:
        old = name.device_prefix
        if old is None or old == new_prefix or (old == "hd" and new_prefix == "sd"):
            continue
        renamed = f"{name.spec} (becomes /dev/{new_prefix}… on {bus})"
        if name.mountpoint == "root=":
            out.append(_f("VMF-GUEST-010", "error", f"{name.where} boots root={renamed}",
                               "use root=UUID=<uuid of the root file system> in the bootloader configuration",
                               name.where, fixed_by="repair"))
        elif name.mountpoint == "/":
            out.append(_f("VMF-GUEST-011", "error", f"{name.where} mounts / from {renamed}",
                               "name the root file system by UUID= or LABEL= in /etc/fstab", name.where,
                               fixed_by="repair"))
        else:
            out.append(_f("VMF-GUEST-012", "warning", f"{name.where} mounts {name.mountpoint} from {renamed}",
                               "name the file system by UUID= or LABEL= in /etc/fstab", name.where,
                               fixed_by="repair"))
    return out


def _check_nic(report: GuestReport, target: str, spec: TargetSpec, nic: str, drv: GuestDrivers) -> list[Finding]:
    if nic in drv.nic_models:
        return []
    others = [n for n in spec.nics if n != nic and n in drv.nic_models]
    alt = f"; or give the VM a {' or '.join(others)} NIC, which the guest has a driver for" if others else ""
    if report.os.type == "windows":
        return [_f("VMF-GUEST-020", "warning",
                   f"on {target} the NIC is {nic}, and Windows has no driver for it "
                   f"({drv.evidence['nic:' + nic]}): no network", f"install the {nic} driver{alt}")]
    kernel = report.default_kernel
    running = kernel.all_drivers() if kernel else set()
    missing = missing_linux(NIC_DRIVERS[nic], running)
    return [_f("VMF-GUEST-020", "warning",
                    f"on {target} the NIC is {nic}, and the guest has no {', '.join(missing)}: no network",
                    f"install the driver ({', '.join(missing)}){alt}")]


def _check_network(report: GuestReport) -> list[Finding]:
    out = []
    # names a MAC binding pins (a .link file, a udev rule, netplan set-name, ifcfg HWADDR): they follow the NIC
    pinned = {b.interface for b in report.network if b.kind == "mac"}
    for b in report.network:
        if b.kind == "mac":
            # vmferry keeps each NIC's MAC (the source's, or one derived from the VM's identity): a note
            out.append(_f("VMF-GUEST-021", "info",
                               f"{b.where} binds {b.interface} to MAC {b.mac}",
                               "keep the MAC address (vmferry keeps it unless --new-macs), "
                               "or remove the MAC match from the guest's network configuration", b.where))
        elif b.slot_bound and b.interface not in pinned:
            out.append(_f("VMF-GUEST-022", "warning",
                               f"{b.where} configures {b.interface}, a name tied to the NIC's PCI slot",
                               "bind the configuration to the NIC's MAC (vmferry guest repair, and convert --to kvm, do)",
                               b.where, fixed_by="repair"))
    return out


def _check_tools(report: GuestReport, target: str, spec: TargetSpec) -> list[Finding]:
    out = []
    vendors = {t.hypervisor for t in report.tools}
    names = {t.name for t in report.tools}
    fighting = sorted(vendors & CONFLICTING_VENDORS)
    if len(fighting) > 1:
        out.append(_f("VMF-GUEST-030", "warning",
                           "guest tools of several hypervisors are installed (" + ", ".join(fighting) + "); "
                           "their time sync and balloon services fight",
                           "remove the tools of every hypervisor but the target's"))
    if {"open-vm-tools", "vmware-tools"} <= names:
        out.append(_f("VMF-GUEST-031", "warning", "VMware Tools (tarball) and open-vm-tools are both installed",
                           "uninstall VMware Tools (vmware-uninstall-tools.pl) and keep open-vm-tools"))
    for t in report.tools:
        if t.hypervisor != target and t.name != spec.agent:   # the target's own agent (qemu-guest-agent on
            #                                                   openstack, proxmox) is not another vendor's
            out.append(_f("VMF-GUEST-032", "info", f"{t.name} ({t.hypervisor}) does nothing on {target}",
                               f"remove {t.name} after the move", t.evidence))
    if report.os.type == "linux" and spec.agent not in names:
        out.append(_f("VMF-GUEST-033", "info", f"{spec.agent} is not installed",
                           f"install {spec.agent} for clean shutdown and guest information on {target}"))
    return out


def _check_cloud_init(report: GuestReport, target: str, spec: TargetSpec) -> list[Finding]:
    ci = report.cloud_init
    if not ci or not ci.installed or not ci.datasources:
        return []
    if any(d in spec.datasources for d in ci.datasources):
        return []
    return [_f("VMF-GUEST-040", "warning",
                    f"cloud-init only tries {', '.join(ci.datasources)} ({ci.where}); none works on {target}",
                    f"add one of {', '.join(spec.datasources)} to datasource_list", ci.where)]


# targets that hand the OVF environment to the guest on a CD-ROM (vmware uses guestinfo instead)
ENV_ON_CDROM = tuple(t.name for t in TARGET_ROWS.values() if t.boot_buses and t.env_transports[:1] == ("iso",))
CDROM_ENV_DRIVERS = ("sr_mod", "cdrom", "isofs")


def _check_env_cdrom(report: GuestReport, target: str) -> list[Finding]:
    """cloud-init's ds-identify looks for the environment's CD-ROM (/dev/sr0, label OVF ENV) early, before
    udev has loaded sr_mod from the root file system: the drivers must be built in or in the initramfs."""
    ci = report.cloud_init
    kernel = report.default_kernel
    if target not in ENV_ON_CDROM or not ci or not ci.installed or kernel is None:
        return []
    missing = [d for d in CDROM_ENV_DRIVERS if d not in kernel.boot_drivers()]
    if not missing:
        return []
    absent = [d for d in missing if d not in kernel.modules]
    where = kernel.initramfs.path if kernel.initramfs else kernel.path
    if absent:
        return [_f("VMF-GUEST-041", "warning",
                   f"on {target} the OVF environment comes on a CD-ROM, and kernel {kernel.version} has no "
                   f"{', '.join(absent)}: cloud-init will not read it (no network settings, no host name)",
                   "install a kernel with " + ", ".join(absent) + ", or deliver the settings another way", where)]
    return [_f("VMF-GUEST-041", "warning",
               f"on {target} the OVF environment comes on a CD-ROM, and {', '.join(missing)} are not in the "
               f"initramfs of kernel {kernel.version}: the CD-ROM appears after cloud-init has looked for it, "
               "so the environment (network settings, host name) is not read",
               "add " + ", ".join(missing) + " to the initramfs (vmferry guest repair does)", where,
               fixed_by="repair")]


def _check_firmware(report: GuestReport, target: str) -> list[Finding]:
    if report.firmware == "uefi":
        return [_f("VMF-GUEST-050", "info", "the guest boots with UEFI only",
                        "give the VM UEFI firmware (OVMF on kvm, generation 2 on hyperv, efi on vmware)")]
    if report.firmware == "unknown" and report.os.type == "linux":
        return [_f("VMF-GUEST-051", "info", "the firmware the guest needs could not be determined",
                        "check the partition table: GPT with an EFI system partition means UEFI")]
    return []


def readiness(report: GuestReport, target: str, *, bus: str | None = None, nic: str | None = None) -> Readiness:
    """Readiness of the guest for ``target``, with its disk on ``bus`` and its NIC of model ``nic``."""
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r} (one of {', '.join(TARGETS)})")
    spec = TARGETS[target]
    bus = bus or spec.bus
    nic = nic or spec.nic
    if bus not in BUS_DRIVERS:
        raise UsageError(f"unknown disk bus {bus!r} (one of {', '.join(BUS_DRIVERS)})")
    if nic not in NIC_DRIVERS:
        raise UsageError(f"unknown NIC model {nic!r} (one of {', '.join(NIC_DRIVERS)})")
    drv = guest_drivers(report)
    findings: list[Finding] = []
    if report.os.type not in ("linux", "windows"):
        findings.append(_f("VMF-GUEST-060", "warning", f"{report.os.type} guests are not checked",
                                "check drivers and configuration by hand"))
    else:
        findings += _check_disk(report, target, spec, bus, drv)
        findings += _check_nic(report, target, spec, nic, drv)
        if report.os.type == "linux":
            findings += _check_names(report, target, bus)
            findings += _check_network(report)
            findings += _check_cloud_init(report, target, spec)
            findings += _check_env_cdrom(report, target)
        findings += _check_tools(report, target, spec)
        findings += _check_firmware(report, target)
    if report.os.type == "windows":
        findings.append(_f("VMF-GUEST-061", "info", "Windows: " + "; ".join(report.not_checked) +
                                " are not checked", "verify these by hand before the move"))
    severities = {f.severity for f in findings}
    status = WILL_NOT_BOOT if "error" in severities else NEEDS_FIXES if "warning" in severities else READY
    return Readiness(target, bus, nic, status, findings)


def readiness_matrix(report: GuestReport, *, buses: dict[str, str] | None = None,
                     nics: dict[str, str] | None = None) -> dict[str, Readiness]:
    """Readiness for every target in :data:`TARGETS` (bus/NIC per target overridable)."""
    buses, nics = buses or {}, nics or {}
    return {t: readiness(report, t, bus=buses.get(t), nic=nics.get(t)) for t in TARGETS}
