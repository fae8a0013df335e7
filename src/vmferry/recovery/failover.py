"""Disaster failover: launch the application at the target from a recovery point, on its production
networks, without touching the source (it may be gone); say how much time of writes was lost.

    report = failover_disaster(plan, state_dir, production={"dr-app": "dr-lan"})

The boot groups, proofs and report are those of the test recovery (:mod:`vmferry.recovery.test`), with
three differences: each VM keeps its replica's name and joins the production libvirt network its target
network maps to (refused if the site already runs a domain of that name: no VM is started twice); its
disks are qcow2 layers over the point's layers in ``<storage>/<app>.failover-<run>/`` that stay (the point
itself is never written); nothing is removed afterwards — the application now runs there. The
**data-loss window** is the time between the point being taken and the failover starting: the writes the
source made in it are not at the target.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from vmferry.errors import RecoveryError, VmferryError
from vmferry.recovery.model import RecoveryPlan
from vmferry.recovery.report import RecoveryReport
from vmferry.recovery.test import _run, file_digest, new_run_id, replica_digests


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RecoveryError(f"the recovery point's time {text!r} is not an ISO time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def failover_disaster(plan: RecoveryPlan, state: str | os.PathLike, *, production: dict[str, str],
                      say: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic,
                      now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> RecoveryReport:
    say = say or (lambda _msg: None)
    started = now()
    report = RecoveryReport(app=plan.app, site=plan.site, point_id=plan.point_id, point_taken_at=plan.taken_at,
                            run_id=new_run_id(started), started_at=started.isoformat(timespec="seconds"),
                            kind="failover-disaster")
    report.data_loss_seconds = max(0.0, (started - _parse_time(plan.taken_at)).total_seconds())
    storage = Path(plan.storage)
    if not storage.is_dir():
        raise RecoveryError("the site's storage directory does not exist", path=str(storage))
    before = replica_digests(plan)
    t0 = clock()
    try:
        _run(plan, report, None, storage, t0, clock, say, production=production)
    except VmferryError as exc:
        report.error = str(exc)
    after = {f: file_digest(f) for f in before if os.path.isfile(f)}
    report.replicas_unchanged = after == before
    report.replica_files = len(before)
    report.finished_at = now().isoformat(timespec="seconds")
    report.ok = (not report.error and len(report.vms) == len(plan.vms) and all(v.proved for v in report.vms)
                 and all(c.ok for c in report.checks) and len(report.checks) == len(plan.checks)
                 and report.replicas_unchanged)
    return report
