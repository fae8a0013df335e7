"""The parts of a test recovery on real files, a real HTTP server on 127.0.0.1 and libvirt's test driver:
the domain rewrite, isolated network definitions, the cleanup journal, the proofs, the report, the CLI."""

from __future__ import annotations

import fcntl
import http.server
import json
import socket
import threading

import pytest
from lxml import etree

from tests.conftest import run_vmferry
from vmferry.errors import RecoveryError
from vmferry.recovery import journal as jr
from vmferry.recovery.domain import AGENT_CHANNEL, isolated_domain_xml
from vmferry.recovery.model import Probe
from vmferry.recovery.proofs import CheckResult, Proving, console_tail, http_attempt, prove, tcp_attempt
from vmferry.recovery.report import GroupResult, RecoveryReport, VmResult, render_html, render_text
from vmferry.sites import libvirt_net
from vmferry.targets.libvirt_xml import DiskPlan, DomainPlan, NicPlan, domain_xml
from vmferry.tools import libvirt as lv


def _replica_xml(nics: int = 2) -> str:
    return domain_xml(DomainPlan(name="web", domain_type="kvm", machine="q35", vcpus=1, sockets=1, cores=1,
                                 memory_mib=256,
                                 disks=[DiskPlan("/replica/web.vda.qcow2", "qcow2", "virtio", boot_order=1),
                                        DiskPlan("/replica/web.vdb.qcow2", "qcow2", "virtio"),
                                        DiskPlan("/replica/env.iso", "raw", "sata", device="cdrom", readonly=True)],
                                 nics=[NicPlan("front", "virtio", f"52:54:00:00:00:0{i}") for i in range(nics)],
                                 console_log="/replica/console.log"))


def test_domain_rewrite_keeps_the_guest_and_changes_only_what_a_test_must():
    xml = isolated_domain_xml(_replica_xml(), name="vmferry-test-web-r1", what="web",
                          overlays={"vda": "/run/r1/web.vda.qcow2", "vdb": "/run/r1/web.vdb.qcow2"},
                          networks=["iso-a", "iso-b"], console_log="/run/r1/web.log", env_iso="/run/r1/web.iso",
                          agent_socket="/run/r1/web.agent")
    root = etree.fromstring(xml.encode())
    assert root.findtext("name") == "vmferry-test-web-r1" and root.find("uuid") is None
    assert root.find("os/type").get("machine") == "q35" and root.findtext("memory") == "256"
    disks = root.findall("devices/disk[@device='disk']")
    assert [d.find("source").get("file") for d in disks] == ["/run/r1/web.vda.qcow2", "/run/r1/web.vdb.qcow2"]
    assert all(d.find("driver").get("type") == "qcow2" for d in disks)
    assert disks[0].find("boot").get("order") == "1"
    cds = root.findall("devices/disk[@device='cdrom']")
    assert len(cds) == 1 and cds[0].find("source").get("file") == "/run/r1/web.iso"
    assert cds[0].find("target").get("bus") == "sata" and cds[0].find("readonly") is not None
    nics = root.findall("devices/interface")
    assert [(n.get("type"), n.find("source").get("network"), n.find("mac").get("address")) for n in nics] == [
        ("network", "iso-a", "52:54:00:00:00:00"), ("network", "iso-b", "52:54:00:00:00:01")]
    serials = root.findall("devices/serial")
    assert len(serials) == 1 and serials[0].get("type") == "file"
    assert serials[0].find("source").get("path") == "/run/r1/web.log"
    assert root.find("devices/graphics") is None and root.find("devices/console") is None
    ch = root.findall("devices/channel")
    assert len(ch) == 1 and ch[0].find("target").get("name") == AGENT_CHANNEL
    assert ch[0].find("source").get("path") == "/run/r1/web.agent"
    assert "/replica/" not in xml


