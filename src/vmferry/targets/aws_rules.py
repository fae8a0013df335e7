"""What EC2 VM Import/Export refuses or changes, as findings (``check --target aws``, ``convert --to aws``).

The facts are data (:data:`AWS`), from the *VM Import/Export User Guide* ("Limitations for resources
being imported", "Configurations for your VM"): an MBR-partitioned boot volume holds at most 2 TiB
(GPT with UEFI beyond); volumes at most 4 TiB and at most 21 of them per import are the targets table's
(``aws`` row: ``limits``, ``cloud.max_disks``); the instance gets one network interface; the root volume
needs free space for the drivers VM Import installs (Linux 250 MiB, Windows 6 GiB); VMware Tools are to
be uninstalled before the export; the boot mode is ``legacy-bios`` (BIOS/MBR) or ``uefi``.

:func:`aws_findings` judges a system from the descriptor (disk sizes, volumes, NICs, firmware) and,
when the guest was inspected (:class:`vmferry.guest.model.GuestReport`), from the guest (partition
table, free space, tools).
"""

from __future__ import annotations

from dataclasses import dataclass

from vmferry.findings import Finding
from vmferry.portable import PortableVM

TIB, GIB, MIB = 1 << 40, 1 << 30, 1 << 20


@dataclass(frozen=True)
class AwsImportFacts:
    max_mbr_boot_bytes: int = 2 * TIB
    nics_after_import: int = 1
    min_free_linux: int = 250 * MIB
    min_free_windows: int = 6 * GIB
    boot_modes: tuple[str, ...] = ("legacy-bios", "uefi")


AWS = AwsImportFacts()


def boot_mode(vm: PortableVM, report=None) -> str:
    """``uefi`` when the source firmware is EFI or the inspected guest boots with UEFI only, else
    ``legacy-bios``."""
    if vm.firmware.kind == "efi" or (report is not None and report.firmware == "uefi"):
        return "uefi"
    return "legacy-bios"


def _f(rule: str, severity: str, message: str, where: str, fix: str | None = None,
       fixed_by: str | None = None) -> Finding:
    return Finding(rule, severity, message, where, fix, fixed_by)


def descriptor_findings(vm: PortableVM, profile: str | None = None) -> list[Finding]:
    """What the descriptor alone says VM Import/Export refuses or changes. (At most 21 volumes and 4 TiB per
    volume are the targets table's: VMF-CLOUD-002 and VMF-DISK-007.)"""
    out: list[Finding] = []
    disks = vm.disks_for(profile)
    nics = vm.nics_for(profile)
    if len(nics) > AWS.nics_after_import:
        out.append(_f("VMF-AWS-002", "warning", f"{len(nics)} NICs: the imported instance gets one network "
                      "interface; the others are not carried over", vm.id,
                      "attach more elastic network interfaces to the instance after the import"))
    boot = disks[0] if disks else None
    if boot is not None and (boot.capacity_bytes or 0) > AWS.max_mbr_boot_bytes and vm.firmware.kind != "efi":
        out.append(_mbr_finding(boot, None))
    return out


def _mbr_finding(disk, table: str | None) -> Finding:
    known = "is MBR-partitioned" if table == "msdos" else "boots with BIOS, so may be MBR-partitioned"
    return _f("VMF-AWS-003", "error" if table == "msdos" else "warning",
              f"boot disk {disk.id} is {(disk.capacity_bytes or 0) >> 30} GiB and {known}: VM Import takes MBR "
              f"boot volumes of at most {AWS.max_mbr_boot_bytes >> 40} TiB", disk.id,
              "shrink the boot volume below 2 TiB, or convert it to GPT and boot with UEFI")


def guest_findings(vm: PortableVM, report, profile: str | None = None) -> list[Finding]:
    """What the inspected guest on the boot disk says: an MBR boot volume over 2 TiB, too little free space
    on the system volume, VMware tools to remove."""
    out: list[Finding] = []
    disks = vm.disks_for(profile)
    if disks and (disks[0].capacity_bytes or 0) > AWS.max_mbr_boot_bytes and report.partition_table == "msdos":
        out.append(_mbr_finding(disks[0], "msdos"))
    windows = report.os.type == "windows"
    minimum = AWS.min_free_windows if windows else AWS.min_free_linux
    free = report.free_space.get("/")
    if free is not None and free < minimum:
        out.append(_f("VMF-AWS-005", "error", f"the guest's system volume has {free >> 20} MiB free: VM Import "
                      f"needs {minimum >> 20} MiB there to install its drivers", "/",
                      "free space in the guest (or grow its disk and file system) before the export"))
    vmware = [t for t in report.tools if t.hypervisor == "vmware"]
    if vmware:
        names = ", ".join(sorted({t.name for t in vmware}))
        out.append(_f("VMF-AWS-006", "warning", f"VMware tools are installed ({names}): VM Import/Export asks for "
                      "them to be uninstalled before the export", vmware[0].evidence,
                      "uninstall them in the source VM; 'vmferry guest repair --for kvm' masks their services"))
    return out


def boot_mode_finding(vm: PortableVM, report=None) -> Finding:
    mode = boot_mode(vm, report)
    return _f("VMF-AWS-007", "info", f"boot mode {mode} (from the {'inspected guest' if report else 'source'} "
              "firmware): the import-image request states it", vm.id)


def aws_findings(vm: PortableVM, report=None, *, profile: str | None = None) -> list[Finding]:
    """Every AWS finding of ``vm``: the descriptor's, the inspected guest's (which knows the partition
    table), and the boot mode."""
    out = descriptor_findings(vm, profile)
    if report is not None:
        guest = guest_findings(vm, report, profile)
        if report.partition_table in ("gpt", "msdos"):   # known: the guest's answer replaces the guess
            out = [f for f in out if f.rule != "VMF-AWS-003"]
        out += guest
    return out + [boot_mode_finding(vm, report)]
