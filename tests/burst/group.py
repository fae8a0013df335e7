"""A protection group record as ``vmferry protect`` leaves it (one point, one VM), written directly: the
burst commands resolve their ready image from it without the minutes a real protect takes."""

from __future__ import annotations

from pathlib import Path

from tests.recovery import replicas
from vmferry.replication.model import DiskRef, PointDisk, RecoveryPoint
from vmferry.replication.store import ProtectionGroup, ReplicaVm, Store


def write_group(state: Path, manifest: Path, storage: Path, *, uri: str, source: str = "dc1",
                target: str = "cloud", size: int = 1 << 30) -> ProtectionGroup:
    replica = storage / "shop"
    (replica / "points" / replicas.POINT).mkdir(parents=True, exist_ok=True)
    (replica / "web.xml").write_text(replicas.replica_domain("web"))
    ref = DiskRef("shop", "web", "web", "vda", size)
    point = RecoveryPoint(app="shop", point_id=replicas.POINT, taken_at="2026-12-01T02:00:00+00:00",
                          sealed_at="2026-12-01T02:00:05+00:00", parent=None, consistency="crash", sessions=(),
                          disks=(PointDisk(ref, "web.vda.qcow2", "0" * 64, "0" * 64, 65536, 0),))
    vm = ReplicaVm(component="web", vm="web", source_kind="domain", source="web", system=None, disks=(ref,),
                   domain_xml="web.xml", env_iso=None, repaired=False, readiness="ready")
    group = ProtectionGroup(app="shop", manifest=str(manifest), source_site=source, target_site=target,
                            target_uri=uri, source_uri=None, replica_dir=str(replica), rpo_seconds=900, keep=7,
                            created_at="2026-12-01T01:00:00+00:00", vms=(vm,), points=(point,))
    Store(state).save(group)
    return group
