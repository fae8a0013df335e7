"""``vmferry recover APP --reprotect`` and ``--failback`` (called by :mod:`vmferry.cli.recover_cmd`).

``--reprotect``: after a failover, the copies running at the recovery site become the source and the old
source site's disks receive only what changed since the failover point; the protection record is
reversed (``vmferry status`` shows the new direction), and the application's sync schedule, paused by the
failover, syncs the new direction and runs again. ``--failback``: after a reprotect, a planned
failover back to the original site (:mod:`vmferry.cli.failover_cmd` runs it: the copies shut down, a final
point, the application launched, proved and its surroundings moved back). Exit status 0 when done, 1 when
the failback did not come up, 2 on bad input.
"""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json
from vmferry.errors import UsageError


def run(args, state: str) -> int:
    if args.test or args.cleanup or getattr(args, "failover", False) or (args.reprotect and args.failback):
        raise UsageError("reprotect and failback are actions of their own: ask for one")
    say = (lambda msg: sys.stderr.write(msg + "\n")) if not args.json and sys.stderr.isatty() else None
    if args.reprotect:
        from vmferry.recovery.reprotect import render_text, reprotect
        from vmferry.replication.store import Store
        from vmferry.workflows.endpoint import resolve_address

        store = Store(state)
        report = reprotect(args.app, store=store, say=say)
        address = resolve_address(args.temporal, state)
        # the sync schedule (paused by the failover) now syncs the new direction, resumed
        schedule = None
        if address:
            from vmferry.workflows.runs import follow_direction

            group = store.load(args.app)
            try:
                schedule = follow_direction(address, group)
            except Exception as exc:  # noqa: BLE001 - the reprotect is done; its schedule stays paused (safe)
                schedule = {"error": f"the sync schedule was not turned round: {exc}"}
                sys.stderr.write(f"vmferry: warning: {schedule['error']} (it stays paused: no sync runs in the old "
                                 f"direction; point it at {group.source_site} -> {group.target_site} with "
                                 "Temporal's schedule tools)\n")
        if args.json:
            emit_json({**report.to_dict(), "schedule": schedule})
        else:
            sys.stdout.write(render_text(report))
            if schedule and "error" not in schedule:
                sys.stdout.write(f"sync schedule {schedule['id']}: {schedule['source_site']} -> "
                                 f"{schedule['target_site']} every {schedule['every_seconds']:g} s, resumed\n")
        return 0
    # failback: the planned failover of the reprotected record (back to the original site), surroundings
    # included, in this process or as a durable run (the failover command's options and report)
    from vmferry.cli.failover_cmd import run_failover
    from vmferry.recovery.failback import failback_request

    request = failback_request(state, args.app, timeout=args.timeout)
    if args.to and args.to != request.site:
        raise UsageError(f"application {args.app!r} fails back to site {request.site!r}, not {args.to!r}")
    if args.point:
        raise UsageError("a failback launches from its own final point: no point can be chosen")
    args.failover, args.planned, args.disaster, args.to = True, True, False, request.site
    args.reprotect = args.failback = False
    return run_failover(args, state)
