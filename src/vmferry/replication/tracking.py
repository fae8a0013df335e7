"""Change tracking of a running libvirt/QEMU domain: checkpoints and pull-mode backups.

A recovery point of a running domain is one libvirt *pull-mode backup* started together with a new
*checkpoint* (``virDomainBackupBegin`` with a ``<domainbackup mode='pull'>`` and a
``<domaincheckpoint>``): at that one moment QEMU starts a persistent dirty bitmap per disk (the
checkpoint, kept in each qcow2 disk) and exports every disk's state *as of that moment* over NBD on a
Unix socket, keeping the guest running (writes after the moment go through a scratch file, which vmferry
creates beside the socket, owned like it, for libvirt to reuse: any daemon's QEMU can open it). When the
previous point's checkpoint exists, the backup is *incremental*: each export also carries the bitmap of
the blocks written since that checkpoint as the NBD metadata context
``qemu:dirty-bitmap:backup-<disk>``, and only those blocks are read. Without a previous checkpoint (the
first point) or when it is missing or broken (deleted, lost with its disk, refused by QEMU), the backup
is full, the allocated extents (``base:allocation``) are read, and the point says why (finding
``VMF-DR-010``).

The capture of one VM is a :class:`~vmferry.replication.model.VmSession` whose ``state`` (JSON) names
the domain, its connection, the new checkpoint, the export socket and each disk's export: any process
can reopen a disk's :class:`DomainChangeSource` from it while the backup job runs (a restarted worker
resumes reading the same moment). :func:`end_capture` stops the job; once the point is sealed the
application's older checkpoints on the domain are deleted (:func:`retire_checkpoints`), so only its newest
point's checkpoint keeps a bitmap; an abandoned point's checkpoint is deleted instead, which merges its bitmap
back into the previous one (libvirt's checkpoint deletion), so the next point still sees every change.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from vmferry.errors import ReplicationError, ToolError
from vmferry.findings import Finding
from vmferry.replication import quiesce
from vmferry.replication.model import Extent, VmSession
from vmferry.tools import nbd
from vmferry.tools.libvirt import binding, connect, message

PREFIX = "vmferry-"            # the checkpoints vmferry owns on a domain start with this
RESYNC_RULE = "VMF-DR-010"
SOCKET_PATH_MAX = 107        # sun_path holds 108 bytes with the final NUL
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def checkpoint_name(app: str, point_id: str) -> str:
    """The libvirt checkpoint name of ``app``'s point ``point_id`` (characters libvirt accepts)."""
    return f"{PREFIX}{_SAFE.sub('_', app)}.{_SAFE.sub('_', point_id)}"


@dataclass(frozen=True)
class CaptureRequest:
    """One VM of a point to capture: the domain at ``uri``, the checkpoint of the previous point
    (``since``, None for a first copy) and the name of the checkpoint to create."""
    uri: str
    domain: str
    checkpoint: str
    since: str | None = None


def resync_finding(vm: str, reason: str) -> Finding:
    """The finding a full resync of ``vm`` (change tracking lost) is reported as."""
    return Finding(RESYNC_RULE, "warning", f"VM {vm}: change tracking was lost, the whole disk was copied "
                   f"again ({reason})", location=vm,
                   fix="nothing: the next point is incremental again from this point's checkpoint")


def quoteattr(value: str) -> str:
    """``value`` as a quoted XML attribute value (what ``xml.sax.saxutils.quoteattr`` gives, without
    importing it: it pulls in ``urllib.request``, a good part of a short command's start)."""
    escaped = html.escape(value, quote=True)
    return '"' + escaped.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;") + '"'


def _xml(text: str) -> etree._Element:
    return etree.fromstring(text.encode(), etree.XMLParser(resolve_entities=False, no_network=True))


def tracked_disks(dom) -> list[str]:
    """The targets of the domain's disks (``device='disk'``), each of which must be a qcow2 file: QEMU
    keeps persistent dirty bitmaps only in qcow2."""
    root = _xml(dom.XMLDesc(0))
    out = []
    for disk in root.findall("devices/disk"):
        if disk.get("device", "disk") != "disk":
            continue
        target = disk.find("target")
        driver = disk.find("driver")
        name = target.get("dev") if target is not None else None
        if not name:
            continue
        fmt = driver.get("type") if driver is not None else None
        if fmt != "qcow2":
            raise ReplicationError(f"domain {dom.name()}: disk {name} is {fmt or 'of unknown format'}, not qcow2; "
                                   "change tracking needs persistent dirty bitmaps, which only qcow2 keeps")
        out.append(name)
    if not out:
        raise ReplicationError(f"domain {dom.name()} has no disk to replicate")
    return out


