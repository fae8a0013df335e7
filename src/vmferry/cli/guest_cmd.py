"""Inspect the guest OS on a disk image (or on the boot disk of an OVF/OVA package, read straight from
the archive) and report, per target, whether it will boot there.

Exit status: 0, or 1 when --target is given and the guest will not boot on one of those targets;
2 on bad input or when the disk cannot be inspected.
"""

from __future__ import annotations

import argparse

from vmferry.errors import UsageError
from vmferry.tables.targets import readiness_targets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a disk image (raw, qcow2, vmdk, vhdx...), or an .ovf/.ova "
                        "package (its first system's boot disk)")
    parser.add_argument("--json", action="store_true", help="print the report and the matrix as JSON")
    parser.add_argument("--target", "-t", action="append", metavar="TARGET",
                        help=f"only these targets ({', '.join(readiness_targets())}); repeatable")
    parser.add_argument("--bus", action="append", default=[], metavar="TARGET=BUS",
                        help="disk bus to judge a target with, e.g. kvm=sata (default: the target's own)")
    parser.add_argument("--nic", action="append", default=[], metavar="TARGET=MODEL",
                        help="NIC model to judge a target with, e.g. kvm=e1000")


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            raise UsageError(f"{option} expects TARGET=VALUE, got {v!r}")
        out[key] = val
    return out


def run(args: argparse.Namespace) -> int:
    from vmferry.cli.common import emit_json
    from vmferry.guest import TARGETS, readiness

    targets = args.target or list(TARGETS)
    for t in targets:
        if t not in TARGETS:
            raise UsageError(f"unknown target {t!r} (one of {', '.join(TARGETS)})")
    buses, nics = _pairs(args.bus, "--bus"), _pairs(args.nic, "--nic")
    report = _inspect(args.path)
    matrix = {t: readiness(report, t, bus=buses.get(t), nic=nics.get(t)) for t in targets}
    if args.json:
        emit_json({"report": report.to_dict(), "readiness": {t: r.to_dict() for t, r in matrix.items()}})
    else:
        _print_text(report, matrix)
    if args.target and any(r.status == "will-not-boot" for r in matrix.values()):
        return 1
    return 0


def _is_package(path: str) -> bool:
    """An OVF descriptor, an OVF directory or an OVA (a tar), as opposed to a disk image."""
    import os

    if os.path.isdir(path) or path.lower().endswith((".ovf", ".ova")):
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    return head[257:262] == b"ustar" or head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _inspect(path: str):
    from vmferry.guest import inspect_image

    if not _is_package(path):
        return inspect_image(path)
    import tempfile

    from vmferry.check import boot_disk_image
    from vmferry.dialects import read_package
    from vmferry.package import open_package

    pkg = open_package(path)
    with tempfile.TemporaryDirectory(prefix="vmferry-guest-") as tmp, \
            boot_disk_image(pkg, read_package(pkg.envelope), tmp) as image:
        if image is None:
            raise UsageError("the package carries no disk image to inspect", path=path)
        return inspect_image(image)


def _print_text(report, matrix) -> None:
    o = report.os
    print(f"{report.image}: {o.type} {o.product or o.distro} {o.version} ({o.arch}), firmware {report.firmware}, "
          f"bootloader {report.bootloader}")
    for k in report.kernels:
        star = "*" if k.default else " "
        initrd = ", ".join(k.initramfs.drivers) if k.initramfs else "no initramfs"
        print(f" {star}kernel {k.version}: built in [{', '.join(k.builtin)}]; initramfs [{initrd}]; "
              f"on disk [{', '.join(k.modules)}]")
    if report.windows_drivers:
        print(f"  drivers: {', '.join(report.windows_drivers)}")
    for d in report.disk_names:
        print(f"  disk name: {d.where} {d.mountpoint} {d.spec} ({d.style})")
    for n in report.network:
        what = f"MAC {n.mac}" if n.kind == "mac" else "name"
        print(f"  network: {n.where} {n.interface} bound by {what}")
    for t in report.tools:
        print(f"  tools: {t.name} ({t.hypervisor}) {t.evidence}")
    if report.cloud_init:
        ds = ", ".join(report.cloud_init.datasources) or "all (not restricted)"
        print(f"  cloud-init: datasources {ds}")
    if report.not_checked:
        print("  not checked: " + "; ".join(report.not_checked))
    print()
    for t, r in matrix.items():
        print(f"{t:<11} {r.status:<14} (disk on {r.bus}, NIC {r.nic})")
        for f in r.findings:
            print(f"    {f.rule} {f.severity}: {f.message}")
            print(f"        fix: {f.fix}")
