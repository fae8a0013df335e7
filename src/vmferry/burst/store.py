"""The burst records: ``<state>/burst/<app>.<component>.json``, written atomically, one writer at a time
(``flock`` on ``<app>.<component>.lock`` for the whole of an add, remove or watch step)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from vmferry.burst.model import BurstRecord
from vmferry.errors import BurstError
from vmferry.tools.files import replace_file

KEEP_DECISIONS = 50


def burst_dir(state: str | os.PathLike) -> Path:
    return Path(state) / "burst"


def _path(state, app: str, component: str, suffix: str) -> Path:
    return burst_dir(state) / f"{app}.{component}.{suffix}"


def load(state, app: str, component: str, site: str) -> BurstRecord:
    path = _path(state, app, component, "json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return BurstRecord(app, component, site)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BurstError(f"cannot read the burst record: {exc}", path=str(path)) from exc
    if not isinstance(data, dict):
        raise BurstError("the burst record is not a JSON object", path=str(path))
    record = BurstRecord.from_dict(data, path=str(path))
    if record.copies and record.site != site:
        raise BurstError(f"{app}/{component} has copies at site {record.site!r}; remove them before bursting "
                         f"to {site!r}", path=str(path))
    record.site = site
    return record


def save(state, record: BurstRecord) -> None:
    record.decisions = record.decisions[-KEEP_DECISIONS:]
    path = _path(state, record.app, record.component, "json")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not record.copies and not record.decisions:
        path.unlink(missing_ok=True)
        return
    try:
        replace_file(path, json.dumps(record.to_dict(), indent=1, sort_keys=True) + "\n", mode=0o600)
    except OSError as exc:
        raise BurstError(f"cannot write the burst record: {exc.strerror}", path=str(path)) from exc


def records(state) -> list[BurstRecord]:
    """Every burst record of the state directory (for status)."""
    out = []
    d = burst_dir(state)
    for path in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            out.append(BurstRecord.from_dict(data, path=str(path)))
        except (OSError, ValueError, BurstError):
            continue
    return out


@contextlib.contextmanager
def locked(state, app: str, component: str, *, wait: bool = True) -> Iterator[None]:
    path = _path(state, app, component, "lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise BurstError(f"another vmferry burst of {app}/{component} is running") from None
        yield
