"""Build a small, real Linux test guest from public Debian packages (never installed on this host).

    python tests/guestimage/build.py [--variant virtio|legacy] [--out DIR]

The guest: an MBR-partitioned raw disk, one ext4 partition (label ``vmfroot``, fixed UUID) with
EXTLINUX as bootloader, the Debian generic kernel (``linux-image-amd64``) and a busybox initramfs.

Why the generic kernel and not ``linux-image-cloud-amd64``: in Debian 12 both build virtio_blk,
virtio_pci, virtio_scsi and virtio_net as modules (``=m``), so a "without virtio" initramfs is possible
with either; but the cloud flavour lacks ahci, mptspi (LSI Logic) and e1000 altogether, and a
VMware-style guest needs mptspi, a q35 CD-ROM needs ahci. ext4 is a module in the generic kernel too,
so every variant carries ext4 in its initramfs.

Boot sequence, each step printed on the serial console (ttyS0):
  1. initramfs ``/init``: ``VMFERRY-INITRAMFS``, ``insmod`` the modules of the variant in dependency
     order, look for the ``root=`` of the kernel command line (``UUID=...``) with ``findfs`` for up to
     ~10 s; prints ``VMFERRY-ROOT-FOUND`` and ``switch_root``s to the disk, or prints
     ``VMFERRY-ROOT-MISSING`` and powers off (the observable "does not boot").
  2. the disk's ``/sbin/init``: ``VMFERRY-GUEST-BOOTED``, mounts a CD-ROM carrying ``ovf-env.xml`` and
     prints ``VMFERRY-IP: <value of the property named by the configured key>``, then powers off.

Variants (see :data:`VARIANTS`): ``virtio`` has the virtio modules in its initramfs, names its root by
UUID, and carries the real qemu-guest-agent package files; ``legacy`` has no virtio module at all (only
ahci, ata_piix, mptspi, e1000, vmxnet3), names its root ``/dev/sda1`` in fstab, binds eth0 to a MAC in
a udev rule and carries open-vm-tools: a typical VMware guest that will not boot on virtio.

Results are cached under ``$VMFERRY_TEST_CACHE`` (default ``~/.cache/vmferry-test``), keyed by this
file's content and the package versions.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from vmferry.errors import ToolFailed
from vmferry.guest.initramfs_splice import CpioWriter
from vmferry.guest.kmod import WATCHED, modinfo, module_name
from vmferry.tools.guestfs import guestfs_env
from vmferry.tools.proc import run

ROOT_LABEL = "vmfroot"
MARK_INITRAMFS = "VMFERRY-INITRAMFS"
MARK_ROOT_FOUND = "VMFERRY-ROOT-FOUND"
MARK_ROOT_MISSING = "VMFERRY-ROOT-MISSING"
MARK_BOOTED = "VMFERRY-GUEST-BOOTED"
MARK_IP = "VMFERRY-IP:"
MARK_NO_ENV = "VMFERRY-NO-OVF-ENV"
DISK_MIB = 96
PART_START = 2048  # sectors
MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
LEGACY_MAC = "00:50:56:a1:b2:c3"

BASE_MODULES = ("ext4", "crc32c_generic", "sd_mod", "sr_mod", "isofs", "ahci", "ata_piix", "mptspi",
                "e1000", "vmxnet3")
VIRTIO_MODULES = ("virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net")


@dataclass(frozen=True)
class Variant:
    name: str
    modules: tuple[str, ...]          # requested (dependencies are added)
    root_uuid: str
    fstab_by: str                     # "uuid" or "device"
    mac_bound: bool                   # udev persistent-net rule naming LEGACY_MAC
    tools: tuple[str, ...]            # Debian packages whose files are put in the guest
    ip_key: str = "ip0"


VARIANTS: dict[str, Variant] = {
    "virtio": Variant("virtio", BASE_MODULES + VIRTIO_MODULES, "5f0c1a2e-8d1b-4c33-9e0a-3b7a6c1d2e01",
                      "uuid", False, ("qemu-guest-agent",)),
    "legacy": Variant("legacy", BASE_MODULES, "5f0c1a2e-8d1b-4c33-9e0a-3b7a6c1d2e02", "device", True,
                      ("open-vm-tools",)),
}


@dataclass
class BuiltGuest:
    """What the builder put in the guest: the ground truth the tests compare inspection against."""
    variant: str
    image: str                        # raw disk image
    kernel_version: str
    kernel_package: str
    root_uuid: str
    initramfs_modules: list[str]      # every module in the initramfs (dependencies included)
    disk_modules: list[str]           # every module under /lib/modules on the disk
    watched_drivers: list[str]        # initramfs_modules that vmferry.guest.kmod watches
    tools: list[str]                  # Debian packages of hypervisor tools put in the guest
    fstab_by: str
    mac_bound: bool
    ip_key: str
    marks: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> BuiltGuest:
        return cls(**json.loads(path.read_text()))


def cache_dir() -> Path:
    base = os.environ.get("VMFERRY_TEST_CACHE") or os.path.join(Path.home(), ".cache", "vmferry-test")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---- packages -------------------------------------------------------------------------------------

def _download(package: str, dest: Path) -> Path:
    """``apt-get download`` one package into ``dest`` (once); return the .deb."""
    dest.mkdir(parents=True, exist_ok=True)
    stamp = dest / f"{package}.name"
    if stamp.exists() and (dest / stamp.read_text()).exists():
        return dest / stamp.read_text()
    before = set(dest.glob("*.deb"))
    try:
        run(["apt-get", "download", package], cwd=dest, timeout=600)
    except ToolFailed:
        # A fresh machine may have stale package lists; refresh once and retry.
        run(["apt-get", "update", "-qq"], timeout=600)
        run(["apt-get", "download", package], cwd=dest, timeout=600)
    new = sorted(set(dest.glob("*.deb")) - before) or sorted(dest.glob(f"{package}_*.deb"))
    if not new:
        raise RuntimeError(f"apt-get download {package} produced no .deb in {dest}")
    stamp.write_text(new[-1].name)
    return new[-1]


def _deb_field(deb: Path, name: str) -> str:
    return run(["dpkg-deb", "-f", str(deb), name]).stdout.strip()


def _extract(deb: Path, dest: Path) -> Path:
    if not (dest / ".done").exists():
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        run(["dpkg-deb", "-x", str(deb), str(dest)], timeout=600)
        (dest / ".done").write_text(deb.name)
    return dest


def fetch_packages(variant: Variant, cache: Path) -> dict[str, Path]:
    debs = cache / "debs"
    meta = _download("linux-image-amd64", debs)
    kernel_pkg = _deb_field(meta, "Depends").split(",")[0].split()[0]
    result = {"kernel": _download(kernel_pkg, debs), "busybox": _download("busybox-static", debs)}
    for tool in variant.tools:
        result[tool] = _download(tool, debs)
    return result


# ---- modules --------------------------------------------------------------------------------------

def module_index(kroot: Path, version: str) -> dict[str, Path]:
    base = kroot / "lib" / "modules" / version / "kernel"
    return {module_name(p.name): p for p in base.rglob("*.ko*") if module_name(p.name)}


def resolve_modules(wanted: tuple[str, ...], index: dict[str, Path]) -> list[str]:
    """``wanted`` plus their dependencies (``depends=`` and soft pre-dependencies), load order."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, required: bool) -> None:
        if name in seen:
            return
        path = index.get(name)
        if path is None:
            if required:
                raise RuntimeError(f"kernel has no module {name}")
            return
        seen.add(name)
        info = modinfo(path.read_bytes(), str(path))
        for dep in info.softdep_pre:
            visit(dep, False)
        for dep in info.depends:
            visit(dep, True)
        order.append(name)

    for name in wanted:
        visit(name, True)
    return order


