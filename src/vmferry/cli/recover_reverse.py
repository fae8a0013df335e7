"""``vmferry recover APP --reprotect`` and ``--failback`` (called by :mod:`vmferry.cli.recover_cmd`).

``--reprotect``: after a failover, the copies running at the recovery site become the source and the old
source site's disks receive only what changed since the failover point; the protection record is
reversed (``vmferry status`` shows the new direction). ``--failback``: after a reprotect, a planned
failover back to the original site (the copies paused, a final point, the application launched and
proved there). Exit status 0 when done, 1 when the failback did not prove itself, 2 on bad input.
"""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json
from vmferry.errors import UsageError


def production_networks(app, site: str, plan) -> dict[str, str]:
    """Target network -> the site's libvirt network (the site's ``networks:`` map, by name)."""
    lib = app.sites[site].libvirt
    out = {}
    for tn in plan.networks:
        mapped = lib.network(tn.name) if lib is not None else None
        if mapped:
            out[tn.name] = mapped
    return out


def run(args, state: str) -> int:
    if args.test or args.cleanup or (args.reprotect and args.failback):
        raise UsageError("reprotect and failback are actions of their own: ask for one")
    say = (lambda msg: sys.stderr.write(msg + "\n")) if not args.json and sys.stderr.isatty() else None
    if args.reprotect:
        from vmferry.recovery.reprotect import render_text, reprotect
        from vmferry.replication.store import Store

        report = reprotect(args.app, store=Store(state), say=say)
        if args.json:
            emit_json(report.to_dict())
        else:
            sys.stdout.write(render_text(report))
        return 0
    from vmferry.plans.manifest import load_app
    from vmferry.recovery.failback import failback, render_text
    from vmferry.recovery.spec import plan_from_group
    from vmferry.replication.store import Store

    store = Store(state)
    group = store.load(args.app)
    if args.to and args.to != group.target_site:
        raise UsageError(f"application {args.app!r} fails back to site {group.target_site!r}, not {args.to!r}")
    app = load_app(group.manifest)
    production = production_networks(app, group.target_site, plan_from_group(app, group)) if group.points else {}
    report = failback(args.app, state, production=production, store=store, timeout=args.timeout, say=say)
    if args.json:
        emit_json(report.to_dict())
    else:
        sys.stdout.write(render_text(report))
    return 0 if report.ok else 1
