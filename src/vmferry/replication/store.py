"""The state directory: one protection record per application, written atomically under a lock.

Where: ``$VMFERRY_STATE`` if set, else ``$XDG_STATE_HOME/vmferry``, else ``~/.local/state/vmferry``.
Layout::

    <state>/groups/<app>.json     the ProtectionGroup record (JSON, canonical, written whole)
    <state>/groups/<app>.lock     flock(2) taken for every read-modify-write of the record

A record is written to a temporary file in the same directory, fsync'ed and renamed over the old one,
so a reader sees the old record or the new one, never a mixture. The replica's disks live at the target
site (its storage directory), not here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from vmferry.errors import ReplicationError
from vmferry.replication.model import (
    DiskRef,
    PointDraft,
    RecoveryPoint,
    SourceKind,
    dumps,
    loads,
)
from vmferry.tools.files import fsync_dir, replace_file

_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def state_dir(environ: dict | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("VMFERRY_STATE"):
        return os.path.abspath(env["VMFERRY_STATE"])
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "vmferry")


@dataclass(frozen=True)
class GuestNote:
    """A guest finding about a replica, as recorded when it was converted and repaired."""

    rule: str
    severity: str
    message: str


@dataclass(frozen=True)
class TestResult:
    """The last test launch of a replica's point on the target's isolated test network."""

    point_id: str
    at: str
    ok: bool
    detail: str = ""
    rto_seconds: float | None = None            # the run's measured RTO (a test of the whole application)
    run: str = ""                               # the recovery run's id


@dataclass(frozen=True)
class ReplicaVm:
    """One VM of a protection group: where it comes from and how it launches at the target."""

    component: str
    vm: str                         # its domain name at the target
    source_kind: SourceKind
    source: str                     # the source domain's name, or the package's path
    system: str | None              # the package's VirtualSystem id (package sources)
    disks: tuple[DiskRef, ...]
    domain_xml: str                 # file in the replica directory: the domain definition for the target
    env_iso: str | None             # file in the replica directory: the OVF environment, when it has one
    repaired: bool                  # the first copy's guest repair changed it: every point is repaired too
    readiness: str                  # ready / ready-after-convert / not-ready (guest findings for the target)
    notes: tuple[GuestNote, ...] = ()
    last_test: TestResult | None = None


@dataclass(frozen=True)
class ProtectionGroup:
    """An application protected from one site to another, with its points (oldest first)."""

    app: str
    manifest: str
    source_site: str
    target_site: str
    target_uri: str
    source_uri: str | None
    replica_dir: str
    rpo_seconds: int
    keep: int
    created_at: str
    vms: tuple[ReplicaVm, ...]
    points: tuple[RecoveryPoint, ...] = ()
    draft: PointDraft | None = None
    retiring: tuple[RecoveryPoint, ...] = ()   # being merged into the oldest kept point (retention)
    created: tuple[str, ...] = ()              # what protect created (files, dirs), for unprotect
    last_seq: int = 0                          # sequence number of the last point begun (ids never reused)
    capture_dir: str | None = None             # running-domain sources: where their backup jobs' sockets live
    max_rate: int = 0                          # replication bandwidth limit, bytes/s per disk copy (0: none)
    extra: tuple[str, ...] = field(default=())  # room for later issues (JSON texts)

    def vm(self, name: str) -> ReplicaVm:
        for item in self.vms:
            if item.vm == name or item.component == name:
                return item
        raise ReplicationError(f"application {self.app!r} has no protected VM {name!r}")

    @property
    def newest(self) -> RecoveryPoint | None:
        return self.points[-1] if self.points else None

    def point(self, point_id: str) -> RecoveryPoint:
        for item in (*self.points, *self.retiring):
            if item.point_id == point_id:
                return item
        raise ReplicationError(f"application {self.app!r} has no recovery point {point_id!r}")

    @property
    def points_dir(self) -> str:
        return os.path.join(self.replica_dir, "points")


class Store:
    """The protection records of one state directory."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = os.path.abspath(os.fspath(root)) if root is not None else state_dir()

    @property
    def groups_dir(self) -> str:
        return os.path.join(self.root, "groups")

    def _path(self, app: str, suffix: str) -> str:
        if not _APP_NAME.match(app):
            raise ReplicationError(f"{app!r} is not a valid application name (letters, digits, _ . -)")
        return os.path.join(self.groups_dir, f"{app}{suffix}")

    def exists(self, app: str) -> bool:
        return os.path.exists(self._path(app, ".json"))

    def load(self, app: str) -> ProtectionGroup:
        path = self._path(app, ".json")
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            raise ReplicationError(f"application {app!r} is not protected (no record in {self.groups_dir})") from None
        except OSError as exc:
            raise ReplicationError(f"cannot read: {exc.strerror}", path=path) from exc
        try:
            group = loads(ProtectionGroup, text)
        except ReplicationError as exc:
            raise ReplicationError(exc.message, path=path) from exc
        if group.app != app:
            raise ReplicationError(f"the record names application {group.app!r}, not {app!r}", path=path)
        return group

    def apps(self) -> list[str]:
        try:
            names = os.listdir(self.groups_dir)
        except FileNotFoundError:
            return []
        return sorted(n[:-5] for n in names if n.endswith(".json") and _APP_NAME.match(n[:-5]))

    def save(self, group: ProtectionGroup) -> None:
        """Write the record whole: temporary file, fsync, rename, fsync of the directory."""
        os.makedirs(self.groups_dir, mode=0o700, exist_ok=True)
        replace_file(self._path(group.app, ".json"), dumps(group))

    def delete(self, app: str) -> None:
        for suffix in (".json", ".lock"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(app, suffix))
        fsync_dir(self.groups_dir)

    @contextlib.contextmanager
    def locked(self, app: str) -> Iterator[None]:
        """Exclusive use of ``app``'s record (other processes wait)."""
        path = self._path(app, ".lock")
        os.makedirs(self.groups_dir, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
