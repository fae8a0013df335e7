"""What Azure requires of an uploaded VHD and its guest, as findings (``check --target azure``,
``convert --to azure``).

From Microsoft's *Prepare a Linux/Windows VHD for Azure* and *Generation 2 VMs on Azure*: the disk is a
**fixed** VHD (not VHDX, not dynamic) whose virtual size is a whole number of MiB and at most 2040 GiB
(the targets table's ``azure`` row: ``disk_formats``, ``cloud.size_align``, ``limits``); the VM is generation 1 (BIOS, the boot disk on
emulated IDE until the VMBus drivers take it over) or generation 2 (UEFI); a Linux guest needs the
Hyper-V drivers ``hv_vmbus`` and ``hv_storvsc`` in its initramfs (the OS disk is a VMBus SCSI disk once
the kernel runs) and ``hv_netvsc`` for its network. Facts are data (:data:`AZURE`).
"""

from __future__ import annotations

from dataclasses import dataclass

from vmferry.findings import Finding
from vmferry.portable import PortableVM


@dataclass(frozen=True)
class AzureFacts:
    boot_drivers: tuple[str, ...] = ("hv_vmbus", "hv_storvsc")   # in the initramfs (or built in)
    net_drivers: tuple[str, ...] = ("hv_netvsc",)                 # anywhere in the kernel's modules
    generations: tuple[tuple[str, int], ...] = (("bios", 1), ("efi", 2))


AZURE = AzureFacts()
REPAIR_FIX = "vmferry guest repair --for hyperv (adds the Hyper-V drivers to the initramfs)"


def generation(vm: PortableVM, report=None) -> int:
    """2 when the source firmware is EFI or the inspected guest boots with UEFI only, else 1."""
    efi = vm.firmware.kind == "efi" or (report is not None and report.firmware == "uefi")
    return dict(AZURE.generations)["efi" if efi else "bios"]


def generation_finding(vm: PortableVM, report=None) -> Finding:
    gen = generation(vm, report)
    return Finding("VMF-AZURE-002", "info", f"generation {gen} ({'UEFI' if gen == 2 else 'BIOS'}, from the "
                   f"{'inspected guest' if report else 'source'} firmware)", vm.id)


def azure_findings(vm: PortableVM, report=None) -> list[Finding]:
    """The Azure findings of ``vm`` and of its inspected boot-disk guest ``report``. (The whole-MiB size and
    the 2040 GiB limit are the targets table's: VMF-CLOUD-003 and VMF-DISK-007.)"""
    return [generation_finding(vm, report)] + (hyperv_driver_findings(report) if report is not None else [])


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
