"""What Azure requires of an uploaded VHD and its guest, as findings (``check --target azure``,
``convert --to azure``).

From Microsoft's *Prepare a Linux/Windows VHD for Azure* and *Generation 2 VMs on Azure*: the disk is a
**fixed** VHD (not VHDX, not dynamic) whose virtual size is a whole number of MiB and at most 2040 GiB
(the VHD format's limit as Hyper-V and Azure read it); the VM is generation 1 (BIOS, the boot disk on
emulated IDE until the VMBus drivers take it over) or generation 2 (UEFI); a Linux guest needs the
Hyper-V drivers ``hv_vmbus`` and ``hv_storvsc`` in its initramfs (the OS disk is a VMBus SCSI disk once
the kernel runs) and ``hv_netvsc`` for its network. Facts are data (:data:`AZURE`).
"""

from __future__ import annotations

from dataclasses import dataclass

from vmferry.findings import Finding
from vmferry.portable import PortableVM

MIB, GIB = 1 << 20, 1 << 30


@dataclass(frozen=True)
class AzureFacts:
    size_align: int = MIB
    max_vhd_bytes: int = 2040 * GIB
    boot_drivers: tuple[str, ...] = ("hv_vmbus", "hv_storvsc")   # in the initramfs (or built in)
    net_drivers: tuple[str, ...] = ("hv_netvsc",)                 # anywhere in the kernel's modules
    generations: tuple[tuple[str, int], ...] = (("bios", 1), ("efi", 2))


AZURE = AzureFacts()
REPAIR_FIX = "vmferry guest repair --for hyperv (adds the Hyper-V drivers to the initramfs)"


def generation(vm: PortableVM, report=None) -> int:
    """2 when the source firmware is EFI or the inspected guest boots with UEFI only, else 1."""
    efi = vm.firmware.kind == "efi" or (report is not None and report.firmware == "uefi")
    return dict(AZURE.generations)["efi" if efi else "bios"]


def aligned_size(size: int) -> int:
    """``size`` rounded up to the whole MiB Azure requires."""
    return -(-size // AZURE.size_align) * AZURE.size_align


def azure_findings(vm: PortableVM, report=None, *, profile: str | None = None) -> list[Finding]:
    """The Azure findings of ``vm`` (and of its inspected boot-disk guest ``report``)."""
    out: list[Finding] = []
    disks = vm.disks_for(profile) if profile is not None else vm.disks
    for d in disks:
        size = d.capacity_bytes or 0
        if size > AZURE.max_vhd_bytes:
            out.append(Finding("VMF-AZURE-003", "error", f"disk {d.id} is {size >> 30} GiB: a VHD Azure takes holds at "
                               f"most {AZURE.max_vhd_bytes >> 30} GiB", d.id,
                               "move data off the disk, or copy it to a managed disk larger than 2 TiB after the "
                               "import"))
        elif size % AZURE.size_align:
            out.append(Finding("VMF-AZURE-004", "warning", f"disk {d.id} is {size} bytes, not a whole number of MiB "
                               "(Azure refuses such a VHD)", d.id,
                               f"convert rounds the VHD up to {aligned_size(size)} bytes", "convert"))
    gen = generation(vm, report)
    out.append(Finding("VMF-AZURE-002", "info", f"generation {gen} ({'UEFI' if gen == 2 else 'BIOS'}, from the "
                       f"{'inspected guest' if report else 'source'} firmware)", vm.id))
    if report is not None:
        out += hyperv_driver_findings(report)
    return out


def hyperv_driver_findings(report) -> list[Finding]:
    """VMF-AZURE-001 when the default Linux kernel cannot boot or network on Hyper-V/Azure: a VMBus driver
    missing from its initramfs (storage) or from the kernel (network)."""
    if report.os.type != "linux":
        return []
    kernel = report.default_kernel
    if kernel is None:
        return []
    boot = kernel.boot_drivers()
    no_boot = [m for m in AZURE.boot_drivers if m not in boot]
    no_net = [m for m in AZURE.net_drivers if m not in kernel.all_drivers()]
    if not no_boot and not no_net:
        return []
    absent = [m for m in no_boot + no_net if m not in set(kernel.modules) | set(kernel.builtin)]
    parts = ([f"{', '.join(no_boot)} neither built in nor in its initramfs (the disk)"] if no_boot else []) + \
        ([f"{', '.join(no_net)} not among its modules (the network)"] if no_net else [])
    how = (f"the kernel has no {', '.join(absent)} module: install a kernel built with Hyper-V support "
           f"(CONFIG_HYPERV...), then {REPAIR_FIX}") if absent else REPAIR_FIX
    return [Finding("VMF-AZURE-001", "error", f"will not boot on Azure: kernel {kernel.version}: {'; '.join(parts)}",
                    kernel.initramfs.path if kernel.initramfs else kernel.path, how,
                    None if absent else "repair")]
