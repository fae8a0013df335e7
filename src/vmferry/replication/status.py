"""Status of protected applications (newest point, age against the RPO, last sync, readiness, last test)
and verification of their points; the findings VMF-DR-001 (RPO breach) and VMF-DR-002 (a point does not
verify). JSON shape: docs/json.md."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from vmferry.findings import Finding
from vmferry.replication import points
from vmferry.replication.model import RecoveryPoint, to_json
from vmferry.replication.store import ProtectionGroup, ReplicaVm, Store


def rpo_finding(group: ProtectionGroup, now: datetime) -> Finding | None:
    """VMF-DR-001 when the newest point is older than the RPO (or there is none)."""
    newest = group.newest
    if newest is None:
        return Finding("VMF-DR-001", "error", f"application {group.app!r} has no recovery point; its RPO is "
                       f"{group.rpo_seconds} s", group.app, "run vmferry sync")
    age = (now - datetime.fromisoformat(newest.taken_at)).total_seconds()
    if age > group.rpo_seconds:
        return Finding("VMF-DR-001", "error", f"the newest recovery point of {group.app!r} ({newest.point_id}) is "
                       f"{int(age)} s old, older than its RPO of {group.rpo_seconds} s", group.app,
                       "run vmferry sync, and check that its schedule runs")
    return None


def status(app: str | None = None, *, store: Store | None = None, now: datetime | None = None) -> dict:
    """Per application and VM: sites, newest point and its age against the RPO, last sync's bytes and
    time, replica readiness, last test; ``findings`` holds the RPO breaches (VMF-DR-001)."""
    store = store or Store()
    now = now or datetime.now(UTC)
    names = [app] if app else store.apps()
    apps, findings = [], []
    for name in names:
        group = store.load(name)
        newest = group.newest
        age = (now - datetime.fromisoformat(newest.taken_at)).total_seconds() if newest else None
        breach = rpo_finding(group, now)
        if breach:
            findings.append(breach)
        findings += _resync_findings(group)
        vms = []
        for vm in group.vms:
            vms.append({
                "vm": vm.vm, "component": vm.component, "source": {"kind": vm.source_kind, "name": vm.source},
                "protected_site": group.target_site,
                "newest_point": newest.point_id if newest else None,
                "age_seconds": round(age, 1) if age is not None else None,
                "rpo_seconds": group.rpo_seconds,
                "rpo": "breached" if breach else "ok",
                "consistency": next((s.consistency for s in newest.sessions if s.vm == vm.vm), None) if newest else None,
                "last_sync": _vm_sync(newest, vm),
                "readiness": vm.readiness, "guest_findings": [to_json(n) for n in vm.notes],
                "last_test": to_json(vm.last_test) if vm.last_test else None,
            })
        apps.append({
            "app": group.app, "source_site": group.source_site, "target_site": group.target_site,
            "replica_dir": group.replica_dir, "rpo_seconds": group.rpo_seconds, "keep": group.keep,
            "points": [{"id": p.point_id, "taken_at": p.taken_at, "consistency": p.consistency,
                        "merged_from": list(p.merged_from)} for p in group.points],
            "newest_point": newest.point_id if newest else None,
            "age_seconds": round(age, 1) if age is not None else None,
            "rpo": "breached" if breach else "ok",
            "sync_in_progress": group.draft.point_id if group.draft else None,
            "last_sync": ({"point": newest.point_id, "bytes_read": newest.bytes_read,
                           "bytes_written": newest.bytes_written, "seconds": newest.seconds} if newest else None),
            "vms": vms,
        })
    return {"applications": apps, "findings": [f.to_dict() for f in findings], "now": now.isoformat(timespec="seconds")}


def _resync_findings(group: ProtectionGroup) -> list[Finding]:
    """VMF-DR-010 for each VM whose newest point had to copy whole disks because tracking was lost."""
    newest = group.newest
    if newest is None:
        return []
    out = []
    where = points.point_dir(group, newest.point_id)
    for vm in group.vms:
        reasons = []
        for disk in newest.disks:
            path = os.path.join(where, f"{disk.ref.key}.sync.json")
            if disk.ref.vm == vm.vm and os.path.exists(path):
                with open(path, encoding="utf-8") as fh:
                    reason = json.load(fh).get("resync_reason")
                if reason and reason not in reasons:
                    reasons.append(reason)
        if reasons:
            from vmferry.replication.tracking import resync_finding

            out.append(resync_finding(vm.vm, "; ".join(reasons)))
    return out


def _vm_sync(point: RecoveryPoint | None, vm: ReplicaVm) -> dict | None:
    if point is None:
        return None
    disks = [d for d in point.disks if d.ref.vm == vm.vm]
    return {"point": point.point_id, "bytes_written": sum(d.bytes_written for d in disks),
            "seconds": point.seconds}


def verify_app(app: str, *, point_id: str | None = None, deep: bool = True, store: Store | None = None) -> dict:
    """Verify one point or all of them; a failing point is the finding VMF-DR-002."""
    store = store or Store()
    group = store.load(app)
    ids = [point_id] if point_id else [p.point_id for p in group.points]
    results, findings = [], []
    for pid in ids:
        problems = points.verify_point(group, pid, deep=deep)
        results.append({"id": pid, "problems": problems})
        if problems:
            findings.append(Finding("VMF-DR-002", "error", f"recovery point {pid} of {app!r} does not verify: "
                                    f"{problems[0]}", app, "take a new point with vmferry sync; do not launch "
                                    "this one").to_dict())
    return {"app": app, "points": results, "findings": findings}
