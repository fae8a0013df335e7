"""Protect an application at another site: a converted, repaired first copy of every component is kept
at the target as a ready-to-launch replica (domain definition, OVF environment, first recovery point),
and the application becomes a protection group (docs/replication.md).
"""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json, human_bytes


def add_arguments(p) -> None:
    p.add_argument("manifest", metavar="APP.yaml", help="the application manifest (docs/app.md)")
    p.add_argument("--from", dest="source", required=True, metavar="SITE", help="the site the application runs at")
    p.add_argument("--to", dest="target", required=True, metavar="SITE", help="the site that keeps the replica "
                   "(platform: libvirt)")
    p.add_argument("--rpo", default="15m", help="recovery point objective: 90s, 15m, 4h, 1d (default 15m)")
    p.add_argument("--keep", type=int, default=7, help="recovery points kept; older ones are merged (default 7)")
    p.add_argument("--max-rate", default="0", metavar="RATE", help="replication bandwidth limit of each disk "
                   "copy, bytes per second: 50M, 512k, 1G (default 0: none)")
    p.add_argument("--domain-type", choices=("kvm", "qemu"), help="libvirt domain type of the replicas "
                   "(default: kvm when /dev/kvm is usable, else qemu)")
    p.add_argument("--json", action="store_true", help="print the protection group as JSON")
    p.add_argument("--temporal", metavar="HOST:PORT", help="run as a durable workflow on this Temporal service "
                   "(default: $VMFERRY_TEMPORAL, else the one 'vmferry serve' runs; none: run here directly)")


def run(args) -> int:
    from vmferry.progress import make_reporter
    from vmferry.replication.model import to_json
    from vmferry.replication.protect import protect
    from vmferry.workflows.endpoint import resolve_address

    address = resolve_address(args.temporal)
    if address:  # a durable run: the first copy by the target site's worker, then the sync schedule
        import os

        from vmferry.replication.protect import parse_duration, parse_rate
        from vmferry.replication.store import Store
        from vmferry.workflows.library import ProtectRequest
        from vmferry.workflows.runs import protect_durably

        request = ProtectRequest(os.path.abspath(args.manifest), args.source, args.target, parse_duration(args.rpo),
                                 args.keep, args.domain_type, parse_rate(args.max_rate))
        result = protect_durably(address, request, make_reporter(json_mode=args.json))
        group = Store().load(result.app)
    else:
        group = protect(args.manifest, args.source, args.target, rpo=args.rpo, keep=args.keep,
                        domain_type=args.domain_type, reporter=make_reporter(json_mode=args.json),
                        max_rate=args.max_rate)
    if args.json:
        emit_json(to_json(group))
        return 0
    point = group.newest
    out = sys.stdout
    out.write(f"{group.app}: protected from {group.source_site} to {group.target_site} "
              f"(RPO {group.rpo_seconds} s, keep {group.keep}"
              + (f", at most {human_bytes(group.max_rate)}/s per disk" if group.max_rate else "")
              + f") in {group.replica_dir}\n")
    for vm in group.vms:
        out.write(f"  {vm.vm}: {vm.readiness}" + (", guest repaired" if vm.repaired else "") + "\n")
    if point is not None:
        out.write(f"  first point {point.point_id}: {human_bytes(point.bytes_written)} written\n")
    return 0
