"""The typed readiness interface (vmferry.guest.drivers) and the KVM choices made from it, on typed inputs."""

from __future__ import annotations

import pytest

from vmferry.guest.drivers import GuestDrivers, guest_drivers, guest_drivers_per_kernel, pick_bus, pick_nic
from vmferry.guest.model import GuestReport, Initramfs, Kernel, OsInfo, WindowsService
from vmferry.guest.readiness import readiness
from vmferry.guest.windows import current_control_set, device_ids, dword, parse_reg, reg_string, services
from vmferry.portable import PortableVM
from vmferry.targets.kvm import choose_bus, choose_nic


def _linux(boot=(), disk=(), *, extra_kernel: Kernel | None = None) -> GuestReport:
    initrd = Initramfs("/boot/initrd.img-6.1", "6.1", tuple(sorted(boot)), tuple(sorted(boot)))
    kernel = Kernel("6.1", "/boot/vmlinuz-6.1", (), tuple(sorted(disk)), len(disk), initrd, default=True)
    kernels = [kernel] + ([extra_kernel] if extra_kernel else [])
    return GuestReport("disk", OsInfo("linux", "debian", "Debian 12", "12", "x86_64"), "bios", "msdos", "grub2",
                       kernels=kernels)


def _windows(services_=(), files=(), ids=(), version="10.0") -> GuestReport:
    return GuestReport("disk", OsInfo("windows", "windows", "Windows Server 2019", version, "x86_64"), "bios",
                       "msdos", "windows", windows_drivers=list(files),
                       windows_services=[WindowsService(n, s) for n, s in services_], windows_device_ids=list(ids))


# an inbox Windows Server 2016+ installed on IDE/SATA: no virtio-win
INBOX = [("storahci", 0), ("intelide", 0), ("atapi", 0), ("LSI_SAS", 0), ("e1iexpress", 3), ("E1G60", 3)]
INBOX_FILES = ["storahci.sys", "intelide.sys", "atapi.sys", "lsi_sas.sys", "e1i63x64.sys", "e1g6032e.sys"]


def test_linux_buses_need_boot_drivers_and_nics_need_any_driver():
    drv = guest_drivers(_linux(boot={"ahci", "sd_mod", "ata_piix"}, disk={"virtio_pci", "virtio_net", "e1000"}))
    assert drv.os_family == "linux" and drv.kernel == "6.1"
    assert drv.storage_buses == {"sata", "ide"}              # virtio modules on disk, not in the initramfs
    assert drv.nic_models == {"virtio", "e1000"}             # NICs load after boot, from /lib/modules
    assert "virtio_blk" in drv.evidence["virtio"] and "initramfs" in drv.evidence["virtio"]
    assert pick_bus(drv, ("virtio", "sata", "ide")) == "sata"
    assert pick_nic(drv, ("virtio", "e1000e", "e1000")) == "virtio"
    rtl = guest_drivers(_linux(disk={"8139too"}))
    assert rtl.nic_models == {"rtl8139"}                     # 8139cp or 8139too: either drives it


def test_one_answer_per_kernel_default_first():
    old = Kernel("5.10", "/boot/vmlinuz-5.10", (), (), 0,
                 Initramfs("/boot/initrd.img-5.10", "5.10", ("virtio_blk", "virtio_pci"), ("virtio_blk", "virtio_pci")))
    answers = guest_drivers_per_kernel(_linux(boot={"ahci", "sd_mod"}, extra_kernel=old))
    assert [a.kernel for a in answers] == ["6.1", "5.10"]
    assert [a.storage_buses for a in answers] == [{"sata"}, {"virtio"}]


def test_windows_without_virtio_gets_sata_and_e1000e():
    drv = guest_drivers(_windows(INBOX, INBOX_FILES))
    assert drv.os_family == "windows" and drv.boot_start_checked
    assert drv.storage_buses == {"sata", "ide", "lsisas1068"}
    assert drv.nic_models == {"e1000e", "e1000"}
    assert "Start=0" in drv.evidence["sata"] and "absent" in drv.evidence["virtio"]
    assert pick_bus(drv, ("virtio", "sata", "ide")) == "sata"
    assert pick_nic(drv, ("virtio", "e1000e", "e1000", "rtl8139")) == "e1000e"


def test_windows_boot_start_is_required_for_the_boot_bus():
    # installed on IDE: storahci registered but demand-start (the classic 0x7B after switching to AHCI)
    drv = guest_drivers(_windows([("storahci", 3), ("intelide", 0), ("atapi", 0)], ["storahci.sys", "atapi.sys"]))
    assert drv.storage_buses == {"ide"} and "Start=3" in drv.evidence["sata"]
    # viostor staged but not boot-start: no virtio disk; netkvm staged in the DriverDatabase only: a NIC
    drv = guest_drivers(_windows([("viostor", 3), ("storahci", 0)], ["viostor.sys", "storahci.sys"],
                                 ids=["pci\\ven_1af4&dev_1000"]))
    assert drv.storage_buses == {"sata"} and "virtio" in drv.nic_models
    assert "DriverDatabase" in drv.evidence["nic:virtio"]


