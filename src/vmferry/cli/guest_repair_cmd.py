"""Repair the Linux guest on a disk image, or on the boot disk of an OVF/OVA package, so that it boots and
keeps its network on every hypervisor given with --for: the drivers of each (and of the source) in the
initramfs of every kernel, network configuration following the NIC by MAC, device names by UUID, the
tools of other hypervisors masked; with --generalize, the identity of this copy reset.

The source is never modified: an image is repaired into -o OUT (or in place with --in-place), a package
is written anew to -o OUT with its boot disk repaired. --dry-run prints the changes without writing.
Exit status: 0 repaired; 1 when something could not be repaired (listed); 2 on bad input.
"""

from __future__ import annotations

import os
import sys

from vmferry.errors import UsageError


def add_arguments(p) -> None:
    p.add_argument("path", metavar="IMAGE|PACKAGE", help="a disk image, or an .ovf/.ova package")
    p.add_argument("--for", dest="targets", required=True, metavar="HV[,HV...]",
                   help="hypervisors the guest must run on: kvm, vmware, xen, hyperv, virtualbox, aws (EC2: nvme, ena, "
                   "xen)")
    p.add_argument("-o", "--output", help="where to write the repaired copy (image or package)")
    p.add_argument("--in-place", action="store_true", help="repair the image itself (not for packages)")
    p.add_argument("--generalize", action="store_true", help="reset machine-id, SSH host keys, DHCP leases, "
                   "persistent-net rules and the hostname, for launching several copies")
    p.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    p.add_argument("--set", action="append", default=[], metavar="vmferry.net.N.KEY=VALUE",
                   help="NIC N's new address (10.0.0.5/24), gateway, dns (comma-separated) or mac (repeatable)")
    p.add_argument("--force", action="store_true", help="overwrite the output")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args) -> int:
    from vmferry.cli.guest_cmd import _is_package
    from vmferry.guest.repair import check_targets, parse_settings

    targets = check_targets([t.strip() for t in args.targets.split(",") if t.strip()])
    settings = parse_settings(args.set)
    path = args.path
    if not os.path.exists(path):
        raise UsageError("no such file", path=path)
    options = {"generalize": args.generalize}
    if _is_package(path):
        if args.in_place:
            raise UsageError("a package is never repaired in place: give -o OUT", path=path)
        if args.dry_run:
            report = _dry_run_package(path, targets, settings, options)
        elif not args.output:
            raise UsageError("a package is repaired into a new package: give -o OUT", path=path)
        else:
            from vmferry.guest.repaircopy import repair_package

            report = repair_package(path, args.output, targets, settings=settings, force=args.force, **options)
    else:
        from vmferry.guest.repair import merge_settings, repair_image

        nics = merge_settings([], settings)
        if args.dry_run:
            report = repair_image(path, targets, nics=nics, dry_run=True, **options)
        elif args.output:
            from vmferry.guest.repaircopy import repair_image_copy

            report = repair_image_copy(path, args.output, targets, nics=nics, force=args.force, **options)
        elif args.in_place:
            report = repair_image(path, targets, nics=nics, **options)
        else:
            raise UsageError("refusing to modify the image in place: give -o OUT (or --in-place)", path=path)
    if args.json:
        from vmferry.cli.common import emit_json

        emit_json(report.to_dict())
    else:
        _print(report)
    return 1 if report.problems else 0


def _dry_run_package(path, targets, settings, options):
    import tempfile

    from vmferry.check import boot_disk_image
    from vmferry.dialects import read_package
    from vmferry.guest.repair import merge_settings, repair_image
    from vmferry.guest.repaircopy import DIALECTS
    from vmferry.package import open_package
    from vmferry.targets.macs import nic_macs

    pkg = open_package(path)
    portable = read_package(pkg.envelope)
    with tempfile.TemporaryDirectory(prefix="vmferry-repair-") as tmp, \
            boot_disk_image(pkg, portable, tmp) as image:
        if image is None:
            raise UsageError("the package carries no disk image to repair", path=path)
        source = DIALECTS.get(portable.source_dialect or "", (None, ""))[0]
        macs = nic_macs(portable.systems[0], portable.default_profile) if portable.systems else []
        return repair_image(image, targets, nics=merge_settings(macs, settings), dry_run=True,
                            source=[source] if source else None, **options)


def _print(report) -> None:
    out = sys.stdout
    verb = "would change" if report.dry_run else "changed"
    out.write(f"{report.image}: {report.os}; repaired for {', '.join(report.targets)}"
              + (f" (source: {', '.join(report.source)})" if report.source else "")
              + f" in {report.seconds} s; {len(report.changes)} file(s) {verb}\n")
    for c in report.changes:
        out.write(f"  {c.file}: {c.reason}\n")
        if c.old is not None and c.new is not None and not c.new.startswith("-> ") and len(c.old) + len(c.new) < 4000:
            import difflib

            for line in difflib.unified_diff(c.old.splitlines(), c.new.splitlines(), "old", "new", lineterm="", n=0):
                if not line.startswith(("---", "+++", "@@")):
                    out.write(f"      {line}\n")
        elif c.new is None:
            out.write("      (removed)\n")
        elif c.old is None and not c.new.startswith("-> "):
            for line in c.new.splitlines()[:12]:
                out.write(f"      +{line}\n")
        else:
            out.write(f"      {c.new}\n")
    for kernel, drivers in report.drivers.items():
        out.write(f"  initramfs of {kernel} holds: {', '.join(drivers)}\n")
    for n in report.notes:
        out.write(f"  note: {n}\n")
    for p in report.problems:
        out.write(f"  NOT REPAIRED: {p}\n")
