"""What the guest can drive: the typed answer that targets, conversion and repairs ask readiness for.

    from vmferry.guest.drivers import guest_drivers, pick_bus, pick_nic

    drv = guest_drivers(report)            # GuestDrivers of the default kernel (Linux) or of Windows
    drv.storage_buses                      # frozenset[Bus]: buses the guest can boot its disk from
    drv.nic_models                         # frozenset[NicModel]: NIC models it has a driver for
    drv.evidence["sata"]                   # why: "ahci, sd_mod in the initramfs" / "service storahci Start=0"
    pick_bus(drv, ("virtio", "sata", "ide"))   # the first of a preference order the guest can boot from

The answer is about drivers only: a bus is in ``storage_buses`` when every driver the boot disk on that
bus needs is usable *before* the root file system is mounted (Linux: built into the kernel or in its
initramfs; Windows: the driver's service is registered boot-start, ``Start=0``, and its ``.sys`` file is
in ``System32\\drivers``). A NIC model is in ``nic_models`` when its driver is usable once the system
runs (Linux: built in, in ``/lib/modules/<version>`` or in the initramfs; Windows: the driver's service
is registered, its file is present, or the DriverDatabase has a driver package for the device's PCI id).

:func:`guest_drivers_per_kernel` gives one answer per installed Linux kernel (the default first);
:func:`guest_drivers` the one that boots. Preference orders come from the caller (the targets table,
:mod:`vmferry.tables.targets`); this module never decides what a target offers.

For Windows without a readable SYSTEM hive (``report.windows_services`` empty) the answer falls back
to the driver files alone and says so in ``evidence`` and ``boot_start_checked``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from vmferry.guest.model import GuestReport

Bus = Literal["virtio", "virtio-scsi", "sata", "ide", "lsilogic", "lsisas1068", "pvscsi", "xen", "hyperv", "nvme"]
NicModel = Literal["virtio", "e1000e", "e1000", "rtl8139", "vmxnet3", "pcnet32", "xen", "hyperv", "gvnic", "ena"]
BUSES: tuple[Bus, ...] = ("virtio", "virtio-scsi", "sata", "ide", "lsilogic", "lsisas1068", "pvscsi", "xen",
                          "hyperv", "nvme")
NIC_MODELS: tuple[NicModel, ...] = ("virtio", "e1000e", "e1000", "rtl8139", "vmxnet3", "pcnet32", "xen", "hyperv",
                                    "gvnic", "ena")

# Linux: bus -> drivers needed before the root file system is mounted. Each entry is one driver, or
# alternatives separated by "|" (any one of them will do).
BUS_DRIVERS: dict[str, tuple[str, ...]] = {
    "virtio": ("virtio_pci", "virtio_blk"),
    "virtio-scsi": ("virtio_pci", "virtio_scsi", "sd_mod"),
    "sata": ("ahci", "sd_mod"),
    "ide": ("ata_piix", "sd_mod"),
    "lsilogic": ("mptspi", "sd_mod"),
    "lsisas1068": ("mptsas", "sd_mod"),
    "pvscsi": ("vmw_pvscsi", "sd_mod"),
    "xen": ("xen_blkfront",),
    "hyperv": ("hv_vmbus", "hv_storvsc", "sd_mod"),
    "nvme": ("nvme",),
}
NIC_DRIVERS: dict[str, tuple[str, ...]] = {
    "virtio": ("virtio_pci", "virtio_net"), "e1000": ("e1000",), "e1000e": ("e1000e",),
    "rtl8139": ("8139cp|8139too",), "vmxnet3": ("vmxnet3",), "pcnet32": ("pcnet32",),
    "xen": ("xen_netfront",), "hyperv": ("hv_vmbus", "hv_netvsc"), "gvnic": ("gve",),
    "ena": ("ena",),
}


@dataclass(frozen=True, slots=True)
class WindowsDriver:
    """One Windows driver: the service names it registers and the ``.sys`` files it installs."""
    services: tuple[str, ...]
    files: tuple[str, ...]
    pci_ids: tuple[str, ...] = ()       # DriverDatabase\DeviceIds keys (lower case) of the device it drives
    note: str = ""


W = WindowsDriver
# Windows: bus -> the storage drivers that can boot it (any one of them); Start=0 is required.
WINDOWS_BUS: dict[str, tuple[WindowsDriver, ...]] = {
    "virtio": (W(("viostor",), ("viostor.sys",), ("pci\\ven_1af4&dev_1001", "pci\\ven_1af4&dev_1042"),
                 "virtio-win"),),
    "virtio-scsi": (W(("vioscsi",), ("vioscsi.sys",), ("pci\\ven_1af4&dev_1004", "pci\\ven_1af4&dev_1048"),
                      "virtio-win"),),
    "sata": (W(("storahci",), ("storahci.sys",), ("pci\\cc_010601",), "inbox since Windows 8 / 2012"),
             W(("msahci",), ("msahci.sys",), ("pci\\cc_010601",), "inbox in Windows Vista, 7, 2008, 2008 R2")),
    "ide": (W(("intelide",), ("intelide.sys",), ("pci\\ven_8086&dev_7010", "pci\\ven_8086&dev_7111"),
              "inbox since Windows 2000 (with atapi/pciide)"),
            W(("atapi",), ("atapi.sys",), (), "inbox; the ATA port driver of every IDE controller")),
    "lsilogic": (W(("lsi_scsi",), ("lsi_scsi.sys",), ("pci\\ven_1000&dev_0030",),
                   "inbox in Windows 2008 and later"),),
    "lsisas1068": (W(("lsi_sas",), ("lsi_sas.sys",), ("pci\\ven_1000&dev_0054",), "inbox in Windows 2008 and later"),),
    "pvscsi": (W(("pvscsi",), ("pvscsi.sys",), ("pci\\ven_15ad&dev_07c0",), "VMware Tools; inbox since 2022"),),
    "xen": (W(("xenvbd",), ("xenvbd.sys",), (), "Xen PV drivers"),),
    "hyperv": (W(("storvsc",), ("storvsc.sys",), (), "inbox in Windows 2008 R2 and later"),),
    "nvme": (W(("stornvme",), ("stornvme.sys",), ("pci\\cc_010802",), "inbox since Windows 8.1 / 2012 R2"),),
}
# Windows: NIC model -> drivers (any one of them).
WINDOWS_NIC: dict[str, tuple[WindowsDriver, ...]] = {
    "virtio": (W(("netkvm",), ("netkvm.sys",), ("pci\\ven_1af4&dev_1000", "pci\\ven_1af4&dev_1041"),
                 "virtio-win"),),
    "e1000": (W(("e1g60", "e1g6032e"), ("e1g6032e.sys", "e1g60i32.sys", "e1g6064.sys", "e1000325.sys"),
                ("pci\\ven_8086&dev_100e",), "Intel PRO/1000 (82540EM); inbox in Windows Vista to 2012 R2"),),
    "e1000e": (W(("e1iexpress", "e1express", "e1kexpress"),
                 ("e1i63x64.sys", "e1i65x64.sys", "e1i68x64.sys", "e1k62x64.sys", "e1e6032e.sys"),
                 ("pci\\ven_8086&dev_10d3",), "Intel 82574L; inbox since Windows 8 / 2012"),),
    "rtl8139": (W(("rtl8139",), ("rtl8139.sys",), ("pci\\ven_10ec&dev_8139",), "not inbox since Windows 7"),),
    "vmxnet3": (W(("vmxnet3ndis6", "vmxnet3"), ("vmxnet3n61x64.sys", "vmxnet3.sys"), ("pci\\ven_15ad&dev_07b0",),
                  "VMware Tools"),),
    "pcnet32": (W(("pcnet",), ("pcntpci5.sys",), ("pci\\ven_1022&dev_2000",), "inbox until Windows 7"),),
    "xen": (W(("xennet",), ("xennet.sys",), (), "Xen PV drivers"),),
    "hyperv": (W(("netvsc",), ("netvsc.sys", "netvsc60.sys", "netvsc63.sys"), (),
                 "inbox in Windows 2008 R2 and later"),),
    "gvnic": (W(("gvnic",), ("gvnic.sys",), ("pci\\ven_1ae0&dev_0042",), "Google's gVNIC driver (googet)"),),
    "ena": (W(("ena",), ("ena.sys",), ("pci\\ven_1d0f&dev_ec20",), "AWS's ENA driver"),),
}
BOOT_START = 0


@dataclass(frozen=True)
class GuestDrivers:
    """The storage buses and NIC models one guest OS (one Linux kernel, or one Windows) can drive."""
    os_family: str                              # "linux", "windows", or what libguestfs said (unchecked)
    kernel: str | None                          # Linux kernel version; Windows version ("10.0"); None
    storage_buses: frozenset[Bus]               # buses the boot disk can be on
    nic_models: frozenset[NicModel]             # NIC models with a driver
    evidence: dict[str, str] = field(default_factory=dict)  # bus / model -> what proves it, or what is missing
    boot_start_checked: bool = True             # Windows: False when only driver files were seen
    checked: bool = True                        # False: the OS was not examined (unknown family, no kernel)

    def can_boot_from(self, bus: str) -> bool:
        return bus in self.storage_buses

    def has_nic(self, model: str) -> bool:
        return model in self.nic_models


def pick_bus(drivers: GuestDrivers | None, preference: Iterable[str]) -> str | None:
    """The first bus of ``preference`` the guest can boot from; None when none (or no guest)."""
    if drivers is None:
        return None
    return next((b for b in preference if b in drivers.storage_buses), None)


def pick_nic(drivers: GuestDrivers | None, preference: Iterable[str]) -> str | None:
    """The first NIC model of ``preference`` the guest has a driver for; None when none (or no guest)."""
    if drivers is None:
        return None
    return next((m for m in preference if m in drivers.nic_models), None)


def missing_linux(required: tuple[str, ...], have: set[str]) -> list[str]:
    """The entries of ``required`` (``a|b`` alternatives) that ``have`` does not satisfy."""
    return [r for r in required if not any(alt in have for alt in r.split("|"))]


def _linux(report: GuestReport, kernel) -> GuestDrivers:
    boot = kernel.boot_drivers()
    running = boot | kernel.all_drivers()
    where = "the initramfs" if kernel.initramfs else "the kernel (no initramfs)"
    buses, nics, evidence = set(), set(), {}
    for bus, req in BUS_DRIVERS.items():
        miss = missing_linux(req, boot)
        if not miss:
            buses.add(bus)
            evidence[bus] = f"{', '.join(req)} built in or in {where} of {kernel.version}"
        else:
            evidence[bus] = f"{', '.join(miss)} not in {where} of {kernel.version}"
    for model, req in NIC_DRIVERS.items():
        miss = missing_linux(req, running)
        if not miss:
            nics.add(model)
            evidence[f"nic:{model}"] = f"{', '.join(req)} in kernel {kernel.version}"
        else:
            evidence[f"nic:{model}"] = f"{', '.join(miss)} not in kernel {kernel.version}"
    return GuestDrivers("linux", kernel.version, frozenset(buses), frozenset(nics), evidence)


def _windows(report: GuestReport) -> GuestDrivers:
    files = {f.lower() for f in report.windows_drivers}
    services = {s.name.lower(): s for s in report.windows_services}
    device_ids = {d.lower() for d in report.windows_device_ids}
    hive = bool(services)
    buses, nics, evidence = set(), set(), {}
    for bus, options in WINDOWS_BUS.items():
        why = []
        for drv in options:
            svc = next((services[s] for s in drv.services if s in services), None)
            file = next((f for f in drv.files if f in files), None)
            if hive:
                if svc is not None and svc.start == BOOT_START and (file or not files):
                    buses.add(bus)
                    evidence[bus] = f"service {svc.name} Start=0 (boot)" + (f", {file}" if file else "")
                    break
                why.append(f"service {drv.services[0]} " + ("absent" if svc is None else
                                                             f"Start={svc.start} (not boot)" if svc.start != 0
                                                             else f"without {drv.files[0]}"))
            elif file:
                buses.add(bus)
                evidence[bus] = f"{file} present (boot-start not checked: SYSTEM hive not read)"
                break
            else:
                why.append(f"no {drv.files[0]}")
        else:
            evidence[bus] = "; ".join(why)
    for model, options in WINDOWS_NIC.items():
        for drv in options:
            svc = next((services[s] for s in drv.services if s in services), None)
            file = next((f for f in drv.files if f in files), None)
            staged = next((d for d in drv.pci_ids if d in device_ids), None)
            if svc is not None or file or staged:
                nics.add(model)
                evidence[f"nic:{model}"] = ", ".join(x for x in (
                    svc and f"service {svc.name}", file, staged and f"DriverDatabase {staged}") if x)
                break
        else:
            evidence[f"nic:{model}"] = f"no {options[0].services[0]} service, {options[0].files[0]} or driver package"
    return GuestDrivers("windows", report.os.version or None, frozenset(buses), frozenset(nics), evidence,
                        boot_start_checked=hive)


def guest_drivers_per_kernel(report: GuestReport) -> list[GuestDrivers]:
    """One answer per Linux kernel (the default one first); one for Windows; an unchecked empty answer
    for other OSes and for a Linux guest without a kernel."""
    if report.os.type == "windows":
        return [_windows(report)]
    if report.os.type == "linux" and report.kernels:
        default = report.default_kernel
        return [_linux(report, k) for k in [default, *(k for k in report.kernels if k is not default)]]
    return [GuestDrivers(report.os.type, None, frozenset(), frozenset(), {}, checked=False)]


def guest_drivers(report: GuestReport) -> GuestDrivers:
    """What the guest as it boots by default (default kernel; Windows) can drive."""
    return guest_drivers_per_kernel(report)[0]
