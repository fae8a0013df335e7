"""The replication library as the workers see it: vmferry's protection groups in one state directory
(:mod:`vmferry.replication.points`, :mod:`vmferry.replication.protect`).

Each method is the library call of one activity, plus what makes a retried activity safe:

* ``begin_point(app, fresh)``: a fresh call (the first attempt of a run) abandons a draft an earlier,
  dead run left open, so nothing it half-wrote is picked up; a retried attempt of the same run
  reuses the draft it opened;
* ``seal_point``: re-repairs the guests protect repaired, seals, applies retention — as
  :func:`vmferry.replication.protect.sync_app` does; a retry after the seal returns the sealed point;
* ``protect``: an application already protected the same way is the result of an earlier attempt.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from vmferry.errors import ReplicationError
from vmferry.replication import points, retention
from vmferry.replication.model import DiskRef, DiskSyncResult, PointDraft, RecoveryPoint
from vmferry.replication.store import Store


@dataclass(frozen=True)
class ProtectRequest:
    """Protect the application of ``manifest`` (a path on the target site's worker) from
    ``source_site`` to ``target_site``."""

    manifest: str
    source_site: str
    target_site: str
    rpo_seconds: int
    keep: int = 7
    domain_type: str | None = None
    max_rate: int = 0             # replication bandwidth limit of each disk copy, bytes/s (0: none)


@dataclass(frozen=True)
class ProtectResult:
    app: str
    source_site: str
    target_site: str
    rpo_seconds: int
    replica_dir: str
    point: RecoveryPoint | None


class StoreLibrary:
    """The library over the protection groups of ``state_dir``."""

    def __init__(self, state_dir: str | os.PathLike | None = None) -> None:
        self.store = Store(state_dir)

    owns_points = True   # begin_point takes owner/alive: one sync per application (replication/synclease.py)

    def begin_point(self, app: str, fresh: bool = True, *, owner: str = "",
                    alive: Callable[[str], bool] | None = None) -> PointDraft:
        from vmferry.recovery.failover_record import refuse_sync

        refuse_sync(self.store.root, app)
        return points.begin_point(app, store=self.store, reuse_open=not fresh, owner=owner, alive=alive)

    def sync_disk(self, draft: PointDraft, ref: DiskRef, *, resume_at: int = 0,
                  heartbeat: Callable[[int], None] | None = None, max_rate: int | None = None) -> DiskSyncResult:
        return points.sync_disk(draft, ref, resume_at, heartbeat, store=self.store, max_rate=max_rate)

    def seal_point(self, draft: PointDraft) -> RecoveryPoint:
        from vmferry.replication.protect import seal_repaired

        point = seal_repaired(draft, store=self.store)
        retention.apply_retention(draft.app, store=self.store)
        return point

    def abandon_point(self, draft: PointDraft) -> None:
        points.abandon_point(draft, store=self.store)

    def protect(self, request: ProtectRequest, reporter=None) -> ProtectResult:
        from vmferry.plans.manifest import load_app
        from vmferry.replication.protect import protect, unprotect

        app = load_app(request.manifest).name
        if self.store.exists(app):
            group = self.store.load(app)
            same = (group.manifest == os.path.abspath(request.manifest) and group.source_site ==
                    request.source_site and group.target_site == request.target_site)
            if not same:
                raise ReplicationError(f"application {app!r} is already protected (unprotect it first)")
            if group.newest is None:  # an earlier attempt died before its first point: start again
                unprotect(app, store=self.store)
            else:
                return _result(group)
        group = protect(request.manifest, request.source_site, request.target_site, rpo=request.rpo_seconds,
                        keep=request.keep, store=self.store, domain_type=request.domain_type, reporter=reporter,
                        max_rate=request.max_rate)
        return _result(group)


def _result(group) -> ProtectResult:
    return ProtectResult(group.app, group.source_site, group.target_site, group.rpo_seconds, group.replica_dir,
                         group.newest)
