"""Variants of the Debian 12 VMware guest of :mod:`tests.guestimage.debian`, derived from its cached image.

    python -m tests.guestimage.debian_variants networkd|dracut [--ova]   # build or take from the cache

Not a second mmdebstrap run: each variant is a sparse copy of the cached base image (same kernel, root
named ``/dev/sda1``, open-vm-tools, the same report unit on the serial console) changed by one libguestfs
appliance with the guest's own tools (dpkg, systemctl, dracut, run chrooted in the guest):

``networkd``
    ifupdown purged (``dpkg --purge ifupdown``; ``/etc/network/interfaces``, which is not its conffile,
    removed too); ``/etc/systemd/network/10-ens192.network`` with ``[Match] Name=ens192`` and the same
    static address, gateway and DNS server as the ifupdown guest; ``systemctl enable systemd-networkd``
    (which also enables its socket and ``systemd-networkd-wait-online``, so ``network-online.target``,
    which the report unit waits for, means what it says). The base initramfs (VMware's storage drivers
    only) is kept.
``dracut``
    the initramfs made by dracut instead of initramfs-tools, as on a guest whose administrator chose it:
    ``/etc/dracut.conf.d/10-vmware.conf`` restricts it to VMware's storage drivers (``drivers+=``, the
    dracut equivalent of ``MODULES=list``) and leaves out the dracut modules such a VM does not use
    (``omit_dracutmodules+=``: among them ``qemu``, which puts virtio in every generic image), initramfs-tools is purged (Debian's dracut conflicts with
    it) and Debian's ``dracut``/``dracut-core`` packages (downloaded with ``apt-get download`` into the
    test cache, never installed on the host) are installed with ``dpkg -i``, whose trigger builds the
    initramfs of the installed kernel with dracut. ``kpartx``, which dracut-core depends on and which
    only its multipath and dm-raid modules use, is not installed (``--force-depends``).

Cached beside the base image's entry, keyed by the base image's recipe key, the variant's recipe and,
for dracut, the package file names.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from tests.guestimage import debian
from tests.guestimage.build import _download, _locked, cache_dir
from vmferry.guest.initramfs import read_file, summarise
from vmferry.tools.guestfs import Session
from vmferry.tools.proc import run

NETWORK_FILE = f"/etc/systemd/network/10-{debian.NIC_NAME}.network"
NETWORK = (f"[Match]\nName={debian.NIC_NAME}\n\n[Network]\nAddress={debian.ADDRESS}\n"
           f"Gateway={debian.GATEWAY}\nDNS=192.0.2.53\n")

DRACUT_FILE = "/etc/dracut.conf.d/10-vmware.conf"
# dracut modules a VMware VM with a plain ext4 root does not need, among them those that would bring virtio
# in by themselves (qemu, qemu-net and virtiofs add virtio drivers to every generic image)
DRACUT_OMIT = ("qemu", "qemu-net", "virtiofs", "crypt", "dm", "lvm", "mdraid", "dmraid", "multipath", "nvdimm",
               "bcache", "iscsi", "nbd", "nfs", "cifs", "fcoe", "fcoe-uefi")
DRACUT_CONF = ("# VMware's storage drivers only (the dracut equivalent of initramfs-tools' MODULES=list)\n"
               f'hostonly="no"\ndrivers+=" {" ".join(debian.INITRAMFS_MODULES)} "\n'
               f'omit_dracutmodules+=" {" ".join(DRACUT_OMIT)} "\n')
DRACUT_PACKAGES = ("dracut-core", "dracut")


def configure_networkd(s: Session, _cache: Path) -> None:
    """ifupdown out, systemd-networkd in (the guest's own dpkg and systemctl)."""
    s.command(["dpkg", "--purge", "ifupdown"])
    if s.exists("/sbin/ifup") or s.exists("/lib/systemd/system/networking.service"):
        raise RuntimeError("dpkg --purge ifupdown left ifupdown behind")
    s.remove("/etc/network/interfaces")      # the administrator's file (not a conffile): dpkg keeps it
    s.write(NETWORK_FILE, NETWORK, mode=0o644)
    s.command(["systemctl", "enable", "systemd-networkd.service"])
    if not s.is_symlink("/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"):
        raise RuntimeError("systemctl enable systemd-networkd did not enable it")


def configure_dracut(s: Session, cache: Path) -> None:
    """initramfs-tools out, dracut in; dracut's own trigger builds the restricted initramfs."""
    s.write(DRACUT_FILE, DRACUT_CONF, mode=0o644)
    s.command(["dpkg", "--purge", "--force-depends", "initramfs-tools", "initramfs-tools-core"])
    debs = []
    for name in DRACUT_PACKAGES:
        deb = _download(name, cache / "debs")
        s.upload(deb, f"/var/tmp/{deb.name}")
        debs.append(f"/var/tmp/{deb.name}")
    s.command(["/bin/sh", "-c", "PATH=/usr/sbin:/usr/bin:/sbin:/bin exec dpkg -i --force-depends \"$@\"", "dpkg",
               *debs])
    for deb in debs:
        s.remove(deb)
    if s.exists("/usr/sbin/update-initramfs") or not s.exists("/usr/bin/dracut"):
        raise RuntimeError("dracut did not replace initramfs-tools")


VARIANTS: dict[str, Callable[[Session, Path], None]] = {"networkd": configure_networkd, "dracut": configure_dracut}


def _recipe(variant: str, cache: Path) -> list[str]:
    parts = [variant, inspect.getsource(VARIANTS[variant])]
    if variant == "networkd":
        parts += [NETWORK_FILE, NETWORK]
    else:
        parts += [DRACUT_FILE, DRACUT_CONF, *(_download(p, cache / "debs").name for p in DRACUT_PACKAGES)]
    return parts


def build(variant: str, cache: Path | None = None) -> debian.DebianGuest:
    """The ``variant`` guest (derived from the cached base image, or taken from the cache)."""
    cache = cache or cache_dir()
    base = debian.build(cache)
    with _locked(cache / ".download.lock"):
        recipe = _recipe(variant, cache)
    key = hashlib.sha256("\n".join([Path(base.image).parent.name, *recipe]).encode()).hexdigest()[:16]
    out = cache / f"debian12-vmware-{variant}-{key}"
    manifest = out / "guest.json"
    with _locked(cache / f".debian12-{variant}.lock"):
        if manifest.exists():
            return debian.DebianGuest.load(manifest)
        started = time.monotonic()
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        with tempfile.TemporaryDirectory(prefix=f"vmferry-{variant}-", dir=cache) as tmp:
            image = Path(tmp) / "disk.img"
            run(["cp", "--sparse=always", base.image, str(image)])     # the image is sparse: keep it so
            initrd = Path(tmp) / "initrd"
            with Session(image, "raw") as s:
                VARIANTS[variant](s, cache)
                s.download(f"/boot/initrd.img-{base.kernel_version}", initrd)
            modules = list(summarise("", read_file(initrd)).modules)
            os.replace(image, out / "disk.img")
        guest = replace(base, image=str(out / "disk.img"), initramfs_modules=modules,
                        build_seconds=round(time.monotonic() - started, 1),
                        image_bytes=os.stat(out / "disk.img").st_blocks * 512)
        tmp_manifest = manifest.with_suffix(".tmp")
        tmp_manifest.write_text(json.dumps(asdict(guest), indent=2))
        os.replace(tmp_manifest, manifest)
        return guest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--ova", action="store_true", help="pack the VMware-style OVA too")
    args = parser.parse_args(argv)
    guest = build(args.variant)
    print(json.dumps(asdict(guest), indent=2))
    if args.ova:
        print(debian.vmware_ova(guest, f"debian12-{args.variant}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
