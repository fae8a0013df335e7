"""Collect what guest readiness needs from a disk image, through one libguestfs appliance.

The appliance mounts the guest's file systems read-only (as ``inspect-os`` finds them); the few files
that matter are downloaded into a private temp dir and parsed on the host by
:mod:`vmferry.guest.linuxconf`, :mod:`vmferry.guest.initramfs` and :mod:`vmferry.guest.kmod`.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from vmferry.errors import GuestError, VmferryError
from vmferry.guest import initramfs as initramfs_mod
from vmferry.guest import kmod, linuxconf
from vmferry.guest.model import CloudInit, GuestReport, Initramfs, Kernel, NetBinding, OsInfo, Tool
from vmferry.tools.guestfs import Session

ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_BOOT_GUID = "21686148-6449-6E6F-744E-656564454649"

# Debian/RPM package names (and the files a tarball install leaves) -> (tool, hypervisor)
TOOL_PACKAGES: dict[str, tuple[str, str]] = {
    "open-vm-tools": ("open-vm-tools", "vmware"),
    "qemu-guest-agent": ("qemu-guest-agent", "kvm"),
    "xe-guest-utilities": ("xe-guest-utilities", "xen"),
    "xenserver-guest-utilities": ("xe-guest-utilities", "xen"),
    "hyperv-daemons": ("hyperv-daemons", "hyperv"),
    "hypervkvpd": ("hyperv-daemons", "hyperv"),
    "virtualbox-guest-utils": ("virtualbox-guest-additions", "virtualbox"),
    "virtualbox-guest-additions": ("virtualbox-guest-additions", "virtualbox"),
}
TOOL_FILES: dict[str, tuple[str, str]] = {
    "/etc/vmware-tools/locations": ("vmware-tools", "vmware"),           # VMware's own tarball installer
    "/usr/bin/vmware-uninstall-tools.pl": ("vmware-tools", "vmware"),
    "/usr/sbin/xe-daemon": ("xe-guest-utilities", "xen"),
    "/usr/sbin/VBoxService": ("virtualbox-guest-additions", "virtualbox"),
    "/opt/VBoxGuestAdditions": ("virtualbox-guest-additions", "virtualbox"),
    "/usr/sbin/hv_kvp_daemon": ("hyperv-daemons", "hyperv"),
}

NET_DIRS = (("/etc/netplan", "netplan"), ("/etc/NetworkManager/system-connections", "nm"),
            ("/etc/systemd/network", "networkd"), ("/etc/sysconfig/network-scripts", "ifcfg"),
            ("/etc/sysconfig/network", "ifcfg"), ("/etc/network/interfaces.d", "ifupdown"),
            ("/etc/udev/rules.d", "udev"))
BLS_DIR = "/boot/loader/entries"  # Boot Loader Specification entries (RHEL/Fedora GRUB, systemd-boot)
BOOT_CONFIGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/boot/efi/EFI/debian/grub.cfg",
                "/boot/extlinux/extlinux.conf", "/extlinux.conf", "/boot/syslinux/syslinux.cfg",
                "/etc/default/grub")
LINUX_CHECKED = [
    "OS, version and architecture (libguestfs inspection)",
    "kernels in /boot; drivers built in (config-*, modules.builtin), on disk and in each initramfs",
    "partition table and firmware need (BIOS/UEFI)",
    "disk names in /etc/fstab and in the bootloader's root=",
    "network configurations bound to a MAC address or an interface name "
    "(ifupdown, netplan, NetworkManager, systemd-networkd, ifcfg, udev rules)",
    "hypervisor tools (package database and known files) and conflicts between them",
    "cloud-init and its datasource_list",
]
LINUX_NOT_CHECKED = [
    "whether an LVM/MD/LUKS root can be assembled from the initramfs (only the disk drivers are checked)",
    "kernel command line options other than root=, SELinux relabelling, swap and resume devices",
    "dracut/initramfs-tools configuration that would change the next initramfs build",
]
WINDOWS_CHECKED = [
    "OS, version and architecture (libguestfs inspection, from the registry)",
    "presence of storage and network driver files in System32\\drivers",
    "driver services of the current control set and their start type, and the PCI ids with a driver "
    "package in the DriverDatabase (SYSTEM hive, read with hivex)",
    "partition table and firmware need (BIOS/UEFI)",
]
WINDOWS_NOT_CHECKED = [
    "CriticalDeviceDatabase entries of boot drivers (Windows 7 / 2008 R2 and older)",
    "installed hypervisor tools and agents (VMware Tools, Hyper-V integration services, QEMU guest agent)",
    "static IP configuration bound to the old NIC, activation, BitLocker",
]


def image_format(path: str) -> str:
    """The qemu format of a disk image, from its content, after the header check
    (:func:`vmferry.disks.image_check.check_image`): libguestfs is given it explicitly and sees only
    images whose every referenced file (backing file, extent) lies inside their folder."""
    from vmferry.disks.image_check import check_image

    header = check_image(path)
    if header.format == "vhd-fixed":
        # QEMU sizes a fixed VHD by its CHS geometry unless the creator is one it knows (Hyper-V, its own
        # qem2...), and libguestfs cannot pass it force_size_calc: read as raw, the footer is one extra last
        # sector that no partition or file system uses
        return "raw"
    fmt = header.qemu
    if not fmt:
        raise GuestError("not a disk image format libguestfs reads", path=path)
    return fmt


class _Guest:
    """Files and listings fetched from the mounted guest (through the one libguestfs session)."""

    def __init__(self, g: Session, tmp: Path) -> None:
        self.g, self.tmp = g, tmp
        self.files: dict[str, Path] = {}
        self.listings: dict[str, list[str]] = {}
        self.present: set[str] = set()

    def probe(self, files: list[str] = (), dirs: list[str] = (), paths: list[str] = ()) -> None:
        for path in files:
            if self.g.attempt("is_file", path, followsymlinks=True, default=False):
                self.present.add(path)
        for path in dirs:
            if self.g.attempt("is_dir", path, followsymlinks=True, default=False):
                self.present.add(path)
        for path in paths:
            if self.g.attempt("exists", path, default=False):
                self.present.add(path)

    def list(self, dirs: list[str], command: str = "ls") -> None:
        for d in dirs:
            if d in self.present:
                self.listings[d] = [n for n in self.g.attempt(command, d, default=[]) if n.strip()]

    def fetch(self, files: list[str]) -> None:
        for f in files:
            if f not in self.present or f in self.files:
                continue
            local = self.tmp / f.lstrip("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            self.g.attempt("download", f, str(local))
            if local.is_file():
                self.files[f] = local

    def text(self, path: str) -> str | None:
        local = self.files.get(path)
        return local.read_text(encoding="utf-8", errors="replace") if local else None


def _firmware(g: Session, device: str | None) -> tuple[str, str]:
    if not device:
        return "unknown", "none"
    table = (g.attempt("part_get_parttype", device, default="") or "").strip() or "none"
    if table != "gpt":
        return ("bios" if table == "msdos" else "unknown"), table
    nums = [p["part_num"] for p in g.attempt("part_list", device, default=[]) if p.get("part_num")]
    types = {(g.attempt("part_get_gpt_type", device, int(n), default="") or "").strip().upper() for n in nums}
    esp, bios = ESP_GUID in types, BIOS_BOOT_GUID in types
    return ("bios+uefi" if esp and bios else "uefi" if esp else "bios" if bios else "unknown"), table


def _os(values: dict[str, str]) -> OsInfo:
    major, minor = values["major-version"], values["minor-version"]
    version = major if minor in ("", "0") and values["type"] != "windows" else f"{major}.{minor}"
    return OsInfo(type=values["type"] or "unknown", distro=values["distro"] or "unknown",
                  product=values["product-name"], version=version, arch=values["arch"] or "unknown",
                  hostname=values["hostname"])


def _default_kernel_path(where: str, text: str) -> str | None:
    if where.endswith(("extlinux.conf", "syslinux.cfg")):
        default, label, kernels = None, None, {}
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0].upper() == "DEFAULT":
                default = words[1]
            elif len(words) >= 2 and words[0].upper() == "LABEL":
                label = words[1]
            elif len(words) >= 2 and words[0].upper() in ("KERNEL", "LINUX") and label:
                kernels.setdefault(label, words[1])
        return kernels.get(default) or next(iter(kernels.values()), None)
    if where.endswith("grub.cfg"):  # BLS entries: the newest kernel is taken as default
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("linux", "linux16", "linuxefi"):
                return words[1]
    return None


def _initramfs(path: str, local: Path | None) -> Initramfs:
    if local is None:
        return Initramfs(path, None, (), (), error="could not be copied out of the guest")
    try:
        summary = initramfs_mod.summarise(path, initramfs_mod.read_file(local))
    except GuestError as exc:
        return Initramfs(path, None, (), (), error=str(exc))
    drivers = tuple(m for m in summary.modules if m in kmod.WATCHED)
    return Initramfs(path, summary.kernel_version, summary.modules, drivers)


def _kernels(gst: _Guest, boot_texts: dict[str, str]) -> list[Kernel]:
    boot = gst.listings.get("/boot", [])
    versions = sorted({n[len("vmlinuz-"):] for n in boot if n.startswith("vmlinuz-")})
    default_path = next((p for w, t in boot_texts.items() if (p := _default_kernel_path(w, t))), None)
    mods_base = "/lib/modules" if "/lib/modules" in gst.present else "/usr/lib/modules"
    initrd_names = {v: next((f"/boot/{n}" for n in (f"initrd.img-{v}", f"initramfs-{v}.img", f"initrd-{v}",
                                                    f"initramfs-{v}") if n in boot), None) for v in versions}
    wanted = [f"/boot/config-{v}" for v in versions] + [f"{mods_base}/{v}/modules.builtin" for v in versions]
    moddirs = [f"{mods_base}/{v}" for v in versions]  # kernel/, and updates/ or extra/ (DKMS) too
    gst.probe(files=wanted + [p for p in initrd_names.values() if p], dirs=moddirs)
    gst.list(moddirs, "find")
    gst.fetch(wanted)
    kernels = []
    for v in versions:
        builtin: set[str] = set()
        if (text := gst.text(f"/boot/config-{v}")) is not None:
            builtin |= kmod.builtin_from_config(text)
        if (text := gst.text(f"{mods_base}/{v}/modules.builtin")) is not None:
            builtin |= kmod.builtin_from_list(text) & set(kmod.WATCHED)
        on_disk = {n for line in gst.listings.get(f"{mods_base}/{v}", []) if (n := kmod.module_name(line))}
        initrd = None
        if (ipath := initrd_names[v]) is not None:
            gst.fetch([ipath])
            initrd = _initramfs(ipath, gst.files.get(ipath))
            if ipath in gst.files:
                gst.files.pop(ipath).unlink(missing_ok=True)
        kernels.append(Kernel(version=v, path=f"/boot/vmlinuz-{v}", builtin=tuple(sorted(builtin)),
                              modules=tuple(sorted(on_disk & set(kmod.WATCHED))), module_count=len(on_disk),
                              initramfs=initrd,
                              default=bool(default_path and default_path.endswith(f"vmlinuz-{v}"))))
    if kernels and not any(k.default for k in kernels):
        kernels[-1] = Kernel(**{**kernels[-1].__dict__, "default": True})
    return kernels


def _network(gst: _Guest) -> list[NetBinding]:
    out: list[NetBinding] = []
    if (text := gst.text("/etc/network/interfaces")) is not None:
        out += linuxconf.ifupdown(text, "/etc/network/interfaces")
    parsers = {"netplan": linuxconf.netplan, "nm": linuxconf.nm_keyfile, "networkd": linuxconf.networkd,
               "ifcfg": linuxconf.ifcfg, "ifupdown": linuxconf.ifupdown, "udev": linuxconf.udev_rules}
    for directory, kind in NET_DIRS:
        for name in sorted(gst.listings.get(directory, [])):
            path = f"{directory}/{name}"
            if (text := gst.text(path)) is not None:
                out += parsers[kind](text, path)
    return out


def _net_files(gst: _Guest) -> list[str]:
    files = []
    for directory, kind in NET_DIRS:
        for name in gst.listings.get(directory, []):
            if (kind == "ifcfg" and not name.startswith("ifcfg-")) or (kind == "udev" and not name.endswith(".rules")) \
                    or (kind == "networkd" and not name.endswith((".network", ".link"))):
                continue
            files.append(f"{directory}/{name}")
    return files


def dpkg_status(text: str) -> list[dict[str, str]]:
    """Installed packages of a dpkg status file (deb822 stanzas), as libguestfs app2 records."""
    apps = []
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line[:1] not in (" ", "\t") and ": " in line:
                k, _, v = line.partition(": ")
                fields[k] = v.strip()
        if fields.get("Package") and fields.get("Status", "").endswith(" installed"):
            apps.append({"app2_name": fields["Package"], "app2_version": fields.get("Version", "")})
    return apps


def _tools(gst: _Guest, apps: list[dict[str, str]]) -> list[Tool]:
    found: dict[str, Tool] = {}
    for app in apps:
        name = app.get("app2_name", "")
        if name in TOOL_PACKAGES:
            tool, hv = TOOL_PACKAGES[name]
            version = app.get("app2_version", "")
            found.setdefault(tool, Tool(tool, hv, f"package {name} {version}".strip(), version))
    for path, (tool, hv) in TOOL_FILES.items():
        if tool not in found and path in gst.present:
            found[tool] = Tool(tool, hv, path)
    if "virtualbox-guest-additions" not in found:
        for name in gst.listings.get("/opt", []):
            if name.startswith("VBoxGuestAdditions"):
                found["virtualbox-guest-additions"] = Tool("virtualbox-guest-additions", "virtualbox",
                                                           f"/opt/{name}")
    return sorted(found.values(), key=lambda t: t.name)


def _cloud_init(gst: _Guest, app_names: set[str]) -> CloudInit | None:
    texts = []
    if (text := gst.text("/etc/cloud/cloud.cfg")) is not None:
        texts.append(("/etc/cloud/cloud.cfg", text))
    for name in sorted(gst.listings.get("/etc/cloud/cloud.cfg.d", [])):
        path = f"/etc/cloud/cloud.cfg.d/{name}"
        if name.endswith(".cfg") and (text := gst.text(path)) is not None:
            texts.append((path, text))
    if not texts and "cloud-init" not in app_names:
        return None
    return linuxconf.cloud_datasources(texts)


def _windows_drivers(g: Session, systemroot: str) -> list[str]:
    from vmferry.guest.drivers import WINDOWS_BUS, WINDOWS_NIC

    drivers_dir = g.attempt("case_sensitive_path", f"{systemroot or '/Windows'}/System32/drivers", default="")
    if not drivers_dir:
        return []
    present = {n.strip().lower() for n in g.attempt("ls", drivers_dir, default=[])}
    known = {f for table in (WINDOWS_BUS, WINDOWS_NIC) for opts in table.values() for d in opts for f in d.files}
    return sorted(n for n in known if n in present)


def _windows_registry(g: Session, systemroot: str, tmp: Path, report: GuestReport) -> None:
    """Services and staged driver packages from the SYSTEM hive (copied out, read with hivex)."""
    from vmferry.guest.windows import read_system_hive

    hive = g.attempt("case_sensitive_path", f"{systemroot or '/Windows'}/System32/config/SYSTEM", default="")
    if not hive or not g.attempt("is_file", hive, default=False):
        report.not_checked.append("driver services (no SYSTEM hive found)")
        return
    local = tmp / "SYSTEM"
    g.attempt("download", hive, str(local))
    try:
        report.windows_services, report.windows_device_ids = read_system_hive(local)
    except VmferryError as exc:
        report.not_checked.append(f"driver services (the SYSTEM hive could not be read: {exc.message})")


OS_FIELDS = ("type", "distro", "product-name", "major-version", "minor-version", "arch", "hostname",
             "windows-systemroot")
SIMPLE_FILES = ["/etc/os-release", "/usr/lib/os-release", "/etc/fstab", "/etc/network/interfaces",
                "/etc/cloud/cloud.cfg", "/var/lib/dpkg/status"]


def collect(path: str | os.PathLike) -> GuestReport:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GuestError("no such disk image", path=path)
    fmt = image_format(path)
    with Session(path, fmt, readonly=True) as g:
        return inspect_session(g, path)


def inspect_session(g: Session, path: str) -> GuestReport:
    """The guest report of the guest a libguestfs session has mounted (read-only here, or the session
    that has just repaired it: one appliance for both)."""
    with tempfile.TemporaryDirectory(prefix="vmferry-guest-") as tmpdir:
        tmp = Path(tmpdir)
        roots, root = g.roots, g.root
        values = {f: str(g.attempt(f"inspect_get_{f.replace('-', '_')}", root, default="") or "").strip()
                  for f in OS_FIELDS}
        os_info = _os(values)
        devices = g.attempt("list_devices", default=[]) or []
        apps = [{k: str(v) for k, v in a.items()} for a in g.attempt("inspect_list_applications2", root, default=[])]
        firmware, table = _firmware(g, devices[0] if devices else None)
        report = GuestReport(image=path, os=os_info, firmware=firmware, partition_table=table,
                             bootloader="unknown")
        report.free_space = _free_space(g)
        if len(roots) > 1:
            report.not_checked.append(f"other operating systems on the disk ({', '.join(roots[1:])})")
        if os_info.type == "windows":
            report.bootloader = "windows"
            report.windows_drivers = _windows_drivers(g, values["windows-systemroot"])
            _windows_registry(g, values["windows-systemroot"], tmp, report)
            report.checked += WINDOWS_CHECKED
            report.not_checked += WINDOWS_NOT_CHECKED
            return report
        if os_info.type != "linux":
            report.not_checked.append(f"{os_info.type} guests: only the OS is identified")
            return report
        gst = _Guest(g, tmp)
        dirs = ["/boot", "/opt", "/etc/cloud/cloud.cfg.d", BLS_DIR, *(d for d, _ in NET_DIRS)]
        gst.probe(files=SIMPLE_FILES + list(BOOT_CONFIGS), dirs=dirs,
                  paths=["/lib/modules", "/usr/lib/modules", "/boot/efi/loader/loader.conf",
                         "/boot/loader/loader.conf", *TOOL_FILES])
        gst.list(dirs)
        net_files = _net_files(gst)
        cloud_files = [f"/etc/cloud/cloud.cfg.d/{n}" for n in gst.listings.get("/etc/cloud/cloud.cfg.d", [])
                       if n.endswith(".cfg")]
        bls_files = [f"{BLS_DIR}/{n}" for n in sorted(gst.listings.get(BLS_DIR, [])) if n.endswith(".conf")]
        gst.probe(files=net_files + cloud_files + bls_files)
        gst.fetch(SIMPLE_FILES + list(BOOT_CONFIGS) + net_files + cloud_files + bls_files)
        if (text := gst.text("/etc/os-release") or gst.text("/usr/lib/os-release")) is not None:
            m = re.search(r"^ID=\"?([^\"\n]*)", text, re.M)
            report.os = OsInfo(**{**os_info.__dict__, "os_release_id": m.group(1) if m else ""})
        boot_texts = {p: t for p in [*BOOT_CONFIGS, *bls_files] if (t := gst.text(p)) is not None}
        report.bootloader = _bootloader(boot_texts, gst)
        report.kernels = _kernels(gst, boot_texts)
        if (text := gst.text("/etc/fstab")) is not None:
            report.disk_names += linuxconf.fstab(text)
        for where, text in boot_texts.items():
            report.disk_names += linuxconf.kernel_root_args(text, where)
        report.network = _network(gst)
        if not apps and (text := gst.text("/var/lib/dpkg/status")) is not None:
            apps = dpkg_status(text)  # libguestfs reads dpkg only for distributions it knows
        report.tools = _tools(gst, apps)
        report.cloud_init = _cloud_init(gst, {a.get("app2_name", "") for a in apps})
        report.checked += LINUX_CHECKED
        report.not_checked += LINUX_NOT_CHECKED
        return report


def _free_space(g: Session) -> dict[str, int]:
    """Bytes free (available to non-root users, as ``df``) on each mounted file system of the guest."""
    out = {}
    for mp in sorted(g.mountpoints):
        st = g.attempt("statvfs", mp)
        if st and st.get("frsize", 0) > 0:
            out[mp] = int(st["bavail"]) * int(st["frsize"])
    return out


def _bootloader(boot_texts: dict[str, str], gst: _Guest) -> str:
    if any(p.endswith("grub.cfg") for p in boot_texts):
        return "grub2"
    if any(p.endswith("extlinux.conf") for p in boot_texts):
        return "extlinux"
    if any(p.endswith("syslinux.cfg") for p in boot_texts):
        return "syslinux"
    if {"/boot/efi/loader/loader.conf", "/boot/loader/loader.conf"} & gst.present:
        return "systemd-boot"
    return "unknown"
