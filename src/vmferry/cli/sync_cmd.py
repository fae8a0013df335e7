"""Take one recovery point of a protected application: every VM at one moment, only changed blocks
copied; points beyond the group's retention are merged into the oldest kept one.
"""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json, human_bytes

# a sync has written everything before it returns (no Python buffer holds any of it; what must last is
# fsync'd): cli/main ends the process without finalizing the interpreter
END_WITHOUT_FINALIZING = True


def add_arguments(p) -> None:
    p.add_argument("app", metavar="APP", help="the application's name")
    p.add_argument("--json", action="store_true", help="print the recovery point as JSON (progress: JSON events "
                   "on standard error)")
    p.add_argument("--max-rate", metavar="RATE", help="bandwidth limit of each disk copy for this sync, bytes per "
                   "second: 50M, 512k, 0 for none (default: the limit set at protect)")
    p.add_argument("--temporal", metavar="HOST:PORT", help="run as a durable workflow on this Temporal service "
                   "(default: $VMFERRY_TEMPORAL, else the one 'vmferry serve' runs; none: run here directly)")


def run(args) -> int:
    from vmferry.recovery.failover_record import refuse_sync
    from vmferry.replication.model import to_json
    from vmferry.replication.protect import parse_rate, sync_app
    from vmferry.replication.store import Store
    from vmferry.workflows.endpoint import resolve_address

    rate = None if args.max_rate is None else parse_rate(args.max_rate)
    refuse_sync(Store().root, args.app)          # the durable run's first step says the same
    address = resolve_address(args.temporal)
    if address:
        from vmferry.progress import make_reporter
        from vmferry.workflows.runs import sync_app_durably

        point = sync_app_durably(address, args.app, make_reporter(json_mode=args.json), max_rate=rate)
    else:
        point = sync_app(args.app, max_rate=rate)
    if args.json:
        emit_json(to_json(point))
        return 0
    sys.stdout.write(f"{point.app}: point {point.point_id} ({point.consistency}-consistent), "
                     f"{human_bytes(point.bytes_read)} read, {human_bytes(point.bytes_written)} written, "
                     f"{point.seconds:.1f} s\n")
    return 0
