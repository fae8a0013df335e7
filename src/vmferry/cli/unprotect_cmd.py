"""Stop protecting an application: remove the replica directory and the record protect created, and
nothing else (other applications' replicas, the source VMs and packages are left alone).
"""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json


def add_arguments(p) -> None:
    p.add_argument("app", metavar="APP", help="the application's name")
    p.add_argument("--json", action="store_true", help="print what was removed as JSON")


def run(args) -> int:
    from vmferry.replication.protect import unprotect

    removed = unprotect(args.app)
    if args.json:
        emit_json({"app": args.app, "removed": removed})
    else:
        sys.stdout.write(f"{args.app}: no longer protected" + "".join(f"\n  removed {p}" for p in removed) + "\n")
    return 0
