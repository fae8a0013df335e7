"""Will the VM work on a target after `convert`? Each finding with a rule id, a location and its fix;
the verdict says ready (as is), ready after the fixes `convert` applies (listed), or not ready.
Exit 0 when ready either way, 1 when not ready, 2 on bad input."""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json, print_findings
from vmferry.tables.targets import converters


def add_arguments(p) -> None:
    p.add_argument("path", metavar="PATH", help=".ovf descriptor, OVF directory or .ova")
    p.add_argument("--target", required=True, choices=converters())
    p.add_argument("--descriptor-only", action="store_true", help="check the descriptor alone")
    p.add_argument("--no-guest", action="store_true", help="do not inspect the guest disks")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    from vmferry.check import check_package

    result = check_package(args.path, args.target, descriptor_only=args.descriptor_only,
                           guest=not args.no_guest)
    if args.json:
        emit_json(result.to_dict())
    else:
        line = {"ready": f"ready for {args.target} as is",
                "ready-after-convert": f"ready for {args.target} after the fixes 'vmferry convert' applies",
                "not-ready": f"NOT ready for {args.target}: convert does not fix every error"}[result.verdict]
        sys.stdout.write(f"{args.path}: {line} (dialect {result.dialect})\n")
        if result.fixes:
            sys.stdout.write(f"fixed by convert ({len(result.fixes)}):\n")
            print_findings(result.fixes)
        remaining = result.remaining
        if remaining:
            sys.stdout.write(f"left to you ({len(remaining)}):\n" if result.fixes else "")
            print_findings(remaining)
    return 0 if result.portable else 1
