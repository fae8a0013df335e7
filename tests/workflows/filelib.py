"""A real, simple implementation of the replication contract for the workflow tests: raw files as the
source disks, the project's resumable copy (:func:`vmferry.replication.copy.copy_into_image`, qcow2
written through a private qemu-nbd) as the data path.

Each application's disks are the raw files of ``root/sources/<app>/`` (named ``<vm>.<disk>``); a point
copies each into a qcow2 image ``root/replicas/<app>/.draft-<id>/<vm>.<disk>.qcow2`` (heartbeating
bytes done, resuming from ``resume_at``), then sealing records the SHA-256 of each disk as the guest
sees it in ``point.json`` and renames the draft to ``root/replicas/<app>/<id>/``.
``$VMFERRY_TEST_CHUNK_DELAY`` slows each chunk read (seconds) so that a test can kill a worker in the
middle of a copy. Every chunk the copy reads from a source is logged (one JSON line: pid, disk,
offset, length) in ``root/writes.log``, so tests count the bytes each process really moved.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from vmferry.errors import ReplicationError
from vmferry.replication.copy import copy_into_image
from vmferry.replication.model import (
    DiskRef,
    DiskSyncResult,
    Extent,
    PointDisk,
    PointDraft,
    RecoveryPoint,
    VmSession,
    dumps,
    loads,
    make_point_id,
)

CHUNK = 256 * 1024


def sha256_image(path: Path) -> str:
    """SHA-256 of a qcow2 image's contents as a guest reads them."""
    from vmferry.tools import nbd

    digest = hashlib.sha256()
    with nbd.serve_image(path, "qcow2", readonly=True) as export:
        size = export.size()
        for offset in range(0, size, 1 << 20):
            digest.update(export.pread(offset, min(1 << 20, size - offset)))
    return digest.hexdigest()


class FileSource:
    """A raw file as a change source: every byte changed (a first copy), reads logged and slowed."""

    def __init__(self, path: Path, key: str, log, delay: float) -> None:
        self.path, self.key, self.log, self.delay = path, key, log, delay
        self.file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.lock = threading.Lock()

    def extents(self) -> list[Extent]:
        return [Extent(0, self.path.stat().st_size)]

    def read(self, offset: int, length: int) -> bytes:
        with self.lock:  # one read at a time (the copy reads on several threads): the delay is per chunk
            data = os.pread(self.file.fileno(), length, offset)
            self.log({"pid": os.getpid(), "disk": self.key, "offset": offset, "length": len(data)})
            if self.delay:
                time.sleep(self.delay)
        return data

    def close(self) -> None:
        self.file.close()


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

    def begin_point(self, app: str, fresh: bool = True) -> PointDraft:
        source = self.sources(app)
        if not source.is_dir():
            raise ReplicationError(f"application {app!r} is not protected", path=source)
        replica = self.replicas(app)
        replica.mkdir(parents=True, exist_ok=True)
        for stale in replica.glob(".draft-*"):
            if not fresh and (stale / "draft.json").exists():  # a retry of this run: its own draft
                return loads(PointDraft, (stale / "draft.json").read_text())
            shutil.rmtree(stale)  # a dead run's draft never becomes a point
        points = self.points(app)
        point_id = make_point_id(datetime.now(UTC), len(points) + 1)
        draft_dir = replica / f".draft-{point_id}"
        draft_dir.mkdir()
        disks = []
        for f in sorted(source.iterdir()):
            vm, _, disk = f.name.partition(".")
            disks.append(DiskRef(app, "c", vm, disk, f.stat().st_size))
        sessions = tuple(VmSession(vm, "package", "crash") for vm in sorted({d.vm for d in disks}))
        draft = PointDraft(app, point_id, datetime.now(UTC).isoformat(), points[-1] if points else None,
                           str(draft_dir), tuple(disks), sessions)
        (draft_dir / "draft.json").write_text(dumps(draft))
        return draft

    def sync_disk(self, draft: PointDraft, ref: DiskRef, *, resume_at: int = 0, heartbeat=None) -> DiskSyncResult:
        from vmferry.tools.qemu_img import create

        if not Path(draft.draft_dir).is_dir():
            raise ReplicationError(f"the draft of point {draft.point_id} is gone", path=draft.draft_dir)
        image = Path(draft.draft_dir) / f"{ref.key}.qcow2"
        if not image.exists():
            create(str(image), "qcow2", ref.size)
        source = FileSource(self.sources(draft.app) / ref.key, ref.key, self._log, self.delay)
        try:
            result = copy_into_image(source, image, chunk=self.chunk, resume_at=resume_at, heartbeat=heartbeat,
                                     heartbeat_every=0.2)
        finally:
            source.close()
        return DiskSyncResult(result.bytes_read, result.bytes_written, result.extents, full=True,
                              resumed_at=result.resumed_at)

    def seal_point(self, draft: PointDraft) -> RecoveryPoint:
        final = self.replicas(draft.app) / draft.point_id
        if final.is_dir():  # sealed by an earlier attempt
            return loads(RecoveryPoint, (final / "point.json").read_text())
        draft_dir = Path(draft.draft_dir)
        disks = []
        for ref in draft.disks:
            path = draft_dir / f"{ref.key}.qcow2"
            if not path.is_file():
                raise ReplicationError(f"disk {ref.key} of point {draft.point_id} is missing", path=path)
            disks.append(PointDisk(ref, path.name, sha256_image(path), sha256_file(path), self.chunk, ref.size))
        point = RecoveryPoint(draft.app, draft.point_id, draft.taken_at, datetime.now(UTC).isoformat(),
                              draft.parent, draft.consistency, draft.sessions, tuple(disks))
        (draft_dir / "point.json").write_text(dumps(point))
        os.rename(draft_dir, final)
        return point

    def abandon_point(self, draft: PointDraft) -> None:
        shutil.rmtree(draft.draft_dir, ignore_errors=True)

    def protect(self, request, reporter=None):
        """The first point of the application whose sources are the folder ``request.manifest``."""
        from vmferry.workflows.library import ProtectResult

        app = Path(request.manifest).name
        if self.points(app):  # protected by an earlier attempt
            point = loads(RecoveryPoint, (self.replicas(app) / self.points(app)[0] / "point.json").read_text())
        else:
            draft = self.begin_point(app)
            for ref in draft.disks:
                with reporter.step(f"first copy of {ref.key}", ref.size) as step:
                    self.sync_disk(draft, ref, heartbeat=lambda done, step=step: step.advance(done - step.done))
            point = self.seal_point(draft)
        return ProtectResult(app, request.source_site, request.target_site, request.rpo_seconds,
                             str(self.replicas(app)), point)

    def verify(self, app: str, point_id: str) -> RecoveryPoint:
        folder = self.replicas(app) / point_id
        point = loads(RecoveryPoint, (folder / "point.json").read_text())
        for disk in point.disks:
            if sha256_file(folder / disk.file) != disk.file_digest or \
                    sha256_image(folder / disk.file) != disk.content_digest:
                raise ReplicationError(f"disk {disk.file} of point {point_id} does not match its digest")
        return point
