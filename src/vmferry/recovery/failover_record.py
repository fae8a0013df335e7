"""The failover record of an application: what a failover run did, step by step, so that running a step
again (a retried activity, a worker restarted after ``kill -9``, the command run again) does nothing twice.

One JSON document per application, ``<state>/recovery/failover/<app>.json``, replaced atomically (temp
file + rename, fsynced) after every step; an exclusive ``flock`` on ``<app>.lock`` serialises writers::

    {"version": 1, "app": "shop", "run": "20261201T060000Z-ab12cd", "mode": "planned" | "disaster",
     "source_site": "dc1", "target_site": "dr", "target_uri": "...", "source_uri": "...",
     "storage": "<target storage dir>", "run_dir": "<storage>/<app>.failover-<run>",
     "requested_point": null, "point_id": "...", "point_taken_at": "...", "started_at": "...",
     "status": "running" | "done" | "failed", "error": "",
     "steps": {"<step>": {"at": "<iso>", ...details}},      # stop-source, final-sync, launch-<n>, surroundings
     "vms": {"<replica vm>": {"component", "domain", "state": "defining" | "started", "domain_id",
                              "disks": {"vda": "<run_dir>/<vm>.vda.qcow2"}, "address", "started_at",
                              "starts": 1, "proved": bool, "time_to_proof"}},
     "apply_journal": "<state>/recovery/failover/<app>.<run>.apply.json",
     "report": {...}}                                         # the final report (RecoveryReport.to_dict())

A VM is recorded ``defining`` before its domain is defined and ``started`` (with libvirt's domain id)
after it started: a domain that exists and is recorded is this run's own and is never started again;
one that exists and is not recorded is somebody else's, and the failover is refused.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from vmferry.errors import RecoveryError, ReplicationError
from vmferry.tools.files import replace_file

VERSION = 1
MODES = ("planned", "disaster")


def record_dir(state: str | os.PathLike) -> Path:
    return Path(state) / "recovery" / "failover"


def record_path(state: str | os.PathLike, app: str) -> Path:
    return record_dir(state) / f"{app}.json"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def load(state: str | os.PathLike, app: str) -> dict | None:
    """The application's failover record, or None when it never failed over."""
    path = record_path(state, app)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecoveryError(f"cannot read the failover record: {exc}", path=str(path)) from exc
    if not isinstance(doc, dict) or doc.get("version") != VERSION or doc.get("app") != app:
        raise RecoveryError("not a vmferry failover record of this application", path=str(path))
    return doc


def save(state: str | os.PathLike, doc: dict) -> None:
    d = record_dir(state)
    path = record_path(state, doc["app"])
    try:
        d.mkdir(parents=True, exist_ok=True)
        replace_file(path, json.dumps(doc, indent=1, sort_keys=True) + "\n", mode=0o600)
    except OSError as exc:
        raise RecoveryError(f"cannot write the failover record: {exc.strerror}", path=str(path)) from exc


@contextmanager
def locked(state: str | os.PathLike, app: str) -> Iterator[None]:
    d = record_dir(state)
    try:
        d.mkdir(parents=True, exist_ok=True)
        fh = open(d / f"{app}.lock", "a")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise RecoveryError(f"cannot lock the failover record: {exc.strerror}", path=str(d)) from exc
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def step_done(doc: dict, step: str) -> dict | None:
    return doc.get("steps", {}).get(step)


def mark_step(state: str | os.PathLike, doc: dict, step: str, **detail) -> dict:
    doc.setdefault("steps", {})[step] = {"at": now_iso(), **detail}
    save(state, doc)
    return doc


def remove(state: str | os.PathLike, app: str) -> bool:
    """Forget the application's failover (once it was failed back or reprotected); True if there was one."""
    path = record_path(state, app)
    with locked(state, app):
        doc = load(state, app)
        if doc is None:
            return False
        journal = doc.get("apply_journal")
        if journal:
            Path(journal).unlink(missing_ok=True)
            Path(f"{journal}.lock").unlink(missing_ok=True)     # its run lock (plans/apply.journal_lock)
        path.unlink()
    return True


def launched(doc: dict | None) -> bool:
    """Whether the failover of ``doc`` started any VM at its target: the application runs there now."""
    return bool(doc) and any(vm.get("state") == "started" for vm in doc.get("vms", {}).values())


def refuse_sync(state: str | os.PathLike, app: str) -> None:
    """Refuse a sync of ``app`` in its protected direction once a failover launched it at the target: the
    source is stopped or gone, and the copies at the target are the application now. Its protection
    resumes, in the other direction, with ``--reprotect`` (which forgets the record)."""
    try:
        doc = load(state, app)
    except RecoveryError as exc:        # a damaged record may hide a failover: nothing is synced over it
        raise ReplicationError(f"application {app!r}: {exc}; no sync while it is unreadable") from exc
    if launched(doc):
        raise ReplicationError(f"application {app!r} runs at site {doc.get('target_site')!r} since its "
                               f"{doc.get('mode', '')} failover (run {doc.get('run')}): it is not synced from "
                               f"{doc.get('source_site')!r} any more; 'vmferry recover {app} --reprotect' protects "
                               "it back in the other direction")