def test_domain_rewrite_refuses_what_does_not_match_the_point():
    base = dict(name="n", networks=["a", "b"], console_log="/l", env_iso=None, what="web")
    with pytest.raises(RecoveryError, match="disk vdb of the domain has no replica"):
        isolated_domain_xml(_replica_xml(), overlays={"vda": "/o"}, **base)
    with pytest.raises(RecoveryError, match="has disk vdc, the domain definition does not"):
        isolated_domain_xml(_replica_xml(), overlays={"vda": "/o", "vdb": "/p", "vdc": "/q"}, **base)
    with pytest.raises(RecoveryError, match="2 NICs, the plan places 1"):
        isolated_domain_xml(_replica_xml(), overlays={"vda": "/o", "vdb": "/p"}, **{**base, "networks": ["a"]})
    with pytest.raises(RecoveryError, match="not well-formed"):
        isolated_domain_xml("<domain>", overlays={}, **base)


def test_isolated_network_definition():
    net = libvirt_net.plan_network("shop", "20261201T020000Z-a1b2c3", 3, "back", "10.2.0.0/24", "10.2.0.1",
                                   {"10.2.0.5"})
    assert net.bridge == "vmfta1b2c3n3" and len(net.bridge) <= 15
    assert net.host_address == "10.2.0.1" and net.prefix == 24
    root = etree.fromstring(libvirt_net.network_xml(net).encode())
    assert root.find("forward") is None and root.find("ip").get("address") == "10.2.0.1"
    assert root.find("dns").get("enable") == "no" and root.find("ip/dhcp") is None
    assert libvirt_net.isolation_problems(libvirt_net.network_xml(net)) == []
    free = libvirt_net.plan_network("shop", "r-000001", 0, "back", "10.2.0.0/29", None, {"10.2.0.1", "10.2.0.2"})
    assert free.host_address == "10.2.0.3"
    with pytest.raises(RecoveryError, match="outside"):
        libvirt_net.plan_network("shop", "r", 0, "back", "10.2.0.0/24", "10.3.0.1", set())
    with pytest.raises(RecoveryError, match="also a guest's address"):
        libvirt_net.plan_network("shop", "r", 0, "back", "10.2.0.0/24", "10.2.0.5", {"10.2.0.5"})
    nat = "<network><name>x</name><forward mode='nat'/><route address='10.9.0.0' prefix='16' gateway='10.2.0.9'/></network>"
    assert len(libvirt_net.isolation_problems(nat)) == 2
    assert "forwards traffic" in libvirt_net.isolation_problems("<network><name>x</name><forward/></network>")[0]


def test_journal_cleans_in_reverse_and_leaves_live_runs_alone(tmp_path):
    state = tmp_path / "state"
    run = tmp_path / "run"
    j = jr.Journal.create(state, "r1")
    j.record("dir", path=str(run))
    run.mkdir()
    (run / "a.qcow2").write_bytes(b"x")
    j.record("file", path=str(run / "a.qcow2"))
    j.record("file", path=str(tmp_path / "never-made.iso"))
    assert jr.cleanup_pending(state).removed == []          # r1 is alive (holds its lock)
    assert run.exists()
    result = j.clean()
    assert result.removed == [f"file {run / 'a.qcow2'}", f"dir {run}"] and result.clean
    assert not run.exists() and not j.path.exists()