def test_windows_with_virtio_win_gets_virtio():
    drv = guest_drivers(_windows(INBOX + [("viostor", 0), ("netkvm", 3)], INBOX_FILES + ["viostor.sys", "netkvm.sys"]))
    assert pick_bus(drv, ("virtio", "sata", "ide")) == "virtio"
    assert pick_nic(drv, ("virtio", "e1000e", "e1000")) == "virtio"


def test_windows_files_only_is_marked_unchecked():
    drv = guest_drivers(_windows(files=["viostor.sys", "netkvm.sys"]))
    assert not drv.boot_start_checked and drv.storage_buses == {"virtio"}
    assert "not checked" in drv.evidence["virtio"]


def test_unknown_os_is_not_checked():
    bsd = GuestReport("disk", OsInfo("freebsd", "freebsd", "FreeBSD", "14", "x86_64"), "bios", "msdos", "unknown")
    drv = guest_drivers(bsd)
    assert not drv.checked and drv.storage_buses == frozenset() and pick_bus(drv, ("virtio",)) is None
    assert pick_bus(None, ("virtio",)) is None and pick_nic(None, ("virtio",)) is None


def test_kvm_choice_reads_the_typed_interface():
    vm = PortableVM("vm")
    win = _windows(INBOX, INBOX_FILES)
    bus, why, findings = choose_bus(win, "auto", vm)
    assert (bus, findings) == ("sata", []) and "storahci" in why
    assert choose_nic(win, "auto") == "e1000e"
    old_win = _windows([("intelide", 0), ("atapi", 0), ("E1G60", 3)], ["atapi.sys", "e1g6032e.sys"], version="6.1")
    assert choose_bus(old_win, "auto", vm)[0] == "ide" and choose_nic(old_win, "auto") == "e1000"
    virtio = _windows(INBOX + [("viostor", 0), ("netkvm", 3)], INBOX_FILES + ["viostor.sys", "netkvm.sys"])
    assert choose_bus(virtio, "auto", vm)[0] == "virtio" and choose_nic(virtio, "auto") == "virtio"
    nothing = _windows([("atapi", 3)], ["atapi.sys"])
    bus, why, findings = choose_bus(nothing, "auto", vm)
    assert bus == "virtio" and [f.rule for f in findings] == ["VMF-GUEST-001"] and findings[0].severity == "error"
    assert choose_nic(nothing, "auto") == "e1000"
    assert choose_bus(win, "ide", vm)[0] == "ide" and choose_nic(win, "rtl8139") == "rtl8139"


def test_windows_readiness_findings_follow_the_interface():
    win = _windows(INBOX, INBOX_FILES)
    kvm = readiness(win, "kvm")                         # the target's default bus/NIC: virtio
    by_rule = {f.rule: f for f in kvm.reasons}
    assert kvm.status == "will-not-boot" and set(by_rule) == {"VMF-GUEST-001", "VMF-GUEST-020"}
    assert "sata" in by_rule["VMF-GUEST-001"].fix and "e1000" in by_rule["VMF-GUEST-020"].fix
    assert readiness(win, "kvm", bus="sata", nic="e1000e").status == "ready"


def test_typed_answer_is_frozen():
    drv = GuestDrivers("linux", "6.1", frozenset({"sata"}), frozenset({"e1000"}))
    with pytest.raises(AttributeError):
        drv.storage_buses = frozenset()  # type: ignore[misc]
    assert drv.can_boot_from("sata") and not drv.has_nic("virtio")


REG = r"""Windows Registry Editor Version 5.00

[\Select]
"Current"=dword:00000002

[\ControlSet002\Services\viostor]
"Start"=dword:00000000
"ImagePath"=hex(2):53,00,79,00,73,00,74,00,65,00,6d,00,33,00,32,00,5c,00,\
  64,00,72,00,69,00,76,00,65,00,72,00,73,00,5c,00,76,00,69,00,6f,00,73,00,74,00,\
  6f,00,72,00,2e,00,73,00,79,00,73,00,00,00

[\ControlSet002\Services\viostor\Parameters]
"Start"=dword:00000003

[\ControlSet002\Services\Tcpip]
"DisplayName"="TCP/IP"

[\ControlSet002\Services\E1G60]
"Start"=dword:00000003
"ImagePath"="System32\\drivers\\E1G6032E.sys"

[\DriverDatabase\DeviceIds\PCI\VEN_1AF4&DEV_1000]
"netkvm.inf"=hex:01,ff,00,00

[\DriverDatabase\DeviceIds\PCI]
"""


def test_reg_export_parser():
    parsed = parse_reg(REG)
    assert current_control_set(parsed) == "ControlSet002"
    svc = services(parsed, "controlset002")
    assert [(s.name, s.start) for s in svc] == [("e1g60", 3), ("viostor", 0)]
    assert svc[1].image_path == "System32\\drivers\\viostor.sys"
    assert svc[0].image_path == "System32\\drivers\\E1G6032E.sys"
    assert device_ids(parsed) == ["pci\\ven_1af4&dev_1000"]
    assert dword("dword:zz") is None and reg_string(None) == "" and reg_string("hex(2):zz") == ""
    assert current_control_set({}) == "ControlSet001"
