"""The typed result of a guest inspection (plain dataclasses, no libguestfs in here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class OsInfo:
    type: str                        # linux, windows, unknown (libguestfs inspect-get-type)
    distro: str                      # debian, rhel, ubuntu, windows, unknown...
    product: str                     # product name as the guest states it
    version: str                     # "12", "9.3", "10.0"
    arch: str                        # x86_64, i386, aarch64...
    hostname: str = ""
    os_release_id: str = ""          # ID= of /etc/os-release when present


@dataclass(frozen=True)
class Initramfs:
    path: str                        # inside the guest
    kernel_version: str | None
    modules: tuple[str, ...]         # every module in it
    drivers: tuple[str, ...]         # the watched drivers among them (vmferry.guest.kmod.WATCHED)
    error: str = ""                  # why it could not be read, when it could not


@dataclass(frozen=True)
class Kernel:
    version: str
    path: str                        # /boot/vmlinuz-<version>
    builtin: tuple[str, ...]         # watched drivers built into the kernel (=y / modules.builtin)
    modules: tuple[str, ...]         # watched drivers present as modules on disk (/lib/modules/<v>)
    module_count: int                # all modules on disk for this kernel
    initramfs: Initramfs | None
    default: bool = False            # the one the bootloader boots by default

    def boot_drivers(self) -> set[str]:
        """Drivers usable before the root file system is mounted: built in or in the initramfs."""
        return set(self.builtin) | set(self.initramfs.modules if self.initramfs else ())

    def all_drivers(self) -> set[str]:
        """Drivers usable once the system runs (for NICs): built in, on disk or in the initramfs."""
        return self.boot_drivers() | set(self.modules)


@dataclass(frozen=True)
class DiskName:
    where: str                       # /etc/fstab, /boot/grub/grub.cfg...
    mountpoint: str                  # "/" ... or "root=" for a kernel command line
    spec: str                        # UUID=..., /dev/sda1
    style: str                       # uuid, label, partuuid, partlabel, by-path, lvm, device, other

    @property
    def device_prefix(self) -> str | None:
        """``sd``, ``vd``, ``xvd``, ``hd`` for a device name such as /dev/sda1; else None."""
        if self.style != "device":
            return None
        base = self.spec.rsplit("/", 1)[-1]
        for prefix in ("xvd", "sd", "vd", "hd"):
            if base.startswith(prefix):
                return prefix
        return None


@dataclass(frozen=True)
class NetBinding:
    where: str                       # file in the guest
    kind: str                        # "mac" (bound to a MAC address) or "name" (to an interface name)
    interface: str
    mac: str = ""
    slot_bound: bool = False         # a predictable name (ens192, enp0s3) tied to a PCI slot


@dataclass(frozen=True)
class Tool:
    name: str                        # open-vm-tools, vmware-tools, qemu-guest-agent...
    hypervisor: str                  # vmware, kvm, xen, hyperv, virtualbox
    evidence: str                    # "package open-vm-tools 2:12.2.0" or a file path
    version: str = ""


@dataclass(frozen=True)
class CloudInit:
    installed: bool
    datasources: tuple[str, ...]     # datasource_list, empty when not restricted (cloud-init probes all)
    where: str = ""


@dataclass(frozen=True)
class WindowsService:
    name: str                        # key name under ControlSet00N\Services in lower case
    start: int | None                # Start: 0 boot, 1 system, 2 automatic, 3 demand, 4 disabled
    image_path: str = ""


@dataclass
class GuestReport:
    image: str
    os: OsInfo
    firmware: str                    # bios, uefi, bios+uefi, unknown
    partition_table: str             # msdos, gpt, none
    bootloader: str                  # grub2, extlinux, syslinux, systemd-boot, windows, unknown
    kernels: list[Kernel] = field(default_factory=list)
    disk_names: list[DiskName] = field(default_factory=list)
    network: list[NetBinding] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    cloud_init: CloudInit | None = None
    windows_drivers: list[str] = field(default_factory=list)   # e.g. viostor.sys found in System32\drivers
    windows_services: list[WindowsService] = field(default_factory=list)  # drivers' services (SYSTEM hive)
    windows_device_ids: list[str] = field(default_factory=list)  # DriverDatabase\DeviceIds (pci\ven_..&dev_..)
    free_space: dict[str, int] = field(default_factory=dict)   # mount point -> bytes free (statvfs f_bavail)
    checked: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)

    @property
    def default_kernel(self) -> Kernel | None:
        return next((k for k in self.kernels if k.default), self.kernels[0] if self.kernels else None)

    def to_dict(self) -> dict:
        return asdict(self)
