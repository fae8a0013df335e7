"""Test guests derived from the project's small virtio test guest (:mod:`tests.guestimage.build`): its
disk as a qcow2 whose ``/sbin/init`` is replaced by a script (a command loop, a small service ...) and
with a few host files added (a kernel module the base guest does not carry, a program and its libraries).

One recipe for every derived guest: built once with libguestfs, made read-only and cached beside the
base guest under ``<prefix>-<key>.qcow2``, where the caller's ``key`` names what the recipe depends on
(so an unchanged recipe never rebuilds); one build at a time per prefix (a lock file in the cache).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.guestimage import build as _build
from vmferry.tools.proc import run

# The first lines of every derived guest's /sbin/init: a shell with the kernel's file systems mounted.
INIT_MOUNTS = """#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
"""


def kernel_module(name: str) -> Path:
    """The uncompressed ``<name>.ko`` of the virtio test guest's kernel (from its extracted package)."""
    base = _build.build("virtio")
    kroot = _build.cache_dir() / "extract" / Path(base.kernel_package).stem
    found = sorted(kroot.glob(f"lib/modules/{base.kernel_version}/kernel/**/{name}.ko*"))
    if not found:
        raise RuntimeError(f"kernel {base.kernel_version} has no module {name} under {kroot}")
    if found[0].suffix != ".ko":
        raise RuntimeError(f"{found[0]}: compressed modules are not handled by the derived-guest recipe")
    return found[0]


def derived_image(prefix: str, key: str, init: str, files: dict[str, str | Path], *,
                  executable: tuple[str, ...] = (), contents: dict[str, str] | None = None,
                  base: Path | None = None) -> Path:
    """The cached read-only qcow2 ``<prefix>-<key>.qcow2``: the virtio test guest (or the qcow2 ``base``,
    itself a derived guest) with ``init`` as its ``/sbin/init``, each host file of ``files`` (guest path ->
    host path) uploaded, the guest paths in ``executable`` made executable and each guest file of
    ``contents`` (guest path -> text) written."""
    from vmferry.tools.guestfs import binding, guestfs_env

    source, source_format = (base, "qcow2") if base is not None else (_build.build("virtio").image, "raw")
    cache = _build.cache_dir()
    out = cache / f"{prefix}-{key}.qcow2"
    with _build._locked(cache / f".{prefix}.lock"):
        if out.exists():
            return out
        with tempfile.TemporaryDirectory(prefix=f"vmferry-{prefix}-", dir=cache) as tmp:
            img = Path(tmp) / "disk.qcow2"
            run(["qemu-img", "convert", "-f", source_format, "-O", "qcow2", source, img])
            for name, value in guestfs_env().items():
                os.environ.setdefault(name, value)
            g = binding().GuestFS(python_return_dict=True)
            try:
                g.add_drive_opts(str(img), format="qcow2")
                g.launch()
                g.mount("/dev/sda1", "/")
                g.write("/sbin/init", init)
                g.chmod(0o755, "/sbin/init")
                for guest_path, host_path in files.items():
                    g.mkdir_p(os.path.dirname(guest_path))
                    g.upload(str(host_path), guest_path)
                    if guest_path in executable:
                        g.chmod(0o755, guest_path)
                for guest_path, text in (contents or {}).items():
                    g.mkdir_p(os.path.dirname(guest_path))
                    g.write(guest_path, text)
                g.umount_all()
                g.shutdown()
            finally:
                g.close()
            os.chmod(img, 0o444)
            os.replace(img, out)
    return out