def _backup_xml(disks: list[str], socket: Path, scratch: Path, since: str | None) -> str:
    inc = f"<incremental>{since}</incremental>" if since else ""
    items = "".join(
        f"<disk name={quoteattr(d)} backup='yes' type='file' exportname={quoteattr(d)}"
        + (f" exportbitmap={quoteattr('backup-' + d)}" if since else "")
        + f"><driver type='qcow2'/><scratch file={quoteattr(str(scratch / (d + '.scratch')))}/></disk>"
        for d in disks)
    return (f"<domainbackup mode='pull'>{inc}<server transport='unix' socket={quoteattr(str(socket))}/>"
            f"<disks>{items}</disks></domainbackup>")


def _checkpoint_xml(name: str, disks: list[str]) -> str:
    items = "".join(f"<disk name={quoteattr(d)} checkpoint='bitmap'/>" for d in disks)
    return (f"<domaincheckpoint><name>{name}</name><description>vmferry recovery point</description>"
            f"<disks>{items}</disks></domaincheckpoint>")


def _checkpoints(dom) -> set[str]:
    return {c.getName() for c in dom.listAllCheckpoints(0)}


def _running_backup(dom) -> str | None:
    """The Unix socket of the pull-mode backup the domain runs, or None."""
    libvirt = binding()
    try:
        root = _xml(dom.backupGetXMLDesc(0))
    except libvirt.libvirtError:
        return None
    server = root.find("server")
    return server.get("socket") if server is not None else None


def capture_dir(workdir: Path, req: CaptureRequest) -> Path:
    """The directory (scratch files, NBD socket, state) of one domain's capture: one per connection, domain
    and checkpoint. The VMs of one point share the checkpoint's name; a directory per checkpoint only made
    the second VM's backup job replace the first one's socket, and every VM of the point was read from
    the last one's export (the planned failover's final point then missed what the first VM wrote)."""
    key = "\0".join((req.uri, req.domain, req.checkpoint)).encode()
    return workdir / hashlib.sha256(key).hexdigest()[:12]   # short: a socket path


