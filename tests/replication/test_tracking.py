"""Change tracking's checks that need no running guest (libvirt's test driver, files)."""

from __future__ import annotations

import json

import pytest

from tests.replication import sourceguest as sg
from vmferry.errors import ReplicationError
from vmferry.replication import tracking
from vmferry.replication.model import VmSession
from vmferry.tools.libvirt import connect


def test_only_qcow2_disks_can_be_tracked(tmp_path):
    xml = sg.domain_xml("vmferry-raw", [(tmp_path / "x.img", "vda")], tmp_path / "c.sock", agent=False)
    with connect("test:///default") as conn:
        conn.define(xml.replace("<domain type='qemu'>", "<domain type='test'>"))
        assert tracking.tracked_disks(conn.domain("vmferry-raw")) == ["vda"]
        conn.undefine("vmferry-raw")
        conn.define(xml.replace("<domain type='qemu'>", "<domain type='test'>").replace("type='qcow2'", "type='raw'"))
        with pytest.raises(ReplicationError, match="disk vda is raw, not qcow2"):
            tracking.tracked_disks(conn.domain("vmferry-raw"))


def test_a_capture_directory_too_deep_for_a_socket_is_refused(tmp_path):
    xml = sg.domain_xml("vmferry-deep", [(tmp_path / "x.qcow2", "vda")], tmp_path / "c.sock", agent=False)
    deep = tmp_path / ("d" * 100)
    with connect("test:///default") as conn:
        conn.define(xml.replace("<domain type='qemu'>", "<domain type='test'>"))
        req = tracking.CaptureRequest("test:///default", "vmferry-deep", tracking.checkpoint_name("a", "p"))
        with pytest.raises(ReplicationError, match="too deep for a Unix socket path"):
            tracking.begin_captures([req], deep, quiesce_guests=False)
        conn.undefine("vmferry-deep")
    assert list(deep.iterdir()) == []   # nothing left behind


def test_the_vms_of_one_point_never_share_a_capture_directory(tmp_path):
    """The VMs of a point share the checkpoint's name; each gets its own directory (export socket), and a
    directory holding another domain's capture is refused, its socket left alone (before, the second VM's
    backup job replaced the first one's socket: a planned failover's final point missed the db's data)."""
    ck = tracking.checkpoint_name("shop", "20261201T103600Z-2")
    reqs = [tracking.CaptureRequest("test:///default", f"vmferry-{c}", ck) for c in ("db", "app", "web")]
    assert len({tracking.capture_dir(tmp_path, r) for r in reqs}) == 3
    assert tracking.capture_dir(tmp_path, reqs[0]) != tracking.capture_dir(
        tmp_path, tracking.CaptureRequest("qemu:///other", "vmferry-db", ck))
    xml = sg.domain_xml("vmferry-db", [(tmp_path / "x.qcow2", "vda")], tmp_path / "c.sock", agent=False)
    taken = tracking.capture_dir(tmp_path, reqs[0])
    taken.mkdir()
    (taken / "nbd.sock").write_text("another job's export")
    (taken / "state.json").write_text(json.dumps({"uri": "test:///default", "domain": "vmferry-web"}))
    with connect("test:///default") as conn:
        conn.define(xml.replace("<domain type='qemu'>", "<domain type='test'>"))
        try:
            with pytest.raises(ReplicationError, match="holds the capture of domain 'vmferry-web'"):
                tracking.begin_captures([reqs[0]], tmp_path, quiesce_guests=False)
        finally:
            conn.undefine("vmferry-db")
    assert (taken / "nbd.sock").read_text() == "another job's export"


def test_checkpoint_names_are_what_libvirt_accepts():
    assert tracking.checkpoint_name("shop/web app", "20261201T020000Z-3") == "vmferry-shop_web_app.20261201T020000Z-3"


def test_sessions_that_are_not_captures_are_refused(tmp_path):
    with pytest.raises(ReplicationError, match="not a capture of a running domain"):
        tracking.open_source(VmSession("vm1", "package", "crash", "{}"), "vda")
    gone = {"uri": "test:///default", "domain": "d", "checkpoint": "vmferry-a.p", "socket": str(tmp_path / "s"),
            "disks": {"vda": 1 << 20}, "since": None}
    session = VmSession("vm1", "domain", "crash", json.dumps(gone))
    with pytest.raises(ReplicationError, match="has no captured disk 'vdb'"):
        tracking.open_source(session, "vdb")
    with pytest.raises(ReplicationError, match="backup export of checkpoint vmferry-a.p is gone"):
        tracking.open_source(session, "vda")


def test_resync_finding():
    f = tracking.resync_finding("web1", "checkpoint vmferry-a.p of domain web1 is missing")
    assert (f.rule, f.severity, f.location) == ("VMF-DR-010", "warning", "web1")
    assert "whole disk was copied again" in f.message and "missing" in f.message
