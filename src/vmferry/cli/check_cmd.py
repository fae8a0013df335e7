"""Report what is not portable to a target, each finding with a rule id, a location and the fix
`convert` applies. Exit 0 when nothing of severity error remains, 1 otherwise, 2 on bad input."""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json, print_findings


def add_arguments(p) -> None:
    p.add_argument("path", metavar="PATH", help=".ovf descriptor, OVF directory or .ova")
    p.add_argument("--target", required=True, choices=("dmtf", "vmware", "virtualbox", "xen", "kvm"))
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
        verdict = "portable" if result.portable else "NOT portable"
        sys.stdout.write(f"{args.path}: {verdict} to {args.target} (dialect {result.dialect})\n")
        print_findings(result.findings)
    return 0 if result.portable else 1
