"""Protection records for console tests and bench/console.py: many applications with their VMs, points
and last tests, written through the library's own Store (records only: no disk files, which the
overview does not read)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vmferry.replication.model import DiskRef, PointDisk, RecoveryPoint, VmSession, make_point_id
from vmferry.replication.store import GuestNote, ProtectionGroup, ReplicaVm, Store, TestResult

RPO = 900


def record(store: Store, app: str, *, age: float, now: datetime, vms: int = 3, points: int = 7,
           tested: bool | None = True, rto: float = 42.0) -> ProtectionGroup:
    """One protected application whose newest point is ``age`` seconds old at ``now``."""
    replicas, refs = [], []
    for i in range(vms):
        ref = DiskRef(app, f"c{i}", f"{app}-vm{i}", "vda", 8 << 30)
        refs.append(ref)
        notes = (GuestNote("VMF-GUEST-012", "warning", f"{app}-vm{i} has no virtio driver loaded at boot"),) \
            if i == 1 else ()
        test = TestResult("p", (now - timedelta(days=2)).isoformat(), bool(tested), "test recovery r1: proved",
                          rto, "r1") if tested is not None else None
        replicas.append(ReplicaVm(f"c{i}", f"{app}-vm{i}", "package", f"/pkg/{app}.ova", f"vm{i}", (ref,),
                                  f"vms/{app}-vm{i}/domain.xml", None, False,
                                  "not-ready" if i == 2 and app.endswith("7") else "ready", notes, test))
    pts = []
    for n in range(points):
        taken = now - timedelta(seconds=age + (points - 1 - n) * RPO / 2)
        pid = make_point_id(taken, n + 1)
        pts.append(RecoveryPoint(app, pid, taken.isoformat(), (taken + timedelta(seconds=20)).isoformat(),
                                 pts[-1].point_id if pts else None, "application" if n % 3 else "crash",
                                 tuple(VmSession(r.vm, "package", "crash") for r in replicas),
                                 tuple(PointDisk(ref, f"{ref.key}.qcow2", "sha256:0", "sha256:0", 65536,
                                                 (n + 1) << 24) for ref in refs),
                                 bytes_read=3 << 30, bytes_written=(n + 1) * 3 << 24, seconds=10.0 + n))
    group = ProtectionGroup(app, f"/apps/{app}.yaml", "dc1", "dr", "test:///default", None, f"/dr/{app}", RPO, 7,
                            (now - timedelta(days=30)).isoformat(), tuple(replicas), tuple(pts), last_seq=points)
    store.save(group)
    return group


def fleet(store: Store, count: int, now: datetime | None = None) -> list[str]:
    """``count`` applications: most within the RPO, every 10th late (amber), every 25th breached (red)."""
    now = now or datetime.now(UTC)
    names = []
    for i in range(count):
        age = RPO * 2 if i % 25 == 24 else RPO * 0.8 if i % 10 == 9 else 60.0
        name = f"app{i:03d}"
        record(store, name, age=age, now=now, tested=None if i % 7 == 3 else i % 11 != 5)
        names.append(name)
    return names
