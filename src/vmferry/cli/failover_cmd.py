"""``vmferry recover APP --to SITE --failover --planned | --disaster [--point ID] [--json] [--html FILE]``.

Runs :func:`vmferry.recovery.failover_steps.failover` in this process, or — when a Temporal server is
configured (``--temporal``, ``$VMFERRY_TEMPORAL`` or the one ``vmferry serve`` recorded) — the
``Failover`` workflow (:mod:`vmferry.workflows.failover`) on the sites' workers, and waits for its report.
"""

from __future__ import annotations

import sys

from vmferry.errors import UsageError


def add_failover_arguments(p) -> None:
    p.add_argument("--failover", action="store_true",
                   help="fail the application over to the site: its VMs run there, its surroundings follow")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--planned", action="store_true",
                      help="failover: stop the source cleanly, take a final point (no data lost)")
    mode.add_argument("--disaster", action="store_true",
                      help="failover: leave the source alone (it may be gone), launch the newest or chosen point")
    p.add_argument("--shutdown-timeout", type=float, default=120.0, metavar="SECONDS",
                   help="planned failover: time the source VMs have to shut down before power-off (default 120)")
    p.add_argument("--domain-type", choices=("kvm", "qemu"), help="libvirt domain type at the target")


def run_failover(args, state) -> int:
    from vmferry.recovery.failover_record import load
    from vmferry.recovery.failover_steps import FailoverRequest, build_report, failover
    from vmferry.replication.store import Store

    if args.test or args.cleanup:
        raise UsageError("a failover is not a test: ask for one or the other")
    if getattr(args, "pause_before", None) or getattr(args, "hook_before", None) or getattr(args, "hook_after", None) \
            or getattr(args, "detach", False):
        raise UsageError("pause gates, hooks and detaching are for test runs; a failover runs to its end")
    if not (args.planned or args.disaster):
        raise UsageError("say which failover: planned (the source is stopped first) or disaster")
    if args.timeout <= 0 or args.shutdown_timeout <= 0:
        raise UsageError("timeouts must be positive")
    group = Store(state).load(args.app)
    site = args.to or group.target_site
    if site != group.target_site:
        raise UsageError(f"application {args.app!r} is protected to site {group.target_site!r}, not {site!r}")
    if args.planned and args.point:
        raise UsageError("a planned failover launches from its own final point: no point can be chosen")
    if args.disaster and args.point and group.point(args.point) is None:
        have = ", ".join(p.point_id for p in group.points) or "none"
        raise UsageError(f"application {args.app!r} has no recovery point {args.point} (points: {have})")
    request = FailoverRequest(args.app, site, "planned" if args.planned else "disaster", point_id=args.point,
                              timeout=args.timeout, shutdown_timeout=args.shutdown_timeout,
                              domain_type=args.domain_type)
    say = (lambda msg: sys.stderr.write(msg + "\n")) if not args.json and sys.stderr.isatty() else (lambda _m: None)
    from vmferry.workflows.endpoint import resolve_address

    address = resolve_address(args.temporal, state)
    if address:
        from vmferry.workflows.failover import FailoverRun, failover_durably

        failover_durably(address, FailoverRun(request, group.source_site))
    else:
        failover(state, request, say=say)
    from vmferry.cli.recover_cmd import emit_report

    return emit_report(build_report(state, load(state, args.app)), args)