def test_journal_of_a_dead_run_is_cleaned_with_its_libvirt_objects(tmp_path):
    state = tmp_path / "state"
    d = jr.journal_dir(state)
    d.mkdir(parents=True)
    leftover = tmp_path / "leftover"
    leftover.mkdir()
    with lv.connect("test:///default") as conn:             # test:///default is shared within the process
        conn.define_network("<network><name>vmferry-test-j</name><bridge name='vmftj0'/></network>")
        conn.define(domain_xml(DomainPlan(name="vmferry-test-j", domain_type="test", machine="pc", vcpus=1,
                                          sockets=1, cores=1, memory_mib=64)))
        conn.start("vmferry-test-j")
        lines = [{"kind": "dir", "path": str(leftover)},
                 {"kind": "network", "uri": "test:///default", "name": "vmferry-test-j"},
                 {"kind": "domain", "uri": "test:///default", "name": "vmferry-test-j"}]
        (d / "dead.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"kind": "fi')
        result = jr.cleanup_pending(state)
        assert result.removed == ["domain vmferry-test-j", "network vmferry-test-j", f"dir {leftover}"]
        assert "vmferry-test-j" not in conn.names() and "vmferry-test-j" not in conn.networks()
    assert not leftover.exists() and not list(d.iterdir())


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        code = 200 if self.path == "/" else 503
        body = b"vmferry test service web <b>"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_health_checks_against_a_real_server(http_port):
    assert tcp_attempt("127.0.0.1", http_port)[0]
    assert not tcp_attempt("127.0.0.1", _closed_port())[0]
    assert http_attempt("127.0.0.1", http_port, "/")[0]
    ok, detail = http_attempt("127.0.0.1", http_port, "/health")
    assert not ok and ": 503" in detail
    assert http_attempt("127.0.0.1", http_port, "/health", status=503)[0]
    assert http_attempt("127.0.0.1", http_port, "/", contains="service web")[0]
    assert not http_attempt("127.0.0.1", http_port, "/", contains="service db")[0]


def test_prove_waits_for_checks_and_gives_up_on_a_stopped_domain(http_port):
    with lv.connect("test:///default") as conn:
        conn.define(domain_xml(DomainPlan(name="vmferry-prove", domain_type="test", machine="pc", vcpus=1,
                                          sockets=1, cores=1, memory_mib=64)))
        conn.start("vmferry-prove")
        conn.define(domain_xml(DomainPlan(name="vmferry-stopped", domain_type="test", machine="pc", vcpus=1,
                                          sockets=1, cores=1, memory_mib=64)))
        try:
            now = [0.0]
            up = Proving("web", "vmferry-prove", "127.0.0.1", (Probe("http", http_port, "/"),), False, 30, 0.0)
            down = Proving("db", "vmferry-stopped", "127.0.0.1", (Probe("tcp", http_port),), False, 30, 0.0)
            late = Proving("app", "vmferry-prove", "127.0.0.1", (Probe("tcp", _closed_port()),), False, 5, 0.0)

            def sleep(s):
                now[0] += s
            prove(conn, [up, down, late], clock=lambda: now[0], sleep=sleep)
            assert up.proven_at is not None and not up.failure
            assert "stopped before it proved itself" in down.failure
            assert late.proven_at is None and "not proved within 5 s" in late.failure and now[0] >= 5
            agent = Proving("x", "vmferry-prove", "127.0.0.1", (), True, 0, 0.0)
            prove(conn, [agent], clock=lambda: now[0], sleep=sleep)
            assert "agent:" in agent.failure                   # the test driver has no guest agent
        finally:
            conn.undefine("vmferry-prove")
            conn.undefine("vmferry-stopped")


def test_console_tail(tmp_path):
    log = tmp_path / "c.log"
    log.write_bytes(b"".join(b"line %d\r\n" % i for i in range(100)) + b"\xff last")
    tail = console_tail(log, 3)
    assert tail.splitlines() == ["line 98", "line 99", "\ufffd last"]
    assert console_tail(tmp_path / "none") == ""


def test_report_renders_text_json_and_a_self_contained_page():
    r = RecoveryReport(app="shop<1>", site="dr", point_id="P", point_taken_at="T", run_id="R", started_at="S",
                   finished_at="F", ok=False, error="boot group 1 (db) did not prove itself")
    r.groups.append(GroupResult(0, ["db"], 0.5, 2.0, 40.0))
    r.vms.append(VmResult("db", "db<script>", "d", 0, "10.0.0.1", 2.0, failure="stopped",
                          checks=[CheckResult("tcp 5432", False, "refused", 3.0)], console_tail="<b>panic</b>"))
    r.not_started = ["web"]
    text = render_text(r)
    assert "FAILED" in text and "| <b>panic</b>" in text and "not started: web" in text
    page = render_html(r)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;panic" in page
    assert "<link" not in page and "src=" not in page
    doc = json.loads(json.dumps(r.to_dict()))
    assert doc["groups"][0]["launch_seconds"] == 1.5 and doc["groups"][0]["boot_to_proof_seconds"] == 38.0
    assert doc["rto_seconds"] is None and doc["vms"][0]["group"] == 1


def test_cli_refuses_bad_input_with_one_line(tmp_path):
    env = {"VMFERRY_STATE": str(tmp_path / "state")}
    res = run_vmferry("recover", env=env)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "name the application" in res.stderr
    res = run_vmferry("recover", "shop", "--to", "dr", env=env)
    assert res.returncode == 2 and "only test recoveries" in res.stderr
    res = run_vmferry("recover", "shop", "--to", "dr", "--test", env=env)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "not protected" in res.stderr
    assert not (tmp_path / "state" / "recovery").exists()


def test_cli_cleanup_removes_what_a_dead_run_left(tmp_path):
    state = tmp_path / "state"
    d = jr.journal_dir(state)
    d.mkdir(parents=True)
    leftover = tmp_path / ".vmferry-test-x"
    leftover.mkdir()
    (leftover / "db.vda.qcow2").write_bytes(b"x")
    (d / "x.jsonl").write_text(json.dumps({"kind": "dir", "path": str(leftover)}) + "\n")
    res = run_vmferry("recover", "--cleanup", "--json", env={"VMFERRY_STATE": str(state)})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"removed": [f"dir {leftover}"], "left": [], "clean": True}
    assert not leftover.exists() and not list(d.iterdir())
    res = run_vmferry("recover", "--cleanup", env={"VMFERRY_STATE": str(state)})
    assert res.returncode == 0 and res.stdout == "nothing to clean\n"


