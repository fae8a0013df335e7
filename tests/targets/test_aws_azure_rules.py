"""The AWS and Azure rules (docs/rules.md VMF-AWS-*, VMF-AZURE-*): judged on systems and guest reports
built here, then on the real legacy test guest inspected by libguestfs (open-vm-tools installed, no
Hyper-V modules on disk, 60 MiB free on /)."""

from __future__ import annotations

import pytest

from vmferry.guest.model import GuestReport, Initramfs, Kernel, OsInfo, Tool
from vmferry.portable import Disk, Firmware, Nic, PortableVM
from vmferry.targets.aws_rules import aws_findings, boot_mode
from vmferry.targets.azure_rules import azure_findings, generation

TIB, GIB, MIB = 1 << 40, 1 << 30, 1 << 20


def vm(disks: list[int], nics: int = 1, firmware: str = "bios") -> PortableVM:
    return PortableVM("vm1", disks=[Disk(f"d{i}", size, file_id=f"f{i}") for i, size in enumerate(disks)],
                      nics=[Nic(i, "VM Network") for i in range(nics)], firmware=Firmware(firmware))


def guest(*, table="msdos", firmware="bios", free=None, tools=(), boot=(), on_disk=(), os_type="linux"):
    initramfs = Initramfs("/boot/initrd.img-6.1", "6.1", tuple(boot), tuple(boot))
    kernel = Kernel("6.1", "/boot/vmlinuz-6.1", (), tuple(on_disk), 100, initramfs, default=True)
    return GuestReport("disk.img", OsInfo(os_type, "debian", "Debian", "12", "x86_64"), firmware, table, "grub2",
                       kernels=[kernel], tools=list(tools), free_space={} if free is None else {"/": free})


def rules(findings) -> dict[str, str]:
    return {f.rule: f.severity for f in findings}


def test_aws_descriptor_rules():
    ok = rules(aws_findings(vm([20 * GIB])))
    assert ok == {"VMF-AWS-007": "info"}
    assert rules(aws_findings(vm([GIB] * 3, nics=3)))["VMF-AWS-002"] == "warning"
    big = aws_findings(vm([3 * TIB, 3 * TIB]))
    assert rules(big)["VMF-AWS-003"] == "warning"           # not inspected: a BIOS guest may be MBR
    assert "VMF-AWS-003" not in rules(aws_findings(vm([3 * TIB], firmware="efi")))   # UEFI: GPT
    assert rules(aws_findings(vm([3 * TIB]), guest(table="msdos")))["VMF-AWS-003"] == "error"
    assert "VMF-AWS-003" not in rules(aws_findings(vm([3 * TIB]), guest(table="gpt", firmware="uefi")))


def test_aws_limits_of_the_table_are_checked_by_the_framework():
    """21 volumes and 4 TiB per volume are the aws row's (VMF-CLOUD-002, VMF-DISK-007), not repeated."""
    from vmferry.portable import PortablePackage
    from vmferry.tables.targets import TARGETS
    from vmferry.targets.clouds.rules import cloud_findings

    found = {f.rule for f in cloud_findings(PortablePackage("p", [vm([GIB] * 22)]), TARGETS["aws"])}
    assert "VMF-CLOUD-002" in found
    assert TARGETS["aws"].limits.max_disk_bytes == 4 * TIB and TARGETS["azure"].limits.max_disk_bytes == 2040 * GIB
    assert {f.rule for f in cloud_findings(PortablePackage("p", [vm([GIB + 4096])]), TARGETS["azure"])} >= \
        {"VMF-CLOUD-003"}


def test_aws_boot_mode_and_guest_rules():
    assert boot_mode(vm([GIB])) == "legacy-bios" and boot_mode(vm([GIB], firmware="efi")) == "uefi"
    assert boot_mode(vm([GIB]), guest(firmware="uefi", table="gpt")) == "uefi"
    tools = [Tool("open-vm-tools", "vmware", "package open-vm-tools 12.2")]
    found = rules(aws_findings(vm([GIB]), guest(free=100 * MIB, tools=tools)))
    assert found["VMF-AWS-005"] == "error" and found["VMF-AWS-006"] == "warning"
    assert "VMF-AWS-005" not in rules(aws_findings(vm([GIB]), guest(free=300 * MIB)))
    windows = guest(free=3 * GIB, os_type="windows")
    assert rules(aws_findings(vm([GIB]), windows))["VMF-AWS-005"] == "error"     # Windows needs 6 GiB


def test_azure_rules():
    assert generation(vm([GIB])) == 1 and generation(vm([GIB], firmware="efi")) == 2
    assert generation(vm([GIB]), guest(firmware="uefi", table="gpt")) == 2
    assert rules(azure_findings(vm([GIB]))) == {"VMF-AZURE-002": "info"}
    hv = ("hv_vmbus", "hv_storvsc", "hv_netvsc")
    # modules on disk, not in the initramfs: guest repair --for hyperv fixes it
    missing = next(f for f in azure_findings(vm([GIB]), guest(on_disk=hv)) if f.rule == "VMF-AZURE-001")
    assert missing.fixed_by == "repair" and "vmferry guest repair --for hyperv" in missing.fix
    assert "hv_vmbus, hv_storvsc" in missing.message
    # no such modules at all: a kernel with Hyper-V support is needed first
    absent = next(f for f in azure_findings(vm([GIB]), guest()) if f.rule == "VMF-AZURE-001")
    assert absent.fixed_by is None and "CONFIG_HYPERV" in absent.fix
    assert "VMF-AZURE-001" not in rules(azure_findings(vm([GIB]), guest(boot=hv, on_disk=hv)))
    assert azure_findings(vm([GIB]), guest(os_type="windows"))[1:] == []   # Windows: inbox drivers


@pytest.mark.slow
def test_rules_on_the_real_legacy_guest():
    """The legacy test guest as libguestfs reads it: open-vm-tools, no Hyper-V modules, ~60 MiB free."""
    from tests.guestimage import build
    from vmferry.guest import inspect_image

    report = inspect_image(build.build("legacy").image)
    assert 0 < report.free_space["/"] < 250 * MIB
    aws = rules(aws_findings(vm([96 * MIB]), report))
    assert aws["VMF-AWS-005"] == "error" and aws["VMF-AWS-006"] == "warning"
    azure = [f for f in azure_findings(vm([96 * MIB]), report) if f.rule == "VMF-AZURE-001"]
    assert azure and azure[0].severity == "error" and azure[0].fixed_by is None