INITRAMFS_INIT = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "@MARK_INITRAMFS@ variant=@VARIANT@ kernel=$(uname -r)"
while read -r mod; do
  insmod "/lib/modules/$(uname -r)/$mod" || echo "@MARK_INITRAMFS@ insmod $mod failed"
done < /etc/vmferry-modules
root=
for arg in $(cat /proc/cmdline); do
  case "$arg" in root=*) root="${arg#root=}" ;; esac
done
dev=
i=0
while [ $i -lt 40 ]; do
  dev=$(findfs "$root" 2>/dev/null) && [ -n "$dev" ] && break
  dev=
  sleep 0.25
  i=$((i + 1))
done
if [ -z "$dev" ]; then
  echo "@MARK_ROOT_MISSING@ no block device has $root (block devices: $(ls /sys/class/block | tr '\n' ' '))"
  poweroff -f
fi
echo "@MARK_ROOT_FOUND@ $root is $dev"
mkdir -p /newroot
if ! mount -t ext4 -o ro "$dev" /newroot; then
  echo "@MARK_ROOT_MISSING@ cannot mount $dev"
  poweroff -f
fi
umount /dev /sys /proc
exec switch_root /newroot /sbin/init
"""

DISK_INIT = r"""#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "@MARK_BOOTED@ $(cat /etc/vmferry-release) root=$(cat /proc/cmdline)"
key=$(cat /etc/vmferry/ovf-ip-key)
found=
for cd in /dev/sr0 /dev/sr1 /dev/sr2 /dev/sr3; do
  [ -b "$cd" ] || continue
  if mount -t iso9660 -o ro "$cd" /mnt 2>/dev/null; then
    if [ -f /mnt/ovf-env.xml ]; then found=1; break; fi
    umount /mnt
  fi
