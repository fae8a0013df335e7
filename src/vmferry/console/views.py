"""What the console's pages show, computed from the library's own documents (no reader of its own).

:func:`overview` turns :func:`vmferry.replication.status.status` into one row per application,
:func:`app_detail` adds the application's points (timeline, consistency, sync throughput) and the
move plan's graph and boot groups (:mod:`vmferry.plans.graph`). RPO colours: red when the status says
the RPO is breached (VMF-DR-001), amber when the newest point is older than :data:`AMBER_SHARE` of the
RPO (a schedule runs every RPO/2, so a point that old means at least one sync is late), green otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from vmferry.errors import VmferryError

AMBER_SHARE = 0.75


def rpo_colour(app: dict) -> str:
    if app["rpo"] != "ok" or app["age_seconds"] is None:
        return "red"
    return "amber" if app["age_seconds"] > AMBER_SHARE * app["rpo_seconds"] else "green"


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def _last_test(vms: list[dict]) -> dict | None:
    """The newest test of the application: when, whether every VM it launched passed, its RTO."""
    tests = [vm["last_test"] for vm in vms if vm.get("last_test")]
    if not tests:
        return None
    newest = max(tests, key=lambda t: t["at"])
    same = [t for t in tests if (t.get("run") or t["at"]) == (newest.get("run") or newest["at"])]
    return {"at": newest["at"], "ok": all(t["ok"] for t in same), "rto_seconds": newest.get("rto_seconds"),
            "point_id": newest["point_id"], "run": newest.get("run") or ""}


@dataclass
class AppRow:
    app: str
    source_site: str
    target_site: str
    protection: str
    age_seconds: float | None
    age: str
    rpo_seconds: int
    rpo: str
    colour: str
    newest_point: str | None
    last_test: dict | None
    vms: list[dict] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)


def overview(doc: dict) -> list[AppRow]:
    """One row per application of a status document."""
    rows = []
    for app in doc["applications"]:
        findings = [f for f in doc["findings"] if f.get("location") == app["app"]
                    or any(f.get("location") == vm["vm"] for vm in app["vms"])]
        if app["sync_in_progress"]:
            protection = f"syncing {app['sync_in_progress']}"
        elif app["newest_point"]:
            protection = "protected"
        else:
            protection = "no recovery point"
        rows.append(AppRow(app["app"], app["source_site"], app["target_site"], protection, app["age_seconds"],
                           human_age(app["age_seconds"]), app["rpo_seconds"], app["rpo"], rpo_colour(app),
                           app["newest_point"], _last_test(app["vms"]),
                           [{"vm": vm["vm"], "component": vm["component"], "readiness": vm["readiness"],
                             "findings": vm["guest_findings"], "consistency": vm["consistency"]}
                            for vm in app["vms"]], findings))
    return rows


def timeline(points: list[dict], now: datetime, width: int = 600) -> list[dict]:
    """Points placed on a line from the oldest to now: x in 0..width, with their consistency."""
    if not points:
        return []
    times = [datetime.fromisoformat(p["taken_at"]) for p in points]
    start, span = times[0], max((now - times[0]).total_seconds(), 1.0)
    return [{"id": p["id"], "x": round(12 + (width - 24) * (t - start).total_seconds() / span, 1),
             "consistency": p["consistency"], "taken_at": p["taken_at"], "merged": len(p["merged_from"])}
            for p, t in zip(points, times, strict=True)]


def throughput(group, width: int = 600, height: int = 60) -> list[dict]:
    """Per sealed point: bytes written, seconds, MB/s (the sync throughput history), with the bar each
    takes in a ``width`` x ``height`` chart."""
    out = []
    for p in group.points:
        written = p.bytes_written or sum(d.bytes_written for d in p.disks)
        rate = written / p.seconds / 1e6 if p.seconds else 0.0
        out.append({"id": p.point_id, "bytes_written": written, "seconds": round(p.seconds, 1),
                    "mbps": round(rate, 2)})
    peak = max([r["mbps"] for r in out] + [1e-9])
    step = (width - 10) / max(len(out), 1)
    bar = max(min(40.0, step - 4), 1.0)
    for i, r in enumerate(out):
        r["height"] = round(max(height * r["mbps"] / peak, 1.0), 1)
        r["x"], r["width"] = round(5 + i * step, 1), round(bar, 1)
    return out


def plan_graph(group) -> dict:
    """The move plan of the protected application (source site -> target site): its boot groups, and
    the Graphviz drawing of the application and its changes as SVG text ('' with the reason when the
    plan cannot be made)."""
    from vmferry.plans.graph import to_dot
    from vmferry.plans.manifest import load_app
    from vmferry.plans.plan import build_plan
    from vmferry.tools.proc import run

    try:
        app = load_app(group.manifest)
        plan = build_plan(app, group.source_site, group.target_site)
    except VmferryError as exc:
        return {"svg": "", "groups": [], "error": str(exc), "risks": []}
    try:
        svg = run(["dot", "-Tsvg"], input=to_dot(app, plan), timeout=60).stdout
        svg = svg[svg.index("<svg"):]          # drop the XML prolog and doctype: the SVG is inlined
    except (VmferryError, ValueError, OSError) as exc:
        svg, error = "", f"the graph could not be drawn: {exc}"
    else:
        error = ""
    return {"svg": svg, "groups": plan.boot_order, "error": error,
            "risks": [f.to_dict() for f in plan.risks]}


def app_detail(app: str, *, store=None, now: datetime | None = None) -> dict:
    """Everything the application page shows (raises the library's error for an unknown application)."""
    from vmferry.replication.status import status
    from vmferry.replication.store import Store

    store = store or Store()
    now = now or datetime.now(UTC)
    doc = status(app, store=store, now=now)
    (row,) = overview(doc)
    data = doc["applications"][0]
    group = store.load(app)
    vms = []
    for vm, replica in zip(data["vms"], group.vms, strict=True):
        vms.append({**vm, "disks": [{"key": d.key, "size": d.size} for d in replica.disks]})
    return {"row": row, "app": data, "vms": vms, "timeline": timeline(data["points"], now),
            "throughput": throughput(group), "findings": doc["findings"], "plan": plan_graph(group),
            "burst": burst(store.root, app), "failover": failover_state(store.root, app), "now": doc["now"]}


def failover_state(state_dir: str, app: str) -> dict | None:
    """The application's failover, when one is recorded: where it runs, how, and whether its VMs started
    (then its syncs in the old direction stop until a reprotect)."""
    from vmferry.errors import VmferryError
    from vmferry.recovery import failover_record

    try:
        doc = failover_record.load(state_dir, app)
    except VmferryError as exc:
        return {"error": str(exc)}
    if doc is None:
        return None
    return {"run": doc.get("run"), "mode": doc.get("mode"), "status": doc.get("status"),
            "target_site": doc.get("target_site"), "source_site": doc.get("source_site"),
            "launched": failover_record.launched(doc), "started_at": doc.get("started_at")}


def burst(state_dir: str, app: str) -> list[dict] | None:
    """The application's burst copies and the policy's last decisions (``vmferry status``'s burst part);
    None where this vmferry has no burst package."""
    try:
        from vmferry.burst.status import burst_status
    except ImportError:
        return None
    return burst_status(state_dir, app)