def test_a_live_journal_is_locked():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        j = jr.Journal.create(tmp, "live")
        with open(j.path) as fh, pytest.raises(BlockingIOError):
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        j.clean()


def test_disk_targets_follow_the_launch_layer_then_the_target_then_the_position():
    from types import SimpleNamespace

    from vmferry.recovery.spec import disk_targets

    xml = ("<domain><devices>"
           "<disk device='disk'><source file='/r/vms/web/web.vmdisk2.launch.qcow2'/><target dev='vda'/></disk>"
           "<disk device='disk'><source file='/r/vms/web/web.vmdisk1.launch.qcow2'/><target dev='vdb'/></disk>"
           "<disk device='cdrom'><source file='/r/env.iso'/><target dev='sda'/></disk></devices></domain>")
    ref = lambda disk: SimpleNamespace(key=f"web.{disk}", disk=disk)  # noqa: E731
    vm = SimpleNamespace(vm="web", disks=(ref("vmdisk1"), ref("vmdisk2")))
    assert disk_targets(xml, vm) == {"web.vmdisk1": "vdb", "web.vmdisk2": "vda"}
    vm = SimpleNamespace(vm="db", disks=(ref("vdb"), ref("x")))
    assert disk_targets(xml, vm) == {"web.vdb": "vdb", "web.x": "vdb"}
    with pytest.raises(RecoveryError, match="2 disks, the point 1"):
        disk_targets(xml, SimpleNamespace(vm="web", disks=(ref("vmdisk1"),)))


def test_probes_come_from_declared_ports_and_pool_health_checks():
    from vmferry.plans.model import App, Component, HealthCheck, LbPool
    from vmferry.recovery.spec import probes_of

    app = App("shop", "app.yaml", None, {"web": Component("web", "w.ova", ports=(80, 443)),
                                         "db": Component("db", "d.ova", ports=(5432,))},
              pools=[LbPool("front", 80, ("web",), HealthCheck("http", "/health")),
                     LbPool("tls", 8443, ("web",), HealthCheck("tcp"))])
    assert [p.describe() for p in probes_of(app, "web")] == ["tcp 80", "tcp 443", "http 80/health", "tcp 8443"]
    assert [p.describe() for p in probes_of(app, "db")] == ["tcp 5432"]
