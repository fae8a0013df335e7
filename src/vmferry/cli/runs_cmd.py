"""List vmferry's durable runs (protection, syncs), or follow one to its end.

Without RUN: the runs, newest first (--running: only those still running). With RUN --follow: its
progress (a bar per disk on a terminal, JSON events on standard error with --json) until it ends;
exit 0 when it completed, 2 when it failed. The Temporal service is --temporal, or $VMFERRY_TEMPORAL,
or the local server 'vmferry serve' started for the state directory.
"""

from __future__ import annotations

import argparse
import sys

from vmferry.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", nargs="?", metavar="RUN", help="a run's workflow id")
    parser.add_argument("--follow", action="store_true", help="follow RUN until it ends")
    parser.add_argument("--running", action="store_true", help="only runs still running")
    parser.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--temporal", metavar="HOST:PORT", help="the Temporal service")
    parser.add_argument("--namespace", default=None, help="Temporal namespace (default: default)")
    parser.add_argument("--state-dir", metavar="DIR", help="vmferry's state directory")


def run(args) -> int:
    from vmferry.cli.common import emit_json
    from vmferry.progress import make_reporter
    from vmferry.replication.model import to_json
    from vmferry.workflows.endpoint import DEFAULT_NAMESPACE, default_state_dir, resolve_address
    from vmferry.workflows.runs import follow_run, runs_now

    address = resolve_address(args.temporal, args.state_dir or default_state_dir())
    if address is None:
        raise UsageError("no Temporal service: start 'vmferry serve', or give its address")
    namespace = args.namespace or DEFAULT_NAMESPACE
    if args.follow:
        if not args.run:
            raise UsageError("--follow needs the RUN to follow")
        result = follow_run(address, args.run, make_reporter(args.json), namespace)
        if args.json:
            emit_json({"run": args.run, "status": "COMPLETED", "result": to_json(result)})
        else:
            print(f"{args.run}: completed")
        return 0
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}")
    runs = runs_now(address, namespace, args.limit, args.running)
    if args.run:
        runs = [r for r in runs if r.workflow_id == args.run]
        if not runs:
            raise UsageError(f"no run {args.run!r} among the newest {args.limit}")
    if args.json:
        emit_json({"runs": [to_json(r) for r in runs]})
        return 0
    if not runs:
        print("no runs")
        return 0
    width = max(len(r.workflow_id) for r in runs)
    for r in runs:
        ended = f"  ended {r.close_time[:19]}" if r.close_time else ""
        sys.stdout.write(f"{r.workflow_id:<{width}}  {r.workflow_type:<15} {r.status:<10} "
                         f"started {r.start_time[:19]}{ended}\n")
    return 0
