"""Cloud burst: copies of a protected application's component at its replica site, with traffic following.

``vmferry burst APP --component web --to SITE --add N`` launches N copies from the component's newest
ready image (copy-on-write overlays, each generalized: machine-id, hostname, SSH host keys, MAC, an address
of the site's pool), waits for their health checks, then adds them to the load balancer (HAProxy runtime
API), DNS and the locator. ``--remove N`` / ``--all`` drains the newest copies and removes them with their
overlays. ``--watch --for SECONDS`` runs the manifest's ``burst:`` policy as a bounded control loop over
HAProxy's statistics. Exit status 0 ok, 2 on bad input or failure (nothing of a failed run is left).
"""

from __future__ import annotations

import signal
import sys

from vmferry.cli.common import emit_json
from vmferry.errors import UsageError


def add_arguments(p) -> None:
    p.add_argument("app", metavar="APP", help="the protected application")
    p.add_argument("--component", required=True, metavar="NAME", help="the component to copy")
    p.add_argument("--to", metavar="SITE", help="the burst site (default: the protection group's replica site)")
    act = p.add_mutually_exclusive_group(required=True)
    act.add_argument("--add", type=int, metavar="N", help="launch and register N copies")
    act.add_argument("--remove", type=int, metavar="N", help="drain and remove the N newest copies")
    act.add_argument("--all", action="store_true", help="drain and remove every copy")
    act.add_argument("--watch", action="store_true", help="run the manifest's burst policy (bounded)")
    p.add_argument("--for", dest="duration", type=float, metavar="SECONDS", help="--watch: how long (required "
                   "unless --rounds)")
    p.add_argument("--rounds", type=int, metavar="N", help="--watch: at most N rounds")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS", help="--watch: between rounds (2)")
    p.add_argument("--drain-timeout", type=float, metavar="SECONDS",
                   help="how long draining copies may keep sessions (default: the policy's, else 60)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                   help="time each copy has from its start to prove itself (default 300)")
    p.add_argument("--domain-type", choices=("kvm", "qemu"), help="libvirt domain type (default: the best)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _interrupted(_signum, _frame):
    raise KeyboardInterrupt


def _check(args) -> None:
    for flag, value in (("add", args.add), ("remove", args.remove), ("rounds", args.rounds)):
        if value is not None and value < 1:
            raise UsageError(f"--{flag} must be at least 1, not {value}")
    for flag, value in (("for", args.duration), ("interval", args.interval), ("timeout", args.timeout),
                        ("drain-timeout", args.drain_timeout)):
        if value is not None and value <= 0 and not (flag == "drain-timeout" and value == 0):
            raise UsageError(f"--{flag} must be positive, not {value:g}")
    if args.watch and args.duration is None and args.rounds is None:
        raise UsageError("--watch needs a bound: --for SECONDS or --rounds N")
    if not args.watch and (args.duration is not None or args.rounds is not None):
        raise UsageError("--for and --rounds go with --watch")


def run(args) -> int:
    _check(args)
    from vmferry.burst import policy, scale
    from vmferry.burst.target import target_from_group
    from vmferry.plans.manifest import load_app
    from vmferry.replication.store import Store, state_dir

    state = state_dir()
    group = Store(state).load(args.app)
    app = load_app(group.manifest)
    target = target_from_group(app, group, args.component, args.to or group.target_site,
                               domain_type=args.domain_type, timeout=args.timeout)
    say = (lambda msg: sys.stderr.write(msg + "\n")) if not args.json else None
    old = signal.signal(signal.SIGTERM, _interrupted)     # a terminated run still removes what it made
    try:
        if args.add is not None:
            copies = scale.add_copies(target, args.add, state, say=say)
            doc = {"added": [c.to_dict() for c in copies]}
            text = [f"{c.name}: serving at {c.address} ({c.hostname}, {c.mac}), up in "
                    f"{c.timings.get('launch', 0) + c.timings.get('boot_to_health', 0):.1f} s" for c in copies]
        elif args.watch:
            result = policy.watch(target, state, duration=args.duration, rounds=args.rounds,
                                  interval=args.interval, say=say)
            doc = result.to_dict()
            text = [f"{d.at} {d.action} {d.count or ''} {d.metric}={'-' if d.value is None else f'{d.value:g}'}: "
                    f"{d.reason}"
                    for d in result.decisions]
        else:
            names = scale.remove_copies(target, state, count=None if args.all else args.remove,
                                        drain_timeout=args.drain_timeout, say=say)
            doc = {"removed": names}
            text = [f"removed {n}" for n in names] or ["no copy to remove"]
    finally:
        signal.signal(signal.SIGTERM, old)
    if args.json:
        emit_json(doc)
    else:
        sys.stdout.write("\n".join(text) + "\n")
    return 0
