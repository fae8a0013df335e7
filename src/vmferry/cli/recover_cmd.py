"""Recover a protected application at its other site.

``vmferry recover APP --to dr --test [--point ID]`` boots the replicas of a recovery point (the newest by
default) in isolated networks the run creates (no route out), from throwaway overlays, boot group by
boot group; proves each VM (guest agent, declared health checks), runs the application checks, removes
everything it created and reports the time to proof of each VM and the measured RTO. Exit status 0
when the application came up, 1 when it did not, 2 on bad input.

``vmferry recover APP --to dr --failover --planned | --disaster [--point ID]`` fails the application over
(:mod:`vmferry.cli.failover_cmd`): the VMs run at the target on its production networks, the surroundings
(DNS, load balancer, firewall, locator) follow. Exit status 0 when it came up, 1 when not, 2 on bad input.

``vmferry recover --cleanup`` removes what interrupted test runs left behind (their cleanup journals).

Run control: ``--hook-before``/``--hook-after STEP=COMMAND`` run a host command around a boot group
(STEP: a component of the group, or group-N) with ``--hook-timeout``; results are in the report, a
failed hook fails the run. With a Temporal service (``--temporal``, $VMFERRY_TEMPORAL, or ``vmferry
serve``'s) the test is a durable run (``vmferry runs show/cancel RUN``); ``--pause-before STEP`` (a boot
group, a component, or ``checks``) stops it at a gate until ``vmferry runs resume RUN``; ``--detach``
prints the run and returns at once.
"""

from __future__ import annotations

import signal
import sys

from vmferry.cli.common import emit_json
from vmferry.errors import UsageError


