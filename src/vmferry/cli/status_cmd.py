"""Protection status per application and VM: the protected site, the newest recovery point and its age
against the RPO, bytes and time of the last sync, the replica's readiness, the last test launch; burst
copies per component and the burst policy's last decisions.
An RPO breach is the finding VMF-DR-001 (exit status 1).
"""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json, human_bytes


def add_arguments(p) -> None:
    p.add_argument("app", metavar="APP", nargs="?", help="one application (default: all protected ones)")
    p.add_argument("--json", action="store_true", help="print the status as JSON")


def run(args) -> int:
    from vmferry.burst.status import burst_status, render
    from vmferry.replication.status import status
    from vmferry.replication.store import state_dir

    doc = status(args.app)
    doc["burst"] = burst_status(state_dir(), args.app)
    breached = any(f["severity"] == "error" for f in doc["findings"])
    if args.json:
        emit_json(doc)
        return 1 if breached else 0
    out = sys.stdout
    if not doc["applications"]:
        out.write("no protected application\n")
    for app in doc["applications"]:
        age = f"{app['age_seconds']:.0f} s old" if app["age_seconds"] is not None else "none"
        out.write(f"{app['app']}: {app['source_site']} -> {app['target_site']}, newest point "
                  f"{app['newest_point'] or '-'} ({age}, RPO {app['rpo_seconds']} s: {app['rpo']}), "
                  f"{len(app['points'])} point(s)\n")
        for vm in app["vms"]:
            sync = vm["last_sync"]
            test = vm["last_test"]
            out.write(f"  {vm['vm']}: {vm['readiness']}, {vm['consistency'] or '-'}-consistent"
                      + (f", last sync wrote {human_bytes(sync['bytes_written'])}" if sync else "")
                      + (f", last test {'passed' if test['ok'] else 'FAILED'} on {test['point_id']}" if test else "")
                      + "\n")
    for line in render(doc["burst"]):
        out.write(line + "\n")
    for f in doc["findings"]:
        out.write(f"{f['severity'].upper():7} {f['rule']} {f['message']}\n")
    return 1 if breached else 0
