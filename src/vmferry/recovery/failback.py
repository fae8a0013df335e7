"""Failback: after a reprotect, a planned failover back to the original site, with no data lost.

    report = failback("shop", state_dir, production={"VM Network": "dc1-lan"})

1. The running copies at the recovery site (the reprotected group's source) are paused: from then on
   nothing writes to their disks.
2. A final recovery point is taken from the paused domains (incremental from the reprotect's
   checkpoint, no guest freeze needed): it holds every write, so the data-loss window is zero.
3. The application is launched at the original site from that point, boot group by boot group, on its
   production networks, each VM proved (:func:`vmferry.recovery.failover.failover_disaster`'s run);
   the VMs take the names of the original source domains again.
4. Proved: the copies at the recovery site are stopped (their definitions stay: they are the old
   source a later reprotect updates). Not proved: what the failback started is removed and the copies
   at the recovery site resume — the application keeps running where it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vmferry.errors import RecoveryError, VmferryError
from vmferry.recovery.reprotect import reversed_of
from vmferry.replication import points, tracking
from vmferry.replication.model import make_point_id, parse_point_id
from vmferry.replication.store import ProtectionGroup, Store
from vmferry.tools import libvirt as lv

Say = Callable[[str], None]


@dataclass
class FailbackReport:
    app: str
    from_site: str
    to_site: str
    final_point: str = ""
    bytes_written: int = 0
    final_sync_seconds: float = 0.0
    paused: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    recovery: object = None          # the RecoveryReport of the launch at the original site
    ok: bool = False
    error: str = ""

    def to_dict(self) -> dict:
        return {"kind": "failback", "app": self.app, "from_site": self.from_site, "to_site": self.to_site,
                "final_point": self.final_point, "bytes_written": self.bytes_written,
                "final_sync_seconds": round(self.final_sync_seconds, 3), "paused": self.paused,
                "stopped": self.stopped, "resumed": self.resumed, "ok": self.ok, "error": self.error or None,
                "recovery": self.recovery.to_dict() if self.recovery is not None else None}


def render_text(report: FailbackReport) -> str:
    from vmferry.recovery.report import render_text as recovery_text

    head = (f"failback of {report.app}: {report.from_site} -> {report.to_site}: "
            f"{'OK' if report.ok else 'FAILED'}\n  final point {report.final_point or '-'}: "
            f"{report.bytes_written} bytes in {report.final_sync_seconds:.1f} s (no data lost)\n")
    if report.error:
        head += f"  error: {report.error}\n"
    if report.resumed:
        head += f"  resumed at {report.from_site}: {', '.join(report.resumed)}\n"
    return head + (recovery_text(report.recovery) if report.recovery is not None else "")


def _next_point_id(group: ProtectionGroup, moment) -> str:
    """The id :func:`vmferry.replication.points.begin_point` gives the group's next point at ``moment``."""
    seq = max([group.last_seq, *(parse_point_id(p.point_id)[1] for p in (*group.points, *group.retiring))]) + 1
    return make_point_id(moment, seq)


def final_point(group: ProtectionGroup, store: Store, say: Say):
    """A point of the (paused) running copies, without freezing their guests."""
    from datetime import UTC, datetime

    from vmferry.replication.protect import seal_repaired

    newest = group.newest
    moment = datetime.now(UTC)
    pid = _next_point_id(group, moment)
    requests = []
    for vm in group.vms:
        previous = next((s for s in (newest.sessions if newest else ()) if s.vm == vm.vm and
                         s.source_kind == "domain"), None)
        requests.append(tracking.CaptureRequest(group.source_uri, vm.source, tracking.checkpoint_name(group.app, pid),
                                                tracking.checkpoint_of(previous) if previous else None))
    sessions = tracking.begin_captures(requests, group.capture_dir, quiesce_guests=False)
    from dataclasses import replace

    sessions = [replace(s, vm=vm.vm) for s, vm in zip(sessions, group.vms, strict=True)]
    draft = points.begin_point(group.app, store=store, sessions=sessions, reuse_open=False, moment=moment)
    try:
        for ref in draft.disks:
            say(f"final sync of {ref.key}")
            points.sync_disk(draft, ref, store=store)
        point = seal_repaired(draft, store=store)
    except BaseException:
        points.abandon_point(draft, store=store)
        raise
    points.apply_retention(group.app, store=store)
    return point


def failback(app: str, state: str | os.PathLike, *, production: dict[str, str], store: Store | None = None,
             timeout: float = 300.0, domain_type: str | None = None, say: Say | None = None,
             clock: Callable[[], float] = time.monotonic) -> FailbackReport:
    """Return a reprotected application to its original site (see the module's description)."""
    from vmferry.plans.manifest import load_app
    from vmferry.recovery.failover import failover_disaster
    from vmferry.recovery.spec import plan_from_group

    say = say or (lambda _m: None)
    store = store or Store(state)
    group = store.load(app)
    if reversed_of(group) is None:
        raise RecoveryError(f"application {app!r} was not reprotected: it runs at its original site already")
    if group.draft is not None:
        raise RecoveryError(f"application {app!r} has a point being taken; let it end (or abandon it) first")
    report = FailbackReport(app, group.source_site, group.target_site)
    libvirt = lv.binding()
    with lv.connect(group.source_uri) as conn:
        for vm in group.vms:
            if vm.source not in conn.names() or not conn.info(vm.source).active:
                raise RecoveryError(f"VM {vm.source} does not run at site {group.source_site!r}")
        plan = plan_from_group(load_app(group.manifest), group, timeout=timeout, domain_type=domain_type)
        try:
            for vm in group.vms:
                dom = conn.domain(vm.source)
                if dom.state()[0] != libvirt.VIR_DOMAIN_PAUSED:
                    dom.suspend()
                report.paused.append(vm.source)
            say(f"paused at {group.source_site}: {', '.join(report.paused)}")
            t0 = clock()
            point = final_point(group, store, say)
            report.final_sync_seconds = clock() - t0
            report.final_point, report.bytes_written = point.point_id, point.bytes_written
            plan = plan_from_group(load_app(group.manifest), store.load(app), point_id=point.point_id,
                                   timeout=timeout, domain_type=domain_type)
            rec = failover_disaster(plan, state, production=production, say=say)
            rec.kind, rec.data_loss_seconds = "failback", 0.0
            report.recovery = rec
            if not rec.ok:
                report.error = rec.error or "the application did not prove itself at " + group.target_site
                _undo_launch(plan, rec)
        except (VmferryError, libvirt.libvirtError) as exc:
            report.error = str(exc)
        if report.error:
            for name in report.paused:
                with contextlib.suppress(libvirt.libvirtError):
                    conn.domain(name).resume()
                    report.resumed.append(name)
            return report
        for name in report.paused:
            conn.destroy(name)
            report.stopped.append(name)
    report.ok = True
    return report


def _undo_launch(plan, rec) -> None:
    """Remove what a failed launch at the original site started (the application stays where it ran)."""
    with lv.connect(plan.uri) as conn:
        for vm in rec.vms:
            if vm.domain in conn.names():
                conn.undefine(vm.domain)
    rundir = os.path.join(plan.storage, f"{plan.app}.failover-{rec.run_id}")
    if os.path.isdir(rundir):
        shutil.rmtree(rundir, ignore_errors=True)
