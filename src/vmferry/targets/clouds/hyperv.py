"""Hyper-V: VHDX disks and ``<stem>.create-vm.ps1``, the PowerShell script that creates the VM (Hyper-V
imports no OVF; its own export format is not documented for producers).

The generation follows the firmware: UEFI (the source's, or a guest that boots with UEFI only) is
generation 2, which boots from the synthetic SCSI controller (the guest needs hv_storvsc: storvsc on
Windows) and has Secure Boot on by default with the ``MicrosoftWindows`` template: a Linux guest gets
the ``MicrosoftUEFICertificateAuthority`` template when its source booted securely, Secure Boot off
otherwise. BIOS is generation 1: the boot disk on IDE 0:0 (ata_piix / intelide), up to three more disks
on IDE, the rest on SCSI. NICs are synthetic (hv_netvsc / netvsc) or, on generation 1 for a guest
without hv_netvsc, legacy network adapters (an emulated DEC 21140).

The script (cmdlets of the Hyper-V module: ``New-VM``, ``Set-VMProcessor``, ``Set-VMMemory``,
``Set-VMFirmware``, ``Add-VMHardDiskDrive``, ``Add-VMNetworkAdapter``, ``Set-VMNetworkAdapter``) takes
``-SwitchName`` and ``-VhdFolder`` (default: the script's own folder) and stops at the first error.
"""

from __future__ import annotations

from vmferry.findings import Finding
from vmferry.targets.clouds.base import CloudJob

IDE_SLOTS = ((0, 0), (0, 1), (1, 0), (1, 1))     # Gen 1: two IDE controllers, two locations each


def ps(text: str) -> str:
    """A PowerShell single-quoted string literal (a quote is doubled; nothing is expanded inside)."""
    return "'" + str(text).replace("'", "''").replace("\u2018", "\u2018\u2018").replace("\u2019", "\u2019\u2019") + "'"


def generation(job: CloudJob) -> int:
    return 2 if job.choice.firmware == "efi" else 1