def add_arguments(p) -> None:
    p.add_argument("app", metavar="APP", nargs="?", help="the protected application")
    p.add_argument("--to", metavar="SITE", help="the site to recover at (the protection group's target)")
    p.add_argument("--test", action="store_true", help="test recovery in isolated networks, then remove it all")
    p.add_argument("--point", metavar="ID", help="the recovery point (default: the newest)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                   help="time each VM has from its start to prove itself (default 300)")
    p.add_argument("--html", metavar="FILE", help="also write the report as a self-contained HTML page")
    p.add_argument("--cleanup", action="store_true", help="remove what interrupted runs left behind")
    p.add_argument("--reprotect", action="store_true",
                   help="after a failover: protect back to the old source site, sending only what changed")
    p.add_argument("--failback", action="store_true", help="after a reprotect: planned failover back home")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--pause-before", action="append", default=[], metavar="STEP",
                   help="stop at a gate before STEP (group-N, a component, checks) until 'vmferry runs resume' "
                        "(needs a Temporal service); repeatable")
    p.add_argument("--hook-before", action="append", default=[], metavar="STEP=COMMAND",
                   help="run COMMAND on this host before the boot group of STEP; repeatable")
    p.add_argument("--hook-after", action="append", default=[], metavar="STEP=COMMAND",
                   help="run COMMAND on this host after the boot group of STEP proved itself; repeatable")
    p.add_argument("--hook-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="time each hook has (default 300)")
    p.add_argument("--temporal", metavar="HOST:PORT", help="run the test or failover as a durable run on this Temporal service")
    p.add_argument("--detach", action="store_true", help="durable run: print its id and return")
    from vmferry.cli.failover_cmd import add_failover_arguments

    add_failover_arguments(p)


def _interrupted(_signum, _frame):
    raise KeyboardInterrupt


def run(args) -> int:
    from vmferry.recovery.journal import cleanup_pending
    from vmferry.replication.store import state_dir

    state = state_dir()
    if args.cleanup:
        if args.app or args.test:
            raise UsageError("cleanup takes no application and no other action")
        result = cleanup_pending(state)
        if args.json:
            emit_json(result.to_dict())
        else:
            for item in result.removed:
                sys.stdout.write(f"removed {item}\n")
            for item in result.left:
                sys.stdout.write(f"LEFT {item}\n")
            if not result.removed and not result.left:
                sys.stdout.write("nothing to clean\n")
        return 0 if result.clean else 1
    if not args.app:
        raise UsageError("name the application to recover")
    if args.reprotect or args.failback:
        from vmferry.cli import recover_reverse

        return recover_reverse.run(args, state)
    if args.failover:
        from vmferry.cli.failover_cmd import run_failover

        return run_failover(args, state)
    if not args.test:
        raise UsageError("only test recoveries are available: ask for a test")
    if args.timeout <= 0:
        raise UsageError(f"the timeout must be positive, not {args.timeout:g}")
    hooks = _hooks(args)
    from vmferry.plans.manifest import load_app
    from vmferry.recovery.spec import plan_from_group
    from vmferry.recovery.test import run_test
    from vmferry.replication.store import Store

    group = Store(state).load(args.app)
    if args.to and args.to != group.target_site:
        raise UsageError(f"application {args.app!r} is protected to site {group.target_site!r}, not {args.to!r}")
    app = load_app(group.manifest)
    plan = plan_from_group(app, group, point_id=args.point, timeout=args.timeout)
    if args.html:
        from pathlib import Path

        if not Path(args.html).parent.resolve().is_dir():
            raise UsageError(f"{args.html}: the directory does not exist")
    from vmferry.errors import RecoveryError
    from vmferry.recovery.control import Control, resolve
    from vmferry.workflows.endpoint import resolve_address

    control = Control(pause_before=tuple(args.pause_before), hooks=hooks)
    try:
        resolve(control, plan.groups)                     # bad step names are refused before anything runs
    except RecoveryError as exc:
        raise UsageError(str(exc)) from exc
    say = (lambda msg: sys.stderr.write(msg + "\n")) if not args.json and sys.stderr.isatty() else None
    address = resolve_address(args.temporal, state)
    if address is None and (args.pause_before or args.detach):
        raise UsageError("pausing at a gate or detaching needs a durable run: start 'vmferry serve' or give "
                         "--temporal HOST:PORT")
    if address is not None:
        report = _durable(address, args, group, control, say)
        if report is None:
            return 0
    else:
        old = signal.signal(signal.SIGTERM, _interrupted)    # a terminated run still cleans up (finally)
        try:
            report = run_test(plan, state, say=say, control=control)
        finally:
            signal.signal(signal.SIGTERM, old)
        _record(group, report)                            # a durable run's worker records it itself
    return emit_report(report, args)


def emit_report(report, args) -> int:
    """A recovery report (test or failover) as the command prints it: the HTML page written atomically when
    asked, JSON or text on stdout; exit 0 when the run proved the application, else 1."""
    from vmferry.recovery.report import render_html, render_text

    if args.html:
        _write(args.html, render_html(report))
    if args.json:
        emit_json(report.to_dict())
    else:
        sys.stdout.write(render_text(report))
    return 0 if report.ok else 1


def _hooks(args) -> tuple:
    from vmferry.recovery.control import Hook

    if args.hook_timeout <= 0:
        raise UsageError(f"the hook timeout must be positive, not {args.hook_timeout:g}")
    out = []
    for when, values in (("before", args.hook_before), ("after", args.hook_after)):
        for value in values:
            step, sep, command = value.partition("=")
            if not sep or not step.strip() or not command.strip():
                raise UsageError(f"a hook is STEP=COMMAND, not {value!r}")
            out.append(Hook(when, step.strip(), command, args.hook_timeout))
    return tuple(out)


def _durable(address: str, args, group, control, say):
    """The test as a durable run (TestRecovery workflow): its report, or None when detached."""
    from vmferry.recovery.report import report_from_dict
    from vmferry.workflows.control import run_test_recovery
    from vmferry.workflows.recovery import TestRecoveryRequest

    request = TestRecoveryRequest(group.app, group.target_site, point_id=args.point, timeout=args.timeout,
                                  pause_before=control.pause_before, hooks=control.hooks)
    events = say or (lambda msg: sys.stderr.write(msg + "\n"))
    run_id, doc = run_test_recovery(address, request, on_event=events, detach=args.detach)
    if doc is None:
        sys.stdout.write(f"{run_id}\n")
        return None
    return report_from_dict(doc)


def _record(group, report) -> None:
    from vmferry.recovery.record import record_report

    record_report(report)


def _write(path: str, text: str) -> None:
    import os
    import tempfile

    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".vmferry-report-", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
