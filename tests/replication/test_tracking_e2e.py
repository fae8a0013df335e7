"""Change tracking of a running guest end to end: a real private libvirtd, the command-loop test guest
(QEMU under TCG) writing to its own disk between points, libvirt checkpoints + pull-mode backups, dirty
extents over NBD, copies into a qcow2 chain compared with the backup's export and with the guest's view."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.guest import libvirtd as _libvirtd
from tests.replication import sourceguest as sg
from vmferry.errors import ReplicationError
from vmferry.replication import copy, tracking
from vmferry.replication.model import Extent
from vmferry.tools import nbd
from vmferry.tools.libvirt import connect
from vmferry.tools.proc import run

pytestmark = pytest.mark.slow

MIB = 1 << 20
BLOCK = 64 << 10
DATA_SIZE = 64 * MIB
DOMAIN = "vmferry-repl-src"


class Guest:
    def __init__(self, daemon, workdir: Path, console: sg.Console) -> None:
        self.daemon = daemon
        self.workdir = workdir
        self.console = console
        self.captures = workdir / "cap"

    def write(self, blocks: list[int]) -> None:
        assert self.console.run(sg.write_blocks_command("/dev/vdb", blocks)) == 0

    def md5(self, device: str) -> str:
        """The digest of the disk as the guest reads it."""
        return self.console.md5sum(device)

    def capture(self, checkpoint: str, since: str | None = None):
        req = tracking.CaptureRequest(self.daemon.uri, DOMAIN, tracking.checkpoint_name("app", checkpoint),
                                      since=since)
        return tracking.begin_captures([req], self.captures)[0]

    def checkpoints(self) -> list[str]:
        with connect(self.daemon.uri) as conn:
            return sorted(c.getName() for c in conn.domain(DOMAIN).listAllCheckpoints(0))


@pytest.fixture(scope="module")
def guest():
    daemon, proc = _libvirtd.start()
    try:
        work = daemon.workdir
        (work / "cap").mkdir()
        os.chown(work / "cap", daemon.uid, daemon.gid)
        with sg.running_guest(daemon, DOMAIN, DATA_SIZE) as running:
            yield Guest(daemon, work, running.console)
    finally:
        _libvirtd.stop(proc, daemon.workdir.parent)


def export_uri(session, disk: str) -> str:
    import json

    return f"nbd+unix:///{disk}?socket={json.loads(session.state)['socket']}"


def same_as_export(session, disk: str, image: Path) -> bool:
    """qemu-img compare of the backup's export (the disk at the point's moment) with ``image``."""
    res = run(["qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", export_uri(session, disk), image],
              check=False)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode == 0


def image_md5(image: Path, size: int) -> str:
    digest = hashlib.md5()
    with nbd.serve_image(image, "qcow2", readonly=True) as export:
        for offset in range(0, size, 4 * MIB):
            digest.update(export.pread(offset, min(4 * MIB, size - offset)))
    return digest.hexdigest()


def layer(path: Path, size: int, backing: Path | None = None) -> Path:
    argv = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing:
        argv += ["-F", "qcow2", "-b", str(backing)]
    run([*argv, path, str(size)])
    return path


def sync(session, disk: str, target: Path, **kwargs) -> copy.CopyResult:
    src = tracking.open_source(session, disk)
    try:
        return copy.copy_into_image(src, target, **kwargs)
    finally:
        src.close()


def extents_of(blocks: list[int]) -> list[Extent]:
    return copy.merge([Extent(b * BLOCK, BLOCK) for b in blocks])


FIRST = [1, 2, 3, 100, 101, 900]
SECOND = [5, 6, 7, 8, 40, 41, 300, 301, 302, 303, 304, 305, 306, 307, 700, 1023]
THIRD = [11, 12, 500]


def test_points_of_a_running_guest(guest, tmp_path):
    guest.write(FIRST)
    # point 1: no checkpoint yet -> full copy of the allocated extents; the guest's qemu-ga froze its
    # file system (the read-only root) for the moment of the point: application-consistent
    s1 = guest.capture("p1")
    assert s1.consistency == "application", tracking._state(s1)["quiesce_reason"]
    assert tracking._state(s1)["frozen_filesystems"] >= 1
    assert tracking.is_full(s1) and tracking.resync_reason(s1) == ""
    p1 = {d: layer(tmp_path / f"p1-{d}.qcow2", size) for d, size in tracking._state(s1)["disks"].items()}
    for disk, target in p1.items():
        result = sync(s1, disk, target)
        assert result.bytes_read == result.total > 0
        assert same_as_export(s1, disk, target)
    assert sync(s1, "vdb", p1["vdb"]).total == len(FIRST) * BLOCK  # allocated = what the guest wrote
    tracking.end_capture(s1, sealed=True)
    assert guest.checkpoints() == [tracking.checkpoint_name("app", "p1")]
    assert not Path(tracking._state(s1)["capture_dir"]).exists() and list(guest.captures.iterdir()) == []
    assert image_md5(p1["vdb"], DATA_SIZE) == guest.md5("/dev/vdb")

    # the guest writes; point 2 is incremental: exactly the written blocks travel
    guest.write(SECOND)
    s2 = guest.capture("p2", since=tracking.checkpoint_of(s1))
    assert not tracking.is_full(s2)
    src = tracking.open_source(s2, "vdb")
    try:
        assert src.extents() == extents_of(SECOND)
    finally:
        src.close()
    p2 = {d: layer(tmp_path / f"p2-{d}.qcow2", size, p1[d]) for d, size in tracking._state(s2)["disks"].items()}
    root = sync(s2, "vda", p2["vda"])
    assert root.bytes_read <= 4 * BLOCK     # the root file system is mounted read-only: (almost) nothing

    # an interrupted copy of vdb, resumed from its last heartbeat
    chunk = 2 * BLOCK
    beats: list[int] = []

    class Killed(Exception):
        pass

    def beat(done: int) -> None:
        beats.append(done)
        if len(beats) == 4:
            raise Killed

    with pytest.raises(Killed):
        sync(s2, "vdb", p2["vdb"], chunk=chunk, heartbeat=beat, heartbeat_every=0)
    changed = len(SECOND) * BLOCK
    resumed = sync(s2, "vdb", p2["vdb"], chunk=chunk, resume_at=beats[-1])
    assert resumed.total == changed and 0 < beats[-1] < changed
    assert resumed.bytes_read <= (changed - beats[-1]) + chunk
    for disk in p2:
        assert same_as_export(s2, disk, p2[disk])
    assert not same_as_export(s2, "vdb", p1["vdb"])     # the new data is not in the previous point
    tracking.end_capture(s2, sealed=True)
    assert guest.checkpoints() == [tracking.checkpoint_name("app", "p2")]   # older checkpoint retired
    assert image_md5(p2["vdb"], DATA_SIZE) == guest.md5("/dev/vdb")
    assert image_md5(p1["vdb"], DATA_SIZE) != image_md5(p2["vdb"], DATA_SIZE)

    # an abandoned point gives its changes back to the previous checkpoint
    guest.write(THIRD)
    s3 = guest.capture("p3", since=tracking.checkpoint_of(s2))
    tracking.end_capture(s3, sealed=False)
    assert guest.checkpoints() == [tracking.checkpoint_name("app", "p2")]
    s4 = guest.capture("p4", since=tracking.checkpoint_of(s2))
    src = tracking.open_source(s4, "vdb")
    try:
        assert src.extents() == extents_of(THIRD)
    finally:
        src.close()
    # the same capture asked for again (a restarted worker) is the running one
    again = guest.capture("p4", since=tracking.checkpoint_of(s2))
    assert tracking._state(again)["socket"] == tracking._state(s4)["socket"]
    tracking.end_capture(s4, sealed=True)
    assert guest.checkpoints() == [tracking.checkpoint_name("app", "p4")]


def test_sealing_retires_only_the_same_applications_checkpoints(guest):
    """Another application protecting the same domain keeps its checkpoint (and its incremental chain)."""
    other = tracking.begin_captures([tracking.CaptureRequest(guest.daemon.uri, DOMAIN,
                                                             tracking.checkpoint_name("other", "o1"))], guest.captures)[0]
    tracking.end_capture(other, sealed=True)
    mine = guest.capture("p4b", since=tracking.checkpoint_name("app", "p4"))
    tracking.end_capture(mine, sealed=True)
    assert guest.checkpoints() == [tracking.checkpoint_name("app", "p4b"), tracking.checkpoint_name("other", "o1")]
    guest.write([33])
    later = tracking.begin_captures([tracking.CaptureRequest(guest.daemon.uri, DOMAIN,
                                                             tracking.checkpoint_name("other", "o2"),
                                                             since=tracking.checkpoint_name("other", "o1"))],
                                    guest.captures)[0]
    try:
        assert not tracking.is_full(later)
        src = tracking.open_source(later, "vdb")
        try:
            assert extents_of([33]) == [e for e in src.extents() if e.offset == 33 * BLOCK]
        finally:
            src.close()
    finally:
        tracking.end_capture(later, sealed=True)
    assert guest.checkpoints() == [tracking.checkpoint_name("app", "p4b"), tracking.checkpoint_name("other", "o2")]
    with pytest.raises(ReplicationError, match="not a vmferry checkpoint name"):
        tracking.app_prefix("virtnbdbackup.0")


def test_missing_checkpoint_means_full_resync(guest, tmp_path):
    lost = tracking.checkpoint_name("app", "gone")
    s = guest.capture("p5", since=lost)
    try:
        assert tracking.is_full(s)
        reason = tracking.resync_reason(s)
        assert lost in reason and "missing" in reason
        finding = tracking.resync_finding(s.vm, reason)
        assert finding.rule == "VMF-DR-010" and finding.severity == "warning" and DOMAIN in finding.message
        target = layer(tmp_path / "p5-vdb.qcow2", DATA_SIZE)
        src = tracking.open_source(s, "vdb")
        try:
            assert src.full and src.resync_reason == reason
            copy.copy_extents(src, nbd.serve_image(target, "qcow2"))
        finally:
            src.close()
        assert same_as_export(s, "vdb", target)
    finally:
        tracking.end_capture(s, sealed=True)


def test_broken_checkpoint_means_full_resync(guest):
    """libvirt still lists the checkpoint but QEMU lost its bitmap: the incremental backup is refused."""
    import json

    import libvirt_qemu

    base = guest.capture("p6")
    tracking.end_capture(base, sealed=True)
    name = tracking.checkpoint_of(base)
    with connect(guest.daemon.uri) as conn:
        dom = conn.domain(DOMAIN)
        nodes = json.loads(libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-named-block-nodes"}', 0))
        removed = 0
        for node in nodes["return"]:
            for bitmap in node.get("dirty-bitmaps", []):
                if bitmap["name"] == name:
                    cmd = {"execute": "block-dirty-bitmap-remove",
                           "arguments": {"node": node["node-name"], "name": name}}
                    libvirt_qemu.qemuMonitorCommand(dom, json.dumps(cmd), 0)
                    removed += 1
        assert removed >= 1
    s = guest.capture("p7", since=name)
    try:
        assert tracking.is_full(s)
        assert "refused" in tracking.resync_reason(s) and name in tracking.resync_reason(s)
    finally:
        tracking.end_capture(s, sealed=True)
    assert [c for c in guest.checkpoints() if c.startswith("vmferry-app.")] == [tracking.checkpoint_name("app", "p7")]


def test_captures_are_all_or_nothing(guest, tmp_path):
    """Two VMs, the second cannot be captured (defined, not running): the first one's backup job and
    new checkpoint are undone, nothing is left in the capture directory."""
    other = "vmferry-repl-off"
    disk = sg.new_disk(guest.workdir / "off.qcow2", 16 * MIB, (guest.daemon.uid, guest.daemon.gid))
    before = guest.checkpoints()
    with connect(guest.daemon.uri) as conn:
        conn.define(sg.domain_xml(other, [(disk, "vda")], guest.workdir / "off.sock", agent=False))
    try:
        reqs = [tracking.CaptureRequest(guest.daemon.uri, DOMAIN, tracking.checkpoint_name("app", "px"),
                                        since=before[0]),
                tracking.CaptureRequest(guest.daemon.uri, other, tracking.checkpoint_name("app", "px"))]
        with pytest.raises(ReplicationError, match=f"domain {other}: backup could not start"):
            tracking.begin_captures(reqs, guest.captures)
        assert guest.checkpoints() == before
        assert list(guest.captures.iterdir()) == []
        with connect(guest.daemon.uri) as conn:
            assert tracking._running_backup(conn.domain(DOMAIN)) is None
    finally:
        with connect(guest.daemon.uri) as conn:
            conn.undefine(other)


def test_without_an_answering_agent_the_point_is_crash_consistent(guest):
    """(last: it stops the guest's agent) The channel is there but nobody answers in the guest."""
    assert guest.console.run("busybox killall qemu-ga") == 0
    s = guest.capture("p8", since=tracking.checkpoint_name("app", "p7"))
    try:
        assert s.consistency == "crash"
        reason = tracking._state(s)["quiesce_reason"]
        assert "agent" in reason and tracking._state(s)["frozen_filesystems"] == 0
        assert not tracking.is_full(s)     # quiescing has nothing to do with change tracking
    finally:
        tracking.end_capture(s, sealed=True)
    # the guest was not left frozen: it still writes
    guest.write([1000])
