"""Guest repair of a copy: a disk image written to a new file, or an OVF/OVA package written anew with
its boot disk repaired. The source is only read.

A package keeps its dialect (a VMware OVA stays a VMware OVA: :func:`vmferry.conversion.convert_package`
writes it in the same style) and its boot disk format; the repair runs on a qcow2 copy of the boot disk
made while the package is written, and the NICs' MACs come from the package (:mod:`vmferry.targets.macs`).
"""

from __future__ import annotations

import os

from vmferry.errors import UsageError
from vmferry.guest.netrepair import NicSetting
from vmferry.guest.repair import RepairReport, check_targets, merge_settings, repair_image

# OVF dialect of the source -> (the hypervisor whose drivers the image keeps, the convert target that
# writes the same dialect)
DIALECTS: dict[str, tuple[str | None, str]] = {
    "vmware": ("vmware", "vmware"), "cisco": ("vmware", "vmware"), "virtualbox": ("virtualbox", "virtualbox"),
    "xen": ("xen", "xen"), "hyperv": ("hyperv", "dmtf"), "ovirt": ("kvm", "dmtf"), "generic": (None, "dmtf"),
}


def repair_image_copy(image: str | os.PathLike, output: str | os.PathLike, targets: list[str], *,
                      nics: list[NicSetting] | None = None, force: bool = False, **options) -> RepairReport:
    """Copy ``image`` to ``output`` (same format, written under a temporary name) and repair the copy."""
    from vmferry.disks.convert import open_disk
    from vmferry.disks.safety import atomic_output
    from vmferry.tools import qemu_img

    image, output = os.fspath(image), os.fspath(output)
    check_targets(targets)
    if os.path.abspath(image) == os.path.abspath(output):
        raise UsageError("the output is the image itself", path=output)
    disk = open_disk(image)          # the header check: qemu-img then opens only the checked graph
    fmt = disk.header.qemu
    with atomic_output(output, force=force) as tmp:
        qemu_img.convert(disk.spec, tmp, fmt, timeout=3600)
        report = repair_image(tmp, targets, nics=nics, fmt=fmt, **options)
    report.image = os.path.abspath(output)
    return report


def repair_package(path: str | os.PathLike, output: str | os.PathLike, targets: list[str], *,
                   settings: list[NicSetting] | None = None, force: bool = False, ova: bool | None = None,
                   reporter=None, **options) -> RepairReport:
    """Write ``output``: the package at ``path`` with its first system's boot disk repaired."""
    from vmferry.conversion import convert_package, load
    from vmferry.dialects import detect
    from vmferry.dialects.reader import read_envelope
    from vmferry.disks.convert import convert_disk, open_disk
    from vmferry.targets.macs import nic_macs

    path, output = os.fspath(path), os.fspath(output)
    check_targets(targets)
    envelope, _pkg = load(path, False)
    dialect = detect(envelope).name
    portable = read_envelope(envelope, dialect)
    if not portable.systems:
        raise UsageError("the package has no virtual system", path=path)
    source, style = DIALECTS.get(dialect, (None, "dmtf"))
    nics = merge_settings(nic_macs(portable.systems[0], portable.default_profile), settings or [])
    reports: list[RepairReport] = []

    def prepare(src: str, offset: int, size: int | None, workdir: str) -> tuple[str, int, None]:
        copy = os.path.join(workdir, ".vmferry-repair.qcow2")
        # a decompressed copy in the work folder may name no other file
        inside = os.path.abspath(src).startswith(os.path.abspath(workdir) + os.sep)
        convert_disk(open_disk(src, offset, size, references=not inside), copy, "qcow2")
        if src.startswith(os.path.abspath(workdir) + os.sep):
            os.unlink(src)
        reports.append(repair_image(copy, targets, nics=nics, source=[source] if source else None,
                                    fmt="qcow2", **options))
        return copy, 0, None

    if ova is None:
        ova = output.lower().endswith(".ova")
    convert_package(path, style, output, ova=ova, force=force, reporter=reporter, prepare_boot_disk=prepare)
    if not reports:
        raise UsageError("the package carries no boot disk image to repair", path=path)
    reports[0].image = os.path.abspath(output)
    return reports[0]
