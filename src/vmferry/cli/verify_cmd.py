"""Verify recovery points against the digests recorded when they were sealed: each layer file, and
(unless --quick) each disk read whole through its chain. A point that fails is VMF-DR-002 (exit 1).
"""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json


def add_arguments(p) -> None:
    p.add_argument("app", metavar="APP", help="the application's name")
    p.add_argument("--point", metavar="ID", help="one point (default: every point)")
    p.add_argument("--quick", action="store_true", help="check the layer files' digests only")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args) -> int:
    from vmferry.replication.status import verify_app

    result = verify_app(args.app, point_id=args.point, deep=not args.quick)
    bad = bool(result["findings"])
    if args.json:
        emit_json(result)
        return 1 if bad else 0
    for p in result["points"]:
        sys.stdout.write(f"{args.app} {p['id']}: {'ok' if not p['problems'] else 'FAILED'}\n")
        for problem in p["problems"]:
            sys.stdout.write(f"  {problem}\n")
    for f in result["findings"]:
        sys.stdout.write(f"{f['severity'].upper():7} {f['rule']} {f['message']}\n")
    return 1 if bad else 0
