"""What EC2 VM Import/Export refuses or changes, as findings (``check --target aws``, ``convert --to aws``).

The facts are data (:data:`AWS`), from the *VM Import/Export User Guide* ("Limitations for resources
being imported", "Configurations for your VM"): the boot volume must be MBR-partitioned and at most
2 TiB, or GPT (UEFI); data volumes at most 4 TiB; at most 21 volumes per import ("A VM import task fails
for VMs with more than 21 volumes attached"); the instance gets one network interface; the root volume
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
    max_volumes: int = 21
    max_mbr_boot_bytes: int = 2 * TIB
    max_data_bytes: int = 4 * TIB
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


def aws_findings(vm: PortableVM, report=None, *, profile: str | None = None) -> list[Finding]:
    """The VM Import/Export findings of ``vm`` (and of its inspected boot-disk guest ``report``)."""
    out: list[Finding] = []
    disks = vm.disks_for(profile) if profile is not None else vm.disks
    nics = vm.nics_for(profile) if profile is not None else vm.nics
    if len(disks) > AWS.max_volumes:
        out.append(_f("VMF-AWS-001", "error", f"{len(disks)} disks: a VM import task fails with more than "
                      f"{AWS.max_volumes} volumes", vm.id,
                      f"import the first {AWS.max_volumes} with the image and the others with ImportSnapshot"))
    if len(nics) > AWS.nics_after_import:
        out.append(_f("VMF-AWS-002", "warning", f"{len(nics)} NICs: the imported instance gets one network "
                      "interface; the others are not carried over", vm.id,
                      "attach more elastic network interfaces to the instance after the import"))
    table = report.partition_table if report is not None else None
    for i, d in enumerate(disks):
        size = d.capacity_bytes or 0
        if i == 0 and size > AWS.max_mbr_boot_bytes and table != "gpt":
            known = "is MBR-partitioned" if table == "msdos" else "may be MBR-partitioned (not inspected)"
            out.append(_f("VMF-AWS-003", "error" if table == "msdos" else "warning",
                          f"boot disk {d.id} is {size >> 30} GiB and {known}: VM Import takes MBR boot volumes "
                          f"of at most {AWS.max_mbr_boot_bytes >> 40} TiB", d.id,
                          "shrink the boot volume below 2 TiB, or convert it to GPT and boot with UEFI"))
        if i > 0 and size > AWS.max_data_bytes:
            out.append(_f("VMF-AWS-004", "error", f"data disk {d.id} is {size >> 30} GiB: VM Import takes "
                          f"volumes of at most {AWS.max_data_bytes >> 40} TiB", d.id,
                          "split its data over smaller disks, or copy it to an EBS volume after the import"))
    mode = boot_mode(vm, report)
    out.append(_f("VMF-AWS-007", "info", f"boot mode {mode} (from the {'inspected guest' if report else 'source'}"
                  f" firmware): the import-image request states it", vm.id))
    if report is not None:
        out += _guest_findings(report)
    return out


def _guest_findings(report) -> list[Finding]:
    out = []
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
