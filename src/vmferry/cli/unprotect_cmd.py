"""Stop protecting an application: remove the replica directory and the record protect created, and
nothing else (other applications' replicas, the source VMs and packages are left alone).
"""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json


def add_arguments(p) -> None:
    p.add_argument("app", metavar="APP", help="the application's name")
    p.add_argument("--json", action="store_true", help="print what was removed as JSON")
    p.add_argument("--temporal", metavar="HOST:PORT", help="also remove the application's sync schedule from this "
                   "Temporal service (default: $VMFERRY_TEMPORAL, else the one 'vmferry serve' runs)")


def run(args) -> int:
    from vmferry.replication.protect import unprotect
    from vmferry.workflows.endpoint import resolve_address

    address = resolve_address(args.temporal)
    if address:
        from vmferry.workflows.runs import unschedule

        unschedule(address, args.app)  # first: no scheduled sync starts on a half-removed replica
    removed = unprotect(args.app)
    if args.json:
        emit_json({"app": args.app, "removed": removed})
    else:
        sys.stdout.write(f"{args.app}: no longer protected" + "".join(f"\n  removed {p}" for p in removed) + "\n")
    return 0
