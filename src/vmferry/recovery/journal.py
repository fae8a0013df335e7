"""The cleanup journal of a recovery run: what the run created, written down before it is created.

One JSON line per resource (``dir``, ``file``, ``network``, ``domain``) in
``<state>/recovery/journal/<run>.jsonl``, flushed and fsynced before the resource exists. While the
run lives it holds an exclusive ``flock`` on its journal; :func:`cleanup_pending` cleans every journal
nobody holds (a run killed with ``kill -9``, a host that rebooted) and skips live ones. Removal is
idempotent and goes in reverse order (domains before their files, networks, then the run directory).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from vmferry.errors import RecoveryError, TargetError, VmferryError

KINDS = ("dir", "file", "network", "domain")


def journal_dir(state: str | os.PathLike) -> Path:
    return Path(state) / "recovery" / "journal"


@dataclass
class Cleanup:
    removed: list[str] = field(default_factory=list)     # "domain NAME", "network NAME", "dir PATH", ...
    left: list[str] = field(default_factory=list)        # what could not be removed, with why

    @property
    def clean(self) -> bool:
        return not self.left

    def to_dict(self) -> dict:
        return {"removed": self.removed, "left": self.left, "clean": self.clean}


class Journal:
    """An open journal (use :meth:`create`); ``record`` before creating, ``finish`` after cleaning."""

    def __init__(self, path: Path, fh) -> None:
        self.path = path
        self._fh = fh

    @classmethod
    def create(cls, state: str | os.PathLike, run_id: str) -> Journal:
        d = journal_dir(state)
        try:
            d.mkdir(parents=True, exist_ok=True)
            path = d / f"{run_id}.jsonl"
            fh = open(path, "x", encoding="utf-8")
        except OSError as exc:
            raise RecoveryError(f"cannot write the cleanup journal: {exc.strerror}", path=str(d)) from exc
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return cls(path, fh)

    def record(self, kind: str, **what: str) -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        self._fh.write(json.dumps({"kind": kind, **what}, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def entries(self) -> list[dict]:
        return _read(self.path)

    def clean(self) -> Cleanup:
        """Remove everything recorded; the journal file goes too when nothing is left."""
        result = remove_all(self.entries())
        if result.clean:
            self.path.unlink(missing_ok=True)
        self._fh.close()
        return result


def _read(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue                      # a line cut by a crash: the resource was never created
        if isinstance(entry, dict) and entry.get("kind") in KINDS:
            out.append(entry)
    return out


def remove_all(entries: list[dict]) -> Cleanup:
    from vmferry.tools import libvirt as lv

    result = Cleanup()
    conns: dict[str, object] = {}
    stack = []
    try:
        for entry in reversed(entries):
            kind = entry["kind"]
            try:
                if kind in ("domain", "network"):
                    uri = str(entry.get("uri", ""))
                    if uri not in conns:
                        cm = lv.connect(uri)
                        conns[uri] = cm.__enter__()
                        stack.append(cm)
                    conn = conns[uri]
                    name = str(entry.get("name", ""))
                    if kind == "domain":
                        if name in conn.names():
                            conn.undefine(name)
                            result.removed.append(f"domain {name}")
                    elif conn.remove_network(name):
                        result.removed.append(f"network {name}")
                elif kind == "file":
                    path = Path(str(entry.get("path", "")))
                    if path.is_file() or path.is_symlink():
                        path.unlink()
                        result.removed.append(f"file {path}")
                else:
                    path = Path(str(entry.get("path", "")))
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                        result.removed.append(f"dir {path}")
            except (VmferryError, TargetError, OSError) as exc:
                result.left.append(f"{kind} {entry.get('name') or entry.get('path')}: {exc}")
    finally:
        for cm in stack:
            cm.__exit__(None, None, None)
    return result


def cleanup_pending(state: str | os.PathLike) -> Cleanup:
    """Clean what runs that died left behind (journals no live run holds)."""
    total = Cleanup()
    d = journal_dir(state)
    if not d.is_dir():
        return total
    for path in sorted(d.glob("*.jsonl")):
        try:
            fh = open(path, encoding="utf-8")
        except FileNotFoundError:
            continue
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue                  # a live run holds it
            result = remove_all(_read(path))
            total.removed += result.removed
            total.left += result.left
            if result.clean:
                path.unlink(missing_ok=True)
    return total