def write(job: CloudJob) -> None:
    gen = generation(job)
    drv = job.drivers if job.drivers is not None and job.drivers.checked else None
    c = job.choice
    # the boot bus is the generation's, whatever the guest prefers
    c.bus, c.bus_value = ("hyperv", "SCSI") if gen == 2 else ("ide", "IDE")
    c.why = f"generation {gen} ({'UEFI' if gen == 2 else 'BIOS'}) boots from {c.bus_value}; " + c.why
    if drv is not None and c.bus not in drv.storage_buses:
        job.finding("VMF-HYV-001", "error", f"will not boot on hyperv: generation {gen} boots from {c.bus_value}, "
                    f"and the guest cannot ({drv.evidence.get(c.bus, 'no driver')})",
                    "add hv_storvsc (Linux: vmferry guest repair --for hyperv) or the storvsc driver (Windows) "
                    "before moving" if gen == 2 else "add ata_piix to the initramfs before moving")
    synthetic = drv is None or "hyperv" in drv.nic_models
    legacy = not synthetic and gen == 1
    if not synthetic:
        job.finding("VMF-HYV-002", "warning", "the guest has no Hyper-V network driver (hv_netvsc / netvsc): "
                    + ("its NICs are legacy network adapters (DEC 21140, generation 1 only)" if legacy
                       else "a generation 2 VM has synthetic NICs only: no network"),
                    "install the Hyper-V integration drivers (Linux: hv_netvsc; vmferry guest repair --for hyperv)")
    c.nic, c.nic_value = ("hyperv", "Legacy") if legacy else ("hyperv", "Synthetic")
    windows = (getattr(getattr(job.guest, "os", None), "type", None) or job.vm.os.family) == "windows"
    vcpus, *_ = job.cpu
    memory = job.memory_mib or 1024
    name = job.options.get("image_name") or job.vm.name or job.vm.id
    switch = job.options.get("switch") or "Default Switch"
    lines = [
        "# Creates the Hyper-V VM converted by vmferry; run in an elevated PowerShell on the Hyper-V host.",
        f"# Generation {gen} ({'UEFI' if gen == 2 else 'BIOS'}): {c.why}",
        "[CmdletBinding()]",
        f"param([string]$SwitchName = {ps(switch)}, [string]$VhdFolder = $PSScriptRoot)",
        "$ErrorActionPreference = 'Stop'",
        f"$Name = {ps(name)}",
    ]
    disks = job.disks
    boot = disks[0] if disks else None
    new_vm = f"New-VM -Name $Name -Generation {gen} -MemoryStartupBytes {memory}MB -SwitchName $SwitchName"
    new_vm += f" -VHDPath (Join-Path $VhdFolder {ps(boot.href)})" if boot else " -NoVHD"
    lines += [f"$vm = {new_vm}",
              f"Set-VMProcessor -VMName $Name -Count {vcpus}",
              "Set-VMMemory -VMName $Name -DynamicMemoryEnabled $false"]
    job.change("mapped", "generation", f"{gen} ({'UEFI' if gen == 2 else 'BIOS'})")
    job.change("mapped", "CPUs and memory", f"{vcpus} vCPUs, {memory} MiB (static memory)")
    slots = list(IDE_SLOTS[1:])
    for d in disks[1:]:
        if gen == 1 and slots:
            ctl, loc = slots.pop(0)
            lines.append(f"Add-VMHardDiskDrive -VMName $Name -ControllerType IDE -ControllerNumber {ctl} "
                         f"-ControllerLocation {loc} -Path (Join-Path $VhdFolder {ps(d.href)})")
            job.change("mapped", f"disk {d.href}", f"IDE {ctl}:{loc}")
        else:
            lines.append(f"Add-VMHardDiskDrive -VMName $Name -ControllerType SCSI -Path (Join-Path $VhdFolder "
                         f"{ps(d.href)})")
            job.change("mapped", f"disk {d.href}", "SCSI")
    if gen == 2:
        if job.vm.firmware.secure_boot or (windows and c.secure_boot):
            template = "MicrosoftWindows" if windows else "MicrosoftUEFICertificateAuthority"
            lines.append(f"Set-VMFirmware -VMName $Name -EnableSecureBoot On -SecureBootTemplate {template}")
            job.change("mapped", "secure boot", f"on, template {template}")
        else:
            lines.append("Set-VMFirmware -VMName $Name -EnableSecureBoot Off")
            job.change("mapped", "secure boot", "off (the source does not boot securely)")
        lines.append("Set-VMFirmware -VMName $Name -FirstBootDevice (Get-VMHardDiskDrive -VMName $Name | "
                     "Select-Object -First 1)")
    nics = job.vm.nics_for(job.profile)
    if legacy:   # New-VM's adapter is synthetic: replaced by legacy ones
        lines.append("Get-VMNetworkAdapter -VMName $Name | Remove-VMNetworkAdapter")
    for i, n in enumerate(nics):
        adapter = f"vmferry-nic{i}"
        if i == 0 and not legacy:
            lines.append(f"Get-VMNetworkAdapter -VMName $Name | Rename-VMNetworkAdapter -NewName {ps(adapter)}")
        else:
            lines.append(f"Add-VMNetworkAdapter -VMName $Name -Name {ps(adapter)} -SwitchName $SwitchName"
                         + (" -IsLegacy $true" if legacy else ""))
        if n.mac:
            mac = n.mac.replace(":", "").replace("-", "").upper()
            lines.append(f"Set-VMNetworkAdapter -VMName $Name -Name {ps(adapter)} -StaticMacAddress {ps(mac)}")
        job.change("mapped", f"NIC {n.index}", f"{n.source_model or n.model} -> {c.nic_value.lower()} network "
                   f"adapter on switch {switch}" + (f", MAC {n.mac}" if n.mac else ""))
    if not nics:
        lines.append("Get-VMNetworkAdapter -VMName $Name | Remove-VMNetworkAdapter")
    lines.append("Write-Output \"created VM $Name (generation " + str(gen) + ")\"")
    job.write_text(f"{job.stem}.create-vm.ps1", "\r\n".join(lines) + "\r\n", "PowerShell script creating the "
                   f"Hyper-V VM (generation {gen})")
    for drive in job.vm.drives:
        job.change("dropped", f"{drive.kind} drive {drive.instance_id}", "attach media on the host when needed")


def rules(portable, vm, row) -> list[Finding]:
    out = []
    if vm.firmware.kind == "efi":
        out.append(Finding("VMF-HYV-003", "info", "UEFI firmware: written as a generation 2 VM, which boots from "
                           "SCSI only (the guest needs hv_storvsc / storvsc)", vm.id, "generation 2", "convert"))
    return out