def _check_not_anothers(capture: Path, req: CaptureRequest) -> None:
    """Refuse a capture directory whose state names another domain: its socket may be a live export of
    that domain's disks, which this capture would remove and serve its own under (by mechanism, not by
    trusting the directory's name to be unique)."""
    try:
        state = json.loads((capture / "state.json").read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        state = {}
    theirs = (state.get("uri"), state.get("domain")) if isinstance(state, dict) else (None, None)
    if theirs != (req.uri, req.domain):
        raise ReplicationError(f"capture directory {capture} holds the capture of domain {theirs[1]!r} at "
                               f"{theirs[0]!r}, not of {req.domain!r}: its export is left alone", path=str(capture))


def _begin_one(dom, req: CaptureRequest, workdir: Path) -> dict:
    """Start the backup + checkpoint of one domain (already quiesced by the caller); the session state."""
    libvirt = binding()
    disks = tracked_disks(dom)
    capture = capture_dir(workdir, req)
    socket = capture / "nbd.sock"
    if len(os.fsencode(socket)) > SOCKET_PATH_MAX:
        raise ReplicationError(f"capture directory {workdir} is too deep for a Unix socket path "
                               f"({len(os.fsencode(socket))} bytes for {socket}, at most {SOCKET_PATH_MAX})")
    _check_not_anothers(capture, req)
    running = _running_backup(dom)
    existing = _checkpoints(dom)
    if running == str(socket) and req.checkpoint in existing:   # this very capture runs already
        state = json.loads((capture / "state.json").read_text())
        return state
    if running is not None:
        if Path(running).parent.parent != workdir:
            raise ReplicationError(f"domain {req.domain} runs another backup job (socket {running})")
        _abort(dom)   # a capture of ours a crashed run left behind
    if req.checkpoint in existing:   # left by a run that crashed between checkpoint and job: start over
        dom.checkpointLookupByName(req.checkpoint).delete(0)
    capture.mkdir(parents=True, exist_ok=True)
    try:
        owner = workdir.stat()
        if os.geteuid() == 0 and (owner.st_uid, owner.st_gid) != (0, 0):
            os.chown(capture, owner.st_uid, owner.st_gid)   # QEMU writes scratch files and its socket here
        for stale in capture.iterdir():
            if stale.suffix == ".scratch" or stale.name == "nbd.sock":
                stale.unlink()
        reason = ""
        since = req.since
        if since and since not in existing:
            reason = f"checkpoint {since} of domain {req.domain} is missing"
            since = None
        ck_xml = _checkpoint_xml(req.checkpoint, disks)
        sizes = {d: int(dom.blockInfo(d, 0)[0]) for d in disks}
        reuse = _make_scratch(capture, sizes)
        try:
            dom.backupBegin(_backup_xml(disks, socket, capture, since), ck_xml, reuse)
        except libvirt.libvirtError as exc:
            if not since:
                raise ReplicationError(f"domain {req.domain}: backup could not start: {message(exc)}") from exc
            reason = f"incremental backup from checkpoint {since} refused: {message(exc)}"
            since = None
            try:
                if req.checkpoint in _checkpoints(dom):
                    dom.checkpointLookupByName(req.checkpoint).delete(0)
                _make_scratch(capture, sizes)          # fresh scratch files for the full backup
                dom.backupBegin(_backup_xml(disks, socket, capture, None), ck_xml, reuse)
            except libvirt.libvirtError as exc2:
                raise ReplicationError(f"domain {req.domain}: backup could not start: {message(exc2)}") from exc2
        state = {"uri": req.uri, "domain": req.domain, "checkpoint": req.checkpoint, "since": since,
                 "socket": str(socket), "capture_dir": str(capture), "disks": sizes, "resync_reason": reason}
        tmp = capture / "state.json.tmp"
        tmp.write_text(json.dumps(state, sort_keys=True))
        os.replace(tmp, capture / "state.json")
    except BaseException:   # nothing of this capture stays: no job, no checkpoint, no directory
        _undo(dom, {"socket": str(socket), "checkpoint": req.checkpoint, "capture_dir": str(capture)})
        raise
    return state


def _make_scratch(capture: Path, sizes: dict[str, int]) -> int:
    """Create each disk's scratch file (an empty qcow2 of the disk's size, owned like the capture
    directory) for the backup job to reuse; the flag that tells libvirt so. libvirt creating the scratch
    itself leaves it to its security drivers to let QEMU open it: a daemon without dynamic ownership
    (or with root-squashed storage) creates a file its QEMU user cannot open."""
    from vmferry.disks.qcow2_write import create_image

    owner = capture.stat()
    for disk, size in sizes.items():
        path = capture / f"{disk}.scratch"
        path.unlink(missing_ok=True)
        create_image(path, size)              # in process: what qemu-img create -f qcow2 makes
        if os.geteuid() == 0:
            os.chown(path, owner.st_uid, owner.st_gid)
    return binding().VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL


def begin_captures(requests: list[CaptureRequest], workdir: str | os.PathLike, *,
                   quiesce_guests: bool = True) -> list[VmSession]:
    """Capture every VM of ``requests`` at one moment: freeze all (through their guest agents), start
    every backup + checkpoint, thaw all. ``workdir`` holds the export sockets and scratch files (one
    directory per domain and checkpoint, owned like ``workdir``) and must be writable by the QEMU processes. Idempotent: a capture whose
    backup job still runs is reused."""
    base = Path(workdir)
    base.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        conns = {uri: stack.enter_context(connect(uri)) for uri in sorted({r.uri for r in requests})}
        doms = [conns[r.uri].domain(r.domain) for r in requests]
        sessions = []
        states: list[dict] = []
        with quiesce.quiesced(doms, enabled=quiesce_guests) as frozen:
            try:
                for dom, req in zip(doms, requests, strict=True):
                    states.append(_begin_one(dom, req, base))
            except BaseException:
                # all or nothing: the captures already begun are ended, their checkpoints deleted
                for dom, state in zip(doms, states, strict=False):
                    _undo(dom, state)
                raise
        for req, state, fr in zip(requests, states, frozen, strict=True):
            state = dict(state, quiesce_reason=fr.reason, frozen_filesystems=fr.filesystems)
            sessions.append(VmSession(req.domain, "domain", fr.consistency, json.dumps(state, sort_keys=True)))
        return sessions


def _undo(dom, state: dict) -> None:
    """End a capture that began but whose point will not be taken; best effort (the error being raised
    is the one to report)."""
    libvirt = binding()
    try:
        if _running_backup(dom) == state["socket"]:
            _abort(dom)
        if state["checkpoint"] in _checkpoints(dom):
            dom.checkpointLookupByName(state["checkpoint"]).delete(0)
    except (libvirt.libvirtError, ReplicationError):
        pass
    _remove_capture_dir(Path(state["capture_dir"]))


def _remove_capture_dir(capture: Path) -> None:
    if capture.is_dir():
        for item in capture.iterdir():
            item.unlink(missing_ok=True)   # QEMU removes its socket when the job ends, maybe just now
        capture.rmdir()


def _state(session: VmSession) -> dict:
    try:
        state = json.loads(session.state)
        for key in ("uri", "domain", "checkpoint", "socket", "disks"):
            state[key]  # noqa: B018  (presence check)
    except (ValueError, KeyError, TypeError) as exc:
        raise ReplicationError(f"VM {session.vm}: not a capture of a running domain ({exc})") from exc
    return state


def checkpoint_of(session: VmSession) -> str:
    """The checkpoint a capture created (the ``since`` of the next point)."""
    return _state(session)["checkpoint"]


def resync_reason(session: VmSession) -> str:
    """Why the capture copies whole disks although a previous checkpoint was named ('' when it does not)."""
    return _state(session).get("resync_reason", "")


def is_full(session: VmSession) -> bool:
    return _state(session).get("since") is None


class DomainChangeSource:
    """The changes of one disk of a captured domain, read over NBD from the backup job's export."""

    def __init__(self, session: VmSession, disk: str) -> None:
        state = _state(session)
        if disk not in state["disks"]:
            raise ReplicationError(f"VM {session.vm} has no captured disk {disk!r}")
        self.disk = disk
        self.size = int(state["disks"][disk])
        self.full = state.get("since") is None
        self.resync_reason = state.get("resync_reason", "")
        self._context = nbd.BASE_ALLOCATION if self.full else nbd.dirty_bitmap_context(f"backup-{disk}")
        if not os.path.exists(state["socket"]):
            raise ReplicationError(f"VM {session.vm}: the backup export of checkpoint {state['checkpoint']} "
                                   "is gone (the backup job ended); the point must be taken again")
        self._socket = state["socket"]
        self._export = nbd.open_unix(self._socket, disk, contexts=[self._context])
        # one libnbd handle runs one synchronous request at a time: readers on other threads get a
        # connection each when the server says its connections see the same data (QEMU's backup export
        # of one moment does), so the copy's reads really are in flight together
        self._spread = self._export.can_multi_conn()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._readers: list[nbd.Export] = []

    def extents(self) -> list[Extent]:
        """Changed extents (incremental) or extents that do not read as zeros (full), sorted, merged."""
        out: list[Extent] = []
        for span in self._export.spans(self._context):
            wanted = (span.flags & nbd.STATE_DIRTY) if not self.full else not (span.flags & nbd.STATE_ZERO)
            if not wanted:
                continue
            if out and out[-1].end == span.offset:
                out[-1] = Extent(out[-1].offset, out[-1].length + span.length)
            else:
                out.append(Extent(span.offset, span.length))
        return out

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` as of the capture's moment; safe from several threads at once."""
        return self._reader().pread(offset, length)

    def _reader(self) -> nbd.Export:
        export = getattr(self._local, "export", None)
        if export is not None:
            return export
        export = self._export
        if self._spread and threading.current_thread() is not threading.main_thread():
            with self._lock:
                if self._export is None:
                    raise ReplicationError(f"the change source of disk {self.disk} is closed")
                try:
                    export = nbd.open_unix(self._socket, self.disk)
                except ToolError:
                    export = self._export   # no more connections taken: share the first one
                else:
                    self._readers.append(export)
        self._local.export = export
        return export

    def close(self) -> None:
        with self._lock:
            readers, self._readers = self._readers, []
            first, self._export = self._export, None
        for export in readers:
            export.close()
        if first is not None:
            first.close()


def open_source(session: VmSession, disk: str) -> DomainChangeSource:
    return DomainChangeSource(session, disk)


ABORT_WAIT = 30.0   # seconds a stopped backup job may take to be gone (QEMU ends it after abortJob returns)


def _abort(dom) -> None:
    """Stop the domain's backup job and wait until it is gone: libvirt may still describe it for a moment
    after ``abortJob`` returns (longer on a loaded host), and a next capture of the domain would then be
    refused, or an undo leave it running."""
    libvirt = binding()
    try:
        dom.abortJob()
    except libvirt.libvirtError as exc:
        if dom.isActive() and _running_backup(dom) is not None:
            raise ReplicationError(f"domain {dom.name()}: the backup job could not be stopped: "
                                   f"{message(exc)}") from exc
    deadline = time.monotonic() + ABORT_WAIT
    while dom.isActive() and _running_backup(dom) is not None:
        if time.monotonic() > deadline:
            raise ReplicationError(f"domain {dom.name()}: the backup job is still there {ABORT_WAIT:g} s after "
                                   "it was stopped")
        time.sleep(0.05)


def stop_job(session: VmSession) -> None:
    """Stop the capture's backup job (its export goes away; checkpoints are left as they are): once
    every disk of the point is copied, the job is not needed to seal it. :func:`end_capture` still
    does the rest (and stops the job itself if this was not called)."""
    state = _state(session)
    with connect(state["uri"]) as conn:
        dom = conn.domain(state["domain"])
        if _running_backup(dom) == state["socket"]:
            _abort(dom)


def end_capture(session: VmSession, *, sealed: bool) -> None:
    """Stop the capture's backup job and remove its scratch files. ``sealed``: the point was sealed, so
    the application's older checkpoints on the domain are deleted; otherwise (abandoned) the capture's
    own checkpoint is deleted, its bitmap merging back into the previous checkpoint's."""
    state = _state(session)
    libvirt = binding()
    with connect(state["uri"]) as conn:
        dom = conn.domain(state["domain"])
        if _running_backup(dom) == state["socket"]:
            _abort(dom)
        try:
            if sealed:
                retire_checkpoints(dom, keep=state["checkpoint"])
            elif state["checkpoint"] in _checkpoints(dom):
                dom.checkpointLookupByName(state["checkpoint"]).delete(0)
        except libvirt.libvirtError as exc:
            raise ReplicationError(f"domain {state['domain']}: checkpoint bookkeeping failed: "
                                   f"{message(exc)}") from exc
    if state.get("capture_dir"):
        _remove_capture_dir(Path(state["capture_dir"]))


def app_prefix(checkpoint: str) -> str:
    """The name prefix every checkpoint of the same application shares (``vmferry-<app>.``)."""
    head, dot, _point = checkpoint.rpartition(".")
    if not checkpoint.startswith(PREFIX) or not dot:
        raise ReplicationError(f"{checkpoint!r} is not a vmferry checkpoint name")
    return head + dot


def retire_checkpoints(dom, *, keep: str) -> list[str]:
    """Delete the domain's checkpoints of ``keep``'s application other than ``keep`` (oldest first; other
    applications' and other tools' checkpoints are left alone); their names."""
    libvirt = binding()
    prefix = app_prefix(keep)
    gone = []
    for ck in sorted(dom.listAllCheckpoints(0), key=lambda c: _created(c)):
        name = ck.getName()
        if name.startswith(prefix) and name != keep:
            try:
                ck.delete(0)
            except libvirt.libvirtError:
                # QEMU lost its bitmaps (a broken checkpoint): only libvirt's record is left to remove
                try:
                    ck.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)
                except libvirt.libvirtError:
                    continue   # one that cannot go now goes with the next seal
            gone.append(name)
    return gone


def _created(ck) -> int:
    try:
        return int(_xml(ck.getXMLDesc(0)).findtext("creationTime") or 0)
    except (ValueError, etree.XMLSyntaxError):
        return 0
