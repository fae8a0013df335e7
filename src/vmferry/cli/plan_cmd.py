"""Plan (and apply) the move of an application from one site to another (manifest schema: docs/app.md).

Without --apply nothing is changed: the plan is printed, its steps exactly as --apply would run them.
--apply runs the steps (DNS by RFC 2136 + TSIG, the locator service, HAProxy's runtime API, an
nftables ruleset checked with nft -c) and records each in a journal (--state, default
APP.<from>-to-<to>.state.json next to the manifest): a second --apply changes nothing, a failed one
is finished by running it again. With --observed/--ss (and no --from/--to) it only suggests the
dependencies seen on the wire that the manifest lacks.
Exit status: 0 ok, 1 the plan has risks of severity error, 2 bad input or a failed apply.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vmferry.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", metavar="APP.yaml", help="application manifest")
    parser.add_argument("--from", dest="source", metavar="SITE", help="site the application runs at now")
    parser.add_argument("--to", dest="target", metavar="SITE", help="site it moves to")
    parser.add_argument("--sites", metavar="FILE", help="YAML file of sites overriding the manifest's")
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON document")
    parser.add_argument("--graph", metavar="FILE.svg", help="draw the application and its changes (Graphviz)")
    parser.add_argument("--apply", action="store_true", help="apply the steps (default: dry run)")
    parser.add_argument("--state", metavar="FILE", help="journal of applied steps (see above)")
    parser.add_argument("--force", action="store_true", help="apply even though the plan has error risks")
    parser.add_argument("--observed", action="append", default=[], metavar="FLOWS.csv",
                        help="observed connections src,dst,port,proto (repeatable)")
    parser.add_argument("--ss", action="append", default=[], metavar="COMPONENT=FILE",
                        help="`ss -tn` output captured on a component's VM (repeatable)")


def _suggestions(app, args):
    from vmferry.plans.discover import read_flows_csv, read_ss, suggest

    flows = []
    for path in args.observed:
        flows += read_flows_csv(path)
    for spec in args.ss:
        comp, sep, path = spec.partition("=")
        if not sep or not comp or not path:
            raise UsageError(f"--ss wants COMPONENT=FILE, not {spec!r}")
        flows += read_ss(path, app, comp)
    return suggest(app, flows)


def _print_plan(plan, out, done: set[str]) -> None:
    w = out.write
    w(f"plan: {plan.app} from {plan.source} to {plan.target}\n")
    w("\nnetworks:\n")
    for src, dst in plan.networks.items():
        w(f"  {src} -> {dst or 'UNMAPPED'}\n")
    w("\naddresses:\n")
    for n in plan.nics:
        w(f"  {n.component} nic{n.index}: {n.old_address or 'dhcp'} -> {n.new_address or '?'}  ({n.rule})\n")
    w("\nOVF environment properties:\n")
    for vm in plan.vm_settings:
        w(f"  {vm.component}: " + " ".join(f"{k}={v}" for k, v in vm.properties.items()) + "\n")
    w("\nDNS records:\n")
    for d in plan.dns:
        w(f"  {d.name} {d.type}: {', '.join(d.old) or '-'} -> {', '.join(d.new) or '-'}"
          f"{'' if d.changed else '  (unchanged)'}\n")
    w("\nload-balancer members:\n")
    for c in plan.lb:
        w(f"  {c.pool}/{c.member}: {c.old or '-'} -> {c.new or '-'}  (check {c.check})\n")
    w("\nfirewall rules:\n")
    for f in plan.firewall:
        w(f"  {f.rule}:\n    - {f.old}\n    + {f.new or 'CANNOT BE WRITTEN AT THE TARGET'}\n")
    w("\ncertificates that will not match:\n")
    for c in plan.certificates:
        w(f"  {c.certificate} ({c.component}): {c.problem}\n")
    w("\nexternal services:\n")
    for s in plan.services:
        tag = " [identity]" if s.identity else ""
        w(f"  {s.component} -> {s.service} ({s.kind}){tag}: {s.old} -> {s.new or 'NO COUNTERPART'}\n")
    w("\nlocator registrations:\n")
    for c in plan.locator:
        w(f"  {c.eid} ({c.component}) -> {c.new or '?'}\n")
    w("\nboot order:\n")
    for i, group in enumerate(plan.boot_order, 1):
        w(f"  {i}. {', '.join(group)}\n")
    for cyc in plan.cycles:
        w(f"  cycle: {' -> '.join(cyc + cyc[:1])}\n")
    w("\nrisks:\n")
    for r in plan.risks:
        w(f"  {r}\n")
        if r.fix:
            w(f"          fix: {r.fix}\n")
    if plan.suggestions:
        w("\nsuggested dependencies (observed, not in the manifest):\n")
        for s in plan.suggestions:
            w(f"  {s.source} -> {s.target} {s.port}/{s.protocol} (seen {s.seen}x): {s.yaml}\n")
    w(f"\nsteps ({len(plan.steps)}):\n")
    for i, s in enumerate(plan.steps, 1):
        w(f"  {i}. {s.summary}{'  (already applied: skipped)' if s.id in done else ''}\n")


def run(args: argparse.Namespace) -> int:
    from vmferry.cli.common import emit_json
    from vmferry.plans import apply_plan, build_plan, default_journal, load_app, write_svg
    from vmferry.plans.apply import Journal

    if bool(args.source) != bool(args.target):
        raise UsageError("give both --from and --to")
    if (args.apply or args.graph or args.state) and not args.source:
        raise UsageError("--apply, --graph and --state need --from and --to")
    app = load_app(args.manifest, sites_file=args.sites)
    suggestions = _suggestions(app, args) if (args.observed or args.ss) else []
    if not args.source:
        if not (args.observed or args.ss):
            raise UsageError("give --from SITE --to SITE (or --observed/--ss for suggestions)")
        if args.json:
            emit_json({"suggestions": [{**s.__dict__, "yaml": s.yaml} for s in suggestions]})
        else:
            for s in suggestions:
                print(f"{s.source} -> {s.target} {s.port}/{s.protocol} (seen {s.seen}x): {s.yaml}")
        return 0
    plan = build_plan(app, args.source, args.target)
    plan.suggestions = suggestions
    if args.graph:
        write_svg(app, plan, args.graph)
    journal = args.state or default_journal(args.manifest, plan)
    if not args.apply:
        done = {s.id for s in plan.steps if Journal(journal, plan).is_done(s)} if Path(journal).exists() else set()
        if args.json:
            doc = plan.to_dict()
            for step in doc["steps"]:
                step["already_applied"] = step["id"] in done
            emit_json({**doc, "dry_run": True, "journal": str(journal)})
        else:
            _print_plan(plan, sys.stdout, done)
            print("\ndry run: nothing was changed (add --apply to run the steps)")
        return 1 if plan.has_errors else 0
    if plan.has_errors and not args.force:
        raise UsageError(f"the plan has {sum(r.severity == 'error' for r in plan.risks)} risk(s) of severity "
                         "error; fix them (see the dry run) or give --force")

    def progress(result) -> None:
        if not args.json:
            print(f"{result.status:8} {result.id}: {result.detail}", flush=True)

    report = apply_plan(plan, app.sites[args.target], journal, progress)
    if args.json:
        emit_json({**plan.to_dict(), "dry_run": False, "journal": report.journal,
                   "results": [r.__dict__ for r in report.results]})
    else:
        print(f"applied {report.count('applied')}, already done {report.count('skipped')}, failed "
              f"{report.count('failed')}, not reached {report.count('pending')} (journal {report.journal})")
        if report.failed:
            print("run the same command again to finish the job once the failure is fixed")
    return 2 if report.failed else 0
