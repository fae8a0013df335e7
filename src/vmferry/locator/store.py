"""Stores of the mapping table: the protocol, and the embedded SQLite store (the default).

A store persists mappings and gives every change a store-wide monotonic version. The service
opens it once: :meth:`Store.open` returns the current table and its version, then calls
``on_change`` for every later change, in version order, from one thread at a time. A write
returns only once the change is durable (SQLite: committed with ``synchronous=FULL`` in WAL mode;
etcd: committed by the cluster's quorum).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from vmferry.errors import LocatorError
from vmferry.locator.model import Change, Eid, Mapping

OnChange = Callable[[Change], None]


class HistoryCompacted(LocatorError):
    """The changes after the requested version are no longer kept; the watcher must resynchronise."""


class Store(Protocol):
    name: str

    def open(self, on_change: OnChange) -> tuple[list[Mapping], int]:
        """Return (current mappings, version of that snapshot); then report later changes."""

    def put(self, kind: str, mapping: Mapping, *, nonce: str | None = None) -> int:
        """Store ``mapping`` (kind ``register`` or ``refresh``); return its version once durable.

        ``nonce`` ("<key id>/<nonce>" of the signed request) lets a store shared by several services
        refuse a replay atomically with the write (AuthError); a single-process store may ignore it."""

    def delete(self, eid: Eid, site: str, *, if_version: int | None = None,
               nonce: str | None = None) -> int | None:
        """Remove the mapping of ``eid`` (only if still at ``if_version`` when given).

        Returns the version of the deletion, or None when nothing was removed."""

    def history(self, after: int, until: int) -> Iterator[Change]:
        """Changes with ``after < version <= until`` in order; HistoryCompacted if not kept."""

    def close(self) -> None: ...


class SqliteStore:
    """The embedded store: one SQLite file in WAL mode, a mapping table and a change log."""

    name = "sqlite"

    def __init__(self, path: str | os.PathLike, *, keep_changes: int = 1_000_000) -> None:
        self.path = Path(path)
        self.keep_changes = keep_changes
        self._lock = threading.Lock()
        self._on_change: OnChange | None = None
        self._writes = 0
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript("""
                CREATE TABLE IF NOT EXISTS mappings (
                    iid INTEGER NOT NULL, eid TEXT NOT NULL, body TEXT NOT NULL,
                    version INTEGER NOT NULL, PRIMARY KEY (iid, eid));
                CREATE TABLE IF NOT EXISTS changes (
                    version INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, iid INTEGER NOT NULL,
                    eid TEXT NOT NULL, site TEXT NOT NULL, body TEXT);
                CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            """)
        except sqlite3.DatabaseError as exc:
            raise LocatorError(f"cannot open the locator database: {exc}", path=self.path) from exc

    # -- reading ---------------------------------------------------------------------------------
    def _head(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='changes'").fetchone()
        return int(row[0]) if row else 0

    def open(self, on_change: OnChange) -> tuple[list[Mapping], int]:
        with self._lock:
            try:
                rows = self._db.execute("SELECT body FROM mappings").fetchall()
                head = self._head()
            except sqlite3.DatabaseError as exc:
                raise LocatorError(f"cannot read the locator database: {exc}", path=self.path) from exc
            self._on_change = on_change
        return [Mapping.from_dict(json.loads(r[0])) for r in rows], head

    def history(self, after: int, until: int) -> Iterator[Change]:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name='pruned'").fetchone()
            if row and after < int(row[0]):
                raise HistoryCompacted(f"changes up to version {row[0]} are no longer kept")
        cursor = after
        while cursor < until:
            with self._lock:
                rows = self._db.execute(
                    "SELECT version, kind, iid, eid, site, body FROM changes WHERE version > ? AND version <= ?"
                    " ORDER BY version LIMIT 1000", (cursor, until)).fetchall()
            if not rows:
                return
            for version, kind, iid, eid, site, body in rows:
                mapping = Mapping.from_dict(json.loads(body)) if body else None
                yield Change(version, kind, Eid(iid, eid), mapping, site)
                cursor = version

    # -- writing ---------------------------------------------------------------------------------
    def put(self, kind: str, mapping: Mapping, *, nonce: str | None = None) -> int:
        # one process owns the file: the verifier's in-memory nonce cache is enough (nonce unused)
        return self.put_many(kind, [mapping])[0]

    def put_many(self, kind: str, mappings: list[Mapping]) -> list[int]:
        """Store many mappings in one transaction (bulk import); returns their versions."""
        changes = []
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for mapping in mappings:
                    eid = mapping.eid
                    cur = self._db.execute("INSERT INTO changes (kind, iid, eid, site, body) VALUES (?,?,?,?,'')",
                                           (kind, eid.instance_id, eid.text, mapping.site))
                    version = int(cur.lastrowid)
                    stored = mapping.with_version(version)
                    body = json.dumps(stored.to_dict(), separators=(",", ":"))
                    self._db.execute("UPDATE changes SET body=? WHERE version=?", (body, version))
                    self._db.execute("INSERT OR REPLACE INTO mappings (iid, eid, body, version) VALUES (?,?,?,?)",
                                     (eid.instance_id, eid.text, body, version))
                    changes.append(Change(version, kind, eid, stored, mapping.site))
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._rollback()
                raise LocatorError(f"cannot write the locator database: {exc}", path=self.path) from exc
            for change in changes:
                self._after_write(change)
        return [c.version for c in changes]

    def delete(self, eid: Eid, site: str, *, if_version: int | None = None,
               nonce: str | None = None) -> int | None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                row = self._db.execute("SELECT version FROM mappings WHERE iid=? AND eid=?",
                                       (eid.instance_id, eid.text)).fetchone()
                if row is None or (if_version is not None and int(row[0]) != if_version):
                    self._db.execute("ROLLBACK")
                    return None
                self._db.execute("DELETE FROM mappings WHERE iid=? AND eid=?", (eid.instance_id, eid.text))
                cur = self._db.execute("INSERT INTO changes (kind, iid, eid, site, body) VALUES (?,?,?,?,NULL)",
                                       ("deregister", eid.instance_id, eid.text, site))
                version = int(cur.lastrowid)
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._rollback()
                raise LocatorError(f"cannot write the locator database: {exc}", path=self.path) from exc
            self._after_write(Change(version, "deregister", eid, None, site))
        return version

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _after_write(self, change: Change) -> None:
        """Called with the lock held, so listeners see changes in version order."""
        self._writes += 1
        if self._writes % 10_000 == 0:
            self._prune(change.version)
        if self._on_change is not None:
            self._on_change(change)

    def _prune(self, head: int) -> None:
        limit = head - self.keep_changes
        if limit <= 0:
            return
        self._db.execute("DELETE FROM changes WHERE version <= ?", (limit,))
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('pruned', ?)", (limit,))

    def close(self) -> None:
        with self._lock:
            self._on_change = None
            self._db.close()
