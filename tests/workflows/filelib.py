"""A real, simple implementation of the replication contract over plain files, for the workflow tests.

Each application's "disks" are the files of ``root/sources/<app>/`` (named ``<vm>.<disk>``); a point
copies each into ``root/replicas/<app>/.draft-<id>/`` in fixed chunks (heartbeating bytes done,
resuming from ``resume_at``), then sealing records SHA-256 digests in ``point.json`` and renames the
draft to ``root/replicas/<app>/<id>/``. ``$VMFERRY_TEST_CHUNK_DELAY`` slows each chunk (seconds) so
that a test can kill a worker in the middle of a copy. Every chunk written is logged (one JSON line:
pid, disk, offset, length) in ``root/writes.log`` so tests count the bytes each process really wrote.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from vmferry.errors import ReplicationError
from vmferry.replication.model import (
    DiskRef,
    DiskSyncResult,
    PointDisk,
    PointDraft,
    RecoveryPoint,
    VmSession,
    dumps,
    loads,
    make_point_id,
)

CHUNK = 256 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FileCopyLibrary:
    def __init__(self, root: str | os.PathLike, chunk: int = CHUNK) -> None:
        self.root = Path(root)
        self.chunk = chunk
        self.delay = float(os.environ.get("VMFERRY_TEST_CHUNK_DELAY", "0"))

    def sources(self, app: str) -> Path:
        return self.root / "sources" / app

    def replicas(self, app: str) -> Path:
        return self.root / "replicas" / app

    def points(self, app: str) -> list[str]:
        folder = self.replicas(app)
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []

    def _log(self, record: dict) -> None:
        with open(self.root / "writes.log", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(json.dumps(record) + "\n")

    def begin_point(self, app: str) -> PointDraft:
        source = self.sources(app)
        if not source.is_dir():
            raise ReplicationError(f"application {app!r} is not protected", path=source)
        replica = self.replicas(app)
        replica.mkdir(parents=True, exist_ok=True)
        for stale in replica.glob(".draft-*"):  # an earlier attempt's draft never becomes a point
            shutil.rmtree(stale)
        points = self.points(app)
        point_id = make_point_id(datetime.now(UTC), len(points) + 1)
        draft_dir = replica / f".draft-{point_id}"
        draft_dir.mkdir()
        disks = []
        for f in sorted(source.iterdir()):
            vm, _, disk = f.name.partition(".")
            disks.append(DiskRef(app, "c", vm, disk, f.stat().st_size))
        sessions = tuple(VmSession(vm, "package", "crash") for vm in sorted({d.vm for d in disks}))
        return PointDraft(app, point_id, datetime.now(UTC).isoformat(), points[-1] if points else None,
                          str(draft_dir), tuple(disks), sessions)

    def sync_disk(self, draft: PointDraft, ref: DiskRef, *, resume_at: int = 0, heartbeat=None) -> DiskSyncResult:
        source = self.sources(draft.app) / ref.key
        target = Path(draft.draft_dir) / ref.key
        if not Path(draft.draft_dir).is_dir():
            raise ReplicationError(f"the draft of point {draft.point_id} is gone", path=draft.draft_dir)
        start = min(resume_at - resume_at % self.chunk, ref.size)
        written = 0
        with open(source, "rb") as src, open(target, "r+b" if target.exists() else "w+b") as dst:
            dst.truncate(ref.size)
            offset = start
            while offset < ref.size:
                length = min(self.chunk, ref.size - offset)
                src.seek(offset)
                data = src.read(length)
                dst.seek(offset)
                dst.write(data)
                dst.flush()
                os.fsync(dst.fileno())
                written += length
                self._log({"pid": os.getpid(), "disk": ref.key, "offset": offset, "length": length})
                offset += length
                if heartbeat is not None:
                    heartbeat(offset)
                if self.delay:
                    time.sleep(self.delay)
        return DiskSyncResult(written, written, 1, full=True, resumed_at=start)

    def seal_point(self, draft: PointDraft) -> RecoveryPoint:
        final = self.replicas(draft.app) / draft.point_id
        if final.is_dir():  # sealed by an earlier attempt
            return loads(RecoveryPoint, (final / "point.json").read_text())
        draft_dir = Path(draft.draft_dir)
        disks = []
        for ref in draft.disks:
            path = draft_dir / ref.key
            if not path.is_file() or path.stat().st_size != ref.size:
                raise ReplicationError(f"disk {ref.key} of point {draft.point_id} is incomplete", path=path)
            digest = sha256_file(path)
            disks.append(PointDisk(ref, ref.key, digest, digest, self.chunk, ref.size))
        point = RecoveryPoint(draft.app, draft.point_id, draft.taken_at, datetime.now(UTC).isoformat(),
                              draft.parent, draft.consistency, draft.sessions, tuple(disks))
        (draft_dir / "point.json").write_text(dumps(point))
        os.rename(draft_dir, final)
        return point

    def abandon_point(self, draft: PointDraft) -> None:
        shutil.rmtree(draft.draft_dir, ignore_errors=True)

    def verify(self, app: str, point_id: str) -> RecoveryPoint:
        folder = self.replicas(app) / point_id
        point = loads(RecoveryPoint, (folder / "point.json").read_text())
        for disk in point.disks:
            if sha256_file(folder / disk.file) != disk.content_digest:
                raise ReplicationError(f"disk {disk.file} of point {point_id} does not match its digest")
        return point
