"""Inspect and convert disk images: `disk info IMAGE`, `disk convert IMAGE -O FMT -o OUT`,
`disk check IMAGE`, `disk compare A B`, `disk formats`. IMAGE may be `X.ova:MEMBER` to read a disk inside an OVA without unpacking it."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict

from vmferry.disks import FORMATS, convert_disk, default_format, get_format, open_disk
from vmferry.disks.ova_read import import_disk
from vmferry.disks.safety import sigterm_as_interrupt
from vmferry.disks.vmdk_stream import DEFAULT_LEVEL
from vmferry.errors import UsageError
from vmferry.package import open_package
from vmferry.progress import make_reporter
from vmferry.tools import qemu_img


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="disk_command", metavar="ACTION")
    info = sub.add_parser("info", help="format (from content), sizes, allocation")
    info.add_argument("image", help="a disk image, or X.ova:MEMBER")
    info.add_argument("--json", action="store_true")
    conv = sub.add_parser("convert", help="convert to another format (atomic, free space checked)")
    conv.add_argument("image", help="a disk image, or X.ova:MEMBER")
    conv.add_argument("-o", "--output", required=True)
    conv.add_argument("-O", "--disk-format", help=f"one of {', '.join(FORMATS)}")
    conv.add_argument("--target", help="pick the usual format of a target (vmware, kvm, xen, azure...)")
    conv.add_argument("--adapter", default="lsilogic", help="VMDK ddb.adapterType (default lsilogic)")
    conv.add_argument("--level", type=int, default=DEFAULT_LEVEL, choices=range(1, 10), metavar="1-9")
    conv.add_argument("--force", action="store_true")
    conv.add_argument("--json", action="store_true")
    chk = sub.add_parser("check", help="qemu-img check of an image (exit 1 when qemu-img finds errors, 2 when the "
                                           "image cannot be read safely)")
    chk.add_argument("image", help="a disk image, or X.ova:MEMBER")
    chk.add_argument("--json", action="store_true")
    cmp_ = sub.add_parser("compare", help="do two images hold the same guest bytes and size? (exit 1 if not)")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    cmp_.add_argument("--json", action="store_true")
    sub.add_parser("formats", help="list the formats vmferry writes")


def _split_ova(image: str) -> tuple[str, str | None]:
    if ":" in image and not os.path.exists(image):
        ova, member = image.rsplit(":", 1)
        if ova.lower().endswith(".ova"):
            return ova, member
    return image, None


def _open(image: str):
    path, member = _split_ova(image)
    if member is None:
        return open_disk(path)
    pkg = open_package(path)     # the package reader: a FIFO is refused, the archive read safely
    if pkg.container != "ova":
        raise UsageError("X.ova:MEMBER names a member of an OVA archive", path=path)
    found = pkg.member(member)
    return open_disk(path, found.offset, found.size, name=f"{path}:{member}")


def _emit(doc: dict, text: str, as_json: bool) -> None:
    if as_json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text)


def run(args) -> int:
    action = getattr(args, "disk_command", None)
    if action == "formats":
        for f in FORMATS.values():
            print(f"{f.name:<12} {f.description}")
        return 0
    if action == "info":
        disk = _open(args.image)
        header = disk.header
        doc = {"path": disk.path, "offset": disk.offset, "format": disk.format,
               "subformat": disk.subformat, "virtual_size": disk.virtual_size, "detail": disk.detected.detail,
               "checked": list(header.checks) if header else [],
               "references": [{"kind": r.kind, "name": r.name, "path": r.path}
                              for r in (header.references if header else ())]
               + [{"kind": "extent", "name": os.path.basename(e.path), "path": e.path}
                  for e in (header.extents if header else ()) if e.path]}
        _emit(doc, f"{args.image}: {disk.format}, {disk.virtual_size} bytes ({disk.detected.detail})",
              args.json)
        return 0
    if action == "check":
        # an image the header check refuses (damaged tables, a file outside it) is bad input: exit 2,
        # never handed to qemu-img; what qemu-img check counts in an image it can read is exit 1
        disk = _open(args.image)
        report = qemu_img.check(disk.spec)
        problems = sum(int(report.get(k, 0) or 0) for k in ("check-errors", "corruptions", "leaks"))
        doc = {"path": disk.path, "format": disk.format, "ok": problems == 0,
               **{k: v for k, v in report.items() if not k.startswith("_")}}
        detail = f": {report['error']}" if report.get("error") else ""
        _emit(doc, f"{args.image}: {'no errors' if problems == 0 else f'{problems} problems'} ({disk.format})"
              f"{detail}", args.json)
        return 0 if problems == 0 else 1
    if action == "compare":
        a, b = _open(args.a), _open(args.b)
        same = a.virtual_size == b.virtual_size and qemu_img.compare(a.spec, b.spec)
        _emit({"a": args.a, "b": args.b, "identical": same, "size_a": a.virtual_size, "size_b": b.virtual_size},
              f"{'identical' if same else 'different'}: {args.a} ({a.format}) vs {args.b} ({b.format})", args.json)
        return 0 if same else 1
    if action == "convert":
        if bool(args.disk_format) == bool(args.target):
            raise UsageError("give exactly one of -O/--disk-format and --target")
        fmt = get_format(args.disk_format) if args.disk_format else default_format(args.target)
        reporter = make_reporter(args.json)
        kwargs = {"adapter": args.adapter, "level": args.level, "force": args.force, "reporter": reporter,
                  "align": _target_align(args.target, fmt.name)}
        with sigterm_as_interrupt():
            path, member = _split_ova(args.image)
            if member is not None:
                result = import_disk(path, member, args.output, fmt.name, **kwargs)
            else:
                result = convert_disk(open_disk(path), args.output, fmt, **kwargs)
        _emit(asdict(result), f"{result.path}: {result.format}, {result.virtual_size} bytes", args.json)
        return 0
    raise UsageError("disk needs an action: info, convert, check, compare or formats")


def _target_align(target: str | None, fmt: str) -> int:
    """The size alignment a target's row asks of fixed VHD and raw images (Azure: whole MiB); a sector."""
    from vmferry.disks.convert import PLAIN_WRITERS

    if not target or fmt not in PLAIN_WRITERS:
        return 512
    from vmferry.tables.targets import TARGETS

    spec = getattr(TARGETS.get(target), "cloud", None)
    return max(spec.size_align, 512) if spec is not None and fmt in PLAIN_WRITERS else 512
