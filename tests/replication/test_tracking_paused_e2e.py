"""The planned failover's final point on a real private libvirtd, without booting any guest: every source
domain stopped after writing (its disk file holds the write and QEMU stored the checkpoint's bitmap), then
started PAUSED (as ``recovery.source.final_sync`` does) and captured together under one checkpoint name.
Each VM's export must serve that VM's own disk, with that VM's write among its changed extents — when the
captures shared one NBD socket (one directory per checkpoint), every VM was read from the last one's
export and the db's last write was missing from the final point."""

from __future__ import annotations

import os

import pytest

from tests.guest import libvirtd as _libvirtd
from tests.replication import sourceguest as sg
from vmferry.replication import tracking
from vmferry.tools.libvirt import binding, connect
from vmferry.tools.proc import run

pytestmark = pytest.mark.slow

MIB = 1 << 20
BLOCK = 64 << 10
VMS = {"vmferry-fs-db": 0x11, "vmferry-fs-app": 0x22, "vmferry-fs-web": 0x33}


def qemu_write(disk, pattern: int, offset: int) -> None:
    """A write into the stopped domain's disk file (through QEMU's block layer: the checkpoints' persistent
    bitmaps record it, as they record what a guest wrote before its shutdown)."""
    run(["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} {offset} {BLOCK}", str(disk)])


def start_paused(uri: str) -> None:
    lib = binding()
    with connect(uri) as conn:
        for name in VMS:
            conn.domain(name).createWithFlags(lib.VIR_DOMAIN_START_PAUSED)


def stop_all(uri: str) -> None:
    with connect(uri) as conn:
        for name in VMS:
            dom = conn.domain(name)
            if dom.isActive():
                dom.destroy()


def capture(daemon, workdir, point: str, since: str | None):
    reqs = [tracking.CaptureRequest(daemon.uri, name, tracking.checkpoint_name("shop", point),
                                    since and tracking.checkpoint_name("shop", since)) for name in VMS]
    return tracking.begin_captures(reqs, workdir, quiesce_guests=False)


def changes(session) -> tuple[list[tuple[int, int]], dict[int, bytes]]:
    """The changed extents of the session's vda and the first 16 bytes of each changed block."""
    src = tracking.open_source(session, "vda")
    try:
        extents = [(e.offset, e.length) for e in src.extents()]
        heads = {off: src.read(off, 16) for off, length in extents for off in range(off, off + length, BLOCK)}
        return extents, heads
    finally:
        src.close()


def test_vms_stopped_then_started_paused_are_each_captured_from_their_own_disk():
    daemon, proc = _libvirtd.start()
    try:
        work = daemon.workdir
        captures = work / "cap"
        captures.mkdir()
        os.chown(captures, daemon.uid, daemon.gid)
        disks = {}
        with connect(daemon.uri) as conn:
            for name, pattern in VMS.items():
                disks[name] = sg.new_disk(work / f"{name}.qcow2", 8 * MIB, (daemon.uid, daemon.gid))
                qemu_write(disks[name], pattern, 0)
                conn.define(sg.domain_xml(name, [(disks[name], "vda")], work / f"{name}.sock", agent=False))
        # the first point: a full copy of each disk (its written block), from each VM's own export
        start_paused(daemon.uri)
        first = capture(daemon, captures, "p1", None)
        assert len({tracking._state(s)["socket"] for s in first}) == len(VMS)
        for session, pattern in zip(first, VMS.values(), strict=True):
            assert changes(session) == ([(0, BLOCK)], {0: bytes([pattern]) * 16}), session.vm
        for session in first:
            tracking.end_capture(session, sealed=True)
        stop_all(daemon.uri)
        # the source "guests" write and stop (the db's write just before the failover); the final point
        qemu_write(disks["vmferry-fs-db"], 0x44, 3 * MIB)
        qemu_write(disks["vmferry-fs-web"], 0x55, 5 * MIB)
        start_paused(daemon.uri)
        final = capture(daemon, captures, "p2", "p1")
        got = {s.vm: changes(s) for s in final}
        assert got == {"vmferry-fs-db": ([(3 * MIB, BLOCK)], {3 * MIB: b"\x44" * 16}),
                       "vmferry-fs-app": ([], {}),
                       "vmferry-fs-web": ([(5 * MIB, BLOCK)], {5 * MIB: b"\x55" * 16})}
        for session in final:
            tracking.end_capture(session, sealed=True)
        stop_all(daemon.uri)
    finally:
        _libvirtd.stop(proc, daemon.workdir.parent)
