"""List vmferry's durable runs (protection, syncs, test recoveries), show, follow, resume or cancel one.

``vmferry runs [list]``: the runs, newest first (--running: only those still running).
``vmferry runs show RUN``: its status, the gate it waits at, its current activity and last heartbeat,
its result (a test recovery's report).
``vmferry runs resume RUN [--step STEP]``: open the gate the run waits at (a recovery started with
``--pause-before``). ``vmferry runs cancel RUN``: cancel it and wait until it ended (a cancelled test
recovery still removes what it created).
``vmferry runs RUN --follow``: its progress (a bar per disk on a terminal, JSON events on standard error
with --json) until it ends; exit 0 when it completed, 2 when it failed.
The Temporal service is --temporal, or $VMFERRY_TEMPORAL, or the local server 'vmferry serve' started
for the state directory.
"""

from __future__ import annotations

import argparse
import sys

from vmferry.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", metavar="ACTION|RUN",
                        help="list, show RUN, resume RUN, cancel RUN; or a run's workflow id (with --follow)")
    parser.add_argument("run", nargs="?", metavar="RUN", help="a run's workflow id")
    parser.add_argument("--step", default="", metavar="STEP", help="resume: the gate to open (default: the "
                        "one the run waits at)")
    parser.add_argument("--follow", action="store_true", help="follow RUN until it ends")
    parser.add_argument("--running", action="store_true", help="only runs still running")
    parser.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--temporal", metavar="HOST:PORT", help="the Temporal service")
    parser.add_argument("--namespace", default=None, help="Temporal namespace (default: default)")
    parser.add_argument("--state-dir", metavar="DIR", help="vmferry's state directory")


ACTIONS = ("list", "show", "resume", "cancel")


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
    if args.action in ACTIONS:
        action = args.action
    else:
        if args.run:
            raise UsageError(f"unknown action {args.action!r} (actions: {', '.join(ACTIONS)})")
        action, args.run = "list", args.action
    if action in ("show", "resume", "cancel"):
        if not args.run:
            raise UsageError(f"{action} needs the RUN")
        return _control(action, address, namespace, args)
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


def _control(action: str, address: str, namespace: str, args) -> int:
    from dataclasses import asdict

    from vmferry.cli.common import emit_json
    from vmferry.workflows.control import cancel_run, resume_run, show_run

    if action == "resume":
        info = resume_run(address, args.run, args.step, namespace)
        what = args.step or info.paused_at
        if args.json:
            emit_json({"run": args.run, "resumed": what})
        else:
            print(f"{args.run}: resumed at the gate before {what}")
        return 0
    info = cancel_run(address, args.run, namespace) if action == "cancel" else show_run(address, args.run, namespace)
    if args.json:
        emit_json(asdict(info))
        return 0
    lines = [f"{info.workflow_id} ({info.workflow_type}): {info.status}",
             f"  started {info.start_time[:19]}" + (f", ended {info.close_time[:19]}" if info.close_time else "")]
    if info.paused_at:
        lines.append(f"  paused before {info.paused_at} (vmferry runs resume {info.workflow_id})")
    if info.released:
        lines.append(f"  gates opened: {', '.join(info.released)}")
    if info.activity:
        lines.append(f"  running {info.activity} (attempt {info.attempt})" + (f": {info.latest}" if info.latest else ""))
    if info.failure:
        lines.append(f"  failure: {info.failure}")
    if info.result is not None and info.workflow_type == "TestRecovery":
        from vmferry.recovery.report import render_text, report_from_dict

        lines += ["  " + ln for ln in render_text(report_from_dict(info.result)).splitlines()]
    elif info.result is not None:
        lines.append(f"  result: {info.result}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