done
if [ -n "$found" ]; then
  ip=$(tr '\n' ' ' < /mnt/ovf-env.xml | grep -o '<[^>]*Property [^>]*>' \
       | grep "key=\"$key\"" | sed -n 's/.*value="\([^"]*\)".*/\1/p' | head -n 1)
  echo "@MARK_IP@ $ip"
else
  echo "@MARK_NO_ENV@"
fi
poweroff -f
"""

APPLETS = ("sh", "mount", "umount", "insmod", "findfs", "sleep", "cat", "ls", "tr", "poweroff", "switch_root",
           "mkdir", "uname", "grep", "sed", "head", "echo")


def _fill(text: str, variant: Variant) -> str:
    for key, value in {"MARK_INITRAMFS": MARK_INITRAMFS, "MARK_ROOT_MISSING": MARK_ROOT_MISSING,
                       "MARK_ROOT_FOUND": MARK_ROOT_FOUND, "MARK_BOOTED": MARK_BOOTED, "MARK_IP": MARK_IP,
                       "MARK_NO_ENV": MARK_NO_ENV, "VARIANT": variant.name}.items():
        text = text.replace(f"@{key}@", value)
    return text


def make_initramfs(variant: Variant, busybox: bytes, kroot: Path, version: str, modules: list[str],
                   index: dict[str, Path]) -> bytes:
    cpio = CpioWriter(1)     # vmferry's own newc writer (the one the initramfs splice uses)
    for d in ("bin", "dev", "proc", "sys", "etc", "newroot", "lib", "lib/modules", f"lib/modules/{version}"):
        cpio.dir(d)
    cpio.file("bin/busybox", busybox, 0o755)
    for applet in APPLETS:
        cpio.symlink(f"bin/{applet}", "busybox")
    cpio.file("init", _fill(INITRAMFS_INIT, variant).encode(), 0o755)
    base = kroot / "lib" / "modules" / version
    made = {f"lib/modules/{version}"}
    lines = []
    for name in modules:
        rel = index[name].relative_to(base).as_posix()
        parts = rel.split("/")
        for i in range(1, len(parts)):
            d = f"lib/modules/{version}/" + "/".join(parts[:i])
            if d not in made:
                cpio.dir(d)
                made.add(d)
        cpio.file(f"lib/modules/{version}/{rel}", index[name].read_bytes())
        lines.append(rel)
    cpio.file("etc/vmferry-modules", ("\n".join(lines) + "\n").encode())
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


# ---- root file system and disk --------------------------------------------------------------------

def make_tree(tree: Path, variant: Variant, debs: dict[str, Path], kroot: Path, bbroot: Path, version: str,
              modules: list[str], index: dict[str, Path], initramfs: bytes, cache: Path) -> None:
    for d in ("bin", "sbin", "dev", "proc", "sys", "mnt", "tmp", "etc/network", "etc/udev/rules.d",
              "etc/vmferry", "boot/extlinux", "var/lib/dpkg", "root"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(bbroot / "bin" / "busybox", tree / "bin" / "busybox")
    for applet in APPLETS:
        (tree / "bin" / applet).symlink_to("busybox")
    (tree / "sbin" / "init").write_text(_fill(DISK_INIT, variant))
    (tree / "sbin" / "init").chmod(0o755)
    (tree / "etc" / "vmferry" / "ovf-ip-key").write_text(variant.ip_key + "\n")
    (tree / "etc" / "vmferry-release").write_text(f"vmferry test guest, variant {variant.name}\n")
    (tree / "etc" / "os-release").write_text(
        'PRETTY_NAME="vmferry test guest (Debian 12 kernel and busybox)"\nNAME="vmferry test guest"\n'
        f'ID=vmferry-testguest\nID_LIKE=debian\nVERSION_ID="1"\nVARIANT_ID={variant.name}\n')
    (tree / "etc" / "hostname").write_text(f"vmferry-{variant.name}\n")
    root_spec = f"UUID={variant.root_uuid}" if variant.fstab_by == "uuid" else "/dev/sda1"
    (tree / "etc" / "fstab").write_text(f"{root_spec} / ext4 ro,defaults 0 1\nproc /proc proc defaults 0 0\n")
    (tree / "etc" / "network" / "interfaces").write_text(
        "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n")
    if variant.mac_bound:
        (tree / "etc" / "udev" / "rules.d" / "70-persistent-net.rules").write_text(
            f'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{{address}}=="{LEGACY_MAC}", '
            'ATTR{type}=="1", KERNEL=="eth*", NAME="eth0"\n')
    # kernel, its config and modules (only those of the variant), initramfs
    shutil.copy2(kroot / "boot" / f"vmlinuz-{version}", tree / "boot" / f"vmlinuz-{version}")
    shutil.copy2(kroot / "boot" / f"config-{version}", tree / "boot" / f"config-{version}")
    (tree / "boot" / f"initrd.img-{version}").write_bytes(initramfs)
    mbase = kroot / "lib" / "modules" / version
    dbase = tree / "lib" / "modules" / version
    for name in modules:
        dst = dbase / index[name].relative_to(mbase)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(index[name], dst)
    for extra in ("modules.builtin", "modules.order"):
        shutil.copy2(mbase / extra, dbase / extra)
    (tree / "boot" / "extlinux" / "extlinux.conf").write_text(
        "SERIAL 0 115200\nDEFAULT vmferry\nTIMEOUT 1\nPROMPT 0\nLABEL vmferry\n"
        f"  KERNEL /boot/vmlinuz-{version}\n  INITRD /boot/initrd.img-{version}\n"
        f"  APPEND root=UUID={variant.root_uuid} console=ttyS0,115200 quiet panic=-1\n")
    # hypervisor tools: the real package files, and a dpkg status entry as an install would write
    status = []
    for tool in variant.tools:
        troot = _extract(debs[tool], cache / "extract" / debs[tool].stem)
        shutil.copytree(troot, tree, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".done"))
        fields = {k: _deb_field(debs[tool], k) for k in ("Package", "Version", "Architecture")}
        status.append(f"Package: {fields['Package']}\nStatus: install ok installed\nPriority: optional\n"
                      f"Architecture: {fields['Architecture']}\nVersion: {fields['Version']}\n"
                      f"Description: {fields['Package']} (files only, put here by the vmferry test builder)\n")
    (tree / "var" / "lib" / "dpkg" / "status").write_text("\n".join(status))


def write_mbr(image: Path, sectors: int) -> None:
    boot = MBR_BIN.read_bytes()[:440]
    entry = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", PART_START,
                        sectors - PART_START)
    mbr = boot.ljust(440, b"\0") + b"VMFR" + b"\0\0" + entry + b"\0" * 48 + b"\x55\xaa"
    with open(image, "r+b") as fh:
        fh.write(mbr)


def make_disk(image: Path, tree: Path, variant: Variant, tmp: Path) -> None:
    sectors = DISK_MIB * 2048
    with open(image, "wb") as fh:
        fh.truncate(DISK_MIB * 1024 * 1024)
    fs_kib = (sectors - PART_START) // 2
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^64bit,^metadata_csum,^extent,^flex_bg", "-L", ROOT_LABEL,
         "-U", variant.root_uuid, "-d", str(tree), "-E", f"offset={PART_START * 512},root_owner=0:0",
         str(image), f"{fs_kib}k"], timeout=300)
    write_mbr(image, sectors)
    # EXTLINUX is installed from inside the libguestfs appliance (no loop device on this host).
    run(["guestfish", "--format=raw", "-a", str(image), "run", ":", "mount", "/dev/sda1", "/", ":",
         "extlinux", "/boot/extlinux", ":", "umount-all"], env=guestfs_env(), timeout=900)


def _key(variant: Variant, debs: dict[str, Path]) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(json.dumps(asdict(variant), sort_keys=True).encode())
    for k in sorted(debs):
        h.update(debs[k].name.encode())
    return h.hexdigest()[:16]


def build(variant_name: str = "virtio", cache: Path | None = None, *, ip_key: str | None = None) -> BuiltGuest:
    """Build (or take from the cache) the guest ``variant_name``; return what was put in it.

    ``ip_key`` names the OVF environment property whose value the guest prints (default ``ip0``).
    """
    variant = VARIANTS[variant_name]
    if ip_key:
        if not all(c.isalnum() or c in "._-" for c in ip_key):
            raise ValueError(f"ip_key {ip_key!r}: letters, digits, '.', '_' and '-' only")
        variant = replace(variant, ip_key=ip_key)
    cache = cache or cache_dir()
    with _locked(cache / ".download.lock"):   # apt-get download and extraction: one at a time
        debs = fetch_packages(variant, cache)
        kroot = _extract(debs["kernel"], cache / "extract" / debs["kernel"].stem)
        bbroot = _extract(debs["busybox"], cache / "extract" / debs["busybox"].stem)
        for tool in variant.tools:
            _extract(debs[tool], cache / "extract" / debs[tool].stem)
    out = cache / f"guest-{variant.name}-{_key(variant, debs)}"
    with _locked(cache / f".{variant.name}.lock"):   # variants build in parallel, each one once
        manifest = out / "guest.json"
        if manifest.exists():
            return BuiltGuest.load(manifest)
        version = next(p.name for p in (kroot / "lib" / "modules").iterdir())
        index = module_index(kroot, version)
        modules = resolve_modules(variant.modules, index)
        initramfs = make_initramfs(variant, (bbroot / "bin" / "busybox").read_bytes(), kroot, version,
                                   modules, index)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        with tempfile.TemporaryDirectory(prefix="vmferry-guest-", dir=cache) as tmp:
            tree = Path(tmp) / "root"
            make_tree(tree, variant, debs, kroot, bbroot, version, modules, index, initramfs, cache)
            image = Path(tmp) / "disk.img"
            make_disk(image, tree, variant, Path(tmp))
            os.replace(image, out / "disk.img")
        built = BuiltGuest(
            variant=variant.name, image=str(out / "disk.img"), kernel_version=version,
            kernel_package=debs["kernel"].name, root_uuid=variant.root_uuid,
            initramfs_modules=sorted(modules), disk_modules=sorted(modules),
            watched_drivers=sorted(m for m in modules if m in WATCHED), tools=list(variant.tools),
            fstab_by=variant.fstab_by, mac_bound=variant.mac_bound, ip_key=variant.ip_key,
            marks={"initramfs": MARK_INITRAMFS, "root_found": MARK_ROOT_FOUND,
                   "root_missing": MARK_ROOT_MISSING, "booted": MARK_BOOTED, "ip": MARK_IP})
        tmp_manifest = manifest.with_suffix(".tmp")
        tmp_manifest.write_text(json.dumps(asdict(built), indent=2))
        os.replace(tmp_manifest, manifest)
        return built


@contextmanager
def _locked(path: Path):
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ovf_env_xml(properties: dict[str, str]) -> str:
    """A minimal OVF environment document (the real writer lives in vmferry; this is test-only)."""
    props = "\n".join(f'      <Property oe:key="{k}" oe:value="{v}"/>' for k, v in properties.items())
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"\n'
            '    xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"\n'
            '    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" oe:id="vmferry-test">\n'
            f'  <PropertySection>\n{props}\n  </PropertySection>\n</Environment>\n')


def make_env_iso(iso: Path, properties: dict[str, str]) -> Path:
    """An ISO 9660 image labelled "OVF ENV" holding ``ovf-env.xml`` (as VMware and vmferry attach it)."""
    with tempfile.TemporaryDirectory(prefix="vmferry-env-") as tmp:
        (Path(tmp) / "ovf-env.xml").write_text(ovf_env_xml(properties))
        run(["genisoimage", "-quiet", "-V", "OVF ENV", "-r", "-J", "-o", str(iso), tmp])
    return iso


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), action="append")
    parser.add_argument("--ip-key", help="OVF environment property the guest prints (default ip0)")
    args = parser.parse_args(argv)
    for name in args.variant or sorted(VARIANTS):
        built = build(name, ip_key=args.ip_key)
        print(json.dumps(asdict(built), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
