"""``--test`` end to end on a real private libvirtd: three serving test guests (db, app, web) recovered
from a recovery point in an isolated libvirt network, proved in boot order, and everything removed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import etree

from tests.recovery import replicas, serviceguest
from vmferry.recovery.journal import cleanup_pending, journal_dir
from vmferry.recovery.model import AppCheck, Probe
from vmferry.recovery.report import render_html, render_text
from vmferry.recovery.test import file_digest, run_test
from vmferry.tools import libvirt as lv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]   # three TCG boots on a shared host
APP = "shop"


def _storage(daemon, name: str) -> Path:
    path = daemon.workdir / name
    path.mkdir()
    return daemon.own(path)


def _listing(storage: Path) -> list[str]:
    return sorted(str(p.relative_to(storage)) for p in storage.rglob("*"))


def _leftovers(daemon, storage: Path, before: list[str], state: Path) -> None:
    with lv.connect(daemon.uri) as conn:
        assert [n for n in conn.names() if n.startswith("vmferry-test-")] == []
        assert [n for n in conn.networks() if n.startswith("vmferry-test-")] == []
    assert _listing(storage) == before
    assert "vmft" not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not list(journal_dir(state).glob("*.jsonl"))


def _isolation_watch(daemon, seen: dict):
    """A ``say`` that, when the first VM starts, checks the isolated network from libvirt and the host's
    firewall: no <forward>, the host on the bridge, forwarding from and to the bridge rejected."""
    def say(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)
        if " proved itself in " in msg:
            _next_group_waits(daemon, msg.split()[0], seen)
        if "starting" not in msg or "forward" in seen:
            return
        with lv.connect(daemon.uri) as conn:
            names = [n for n in conn.networks() if n.startswith("vmferry-test-")]
            assert len(names) == 1
            root = etree.fromstring(conn.network_xml(names[0]).encode())
        bridge = root.find("bridge").get("name")
        seen["forward"] = root.find("forward")
        seen["ip"] = root.find("ip").get("address")
        rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
        seen["rejects_out"] = f"-A LIBVIRT_FWO -i {bridge} -j REJECT" in rules
        seen["rejects_in"] = f"-A LIBVIRT_FWI -o {bridge} -j REJECT" in rules
        seen["routes"] = subprocess.run(["ip", "route", "show", "dev", bridge], capture_output=True,
                                        text=True).stdout.strip()
    return say


NEXT = {"db": "app", "app": "web"}


def _next_group_waits(daemon, proved: str, seen: dict) -> None:
    """When ``proved`` proved itself: the next group's VM is already made ready beside it — its domain
    defined and started PAUSED — and has not run (its serial console is still empty)."""
    nxt = NEXT.get(proved)
    if nxt is None:
        return
    with lv.connect(daemon.uri) as conn:
        name = next(n for n in conn.names() if n.startswith(f"vmferry-test-{nxt}-"))
        seen[f"{nxt} state"] = conn.info(name).state
        log = etree.fromstring(conn.domain(name).XMLDesc(0).encode()).find("devices/serial/source").get("path")
    seen[f"{nxt} console bytes"] = os.path.getsize(log) if os.path.exists(log) else 0


def test_test_recovery_proves_each_vm_in_order_and_leaves_nothing(netlibvirtd, tmp_path):
    image = serviceguest.service_image()
    storage = _storage(netlibvirtd, "dr-proved")
    vms = [replicas.vm_spec(storage, APP, "db", image, 11, (Probe("tcp", 5432),), tcp="5432"),
           replicas.vm_spec(storage, APP, "app", image, 12, (Probe("http", 80, "/"),)),
           replicas.vm_spec(storage, APP, "web", image, 13, (Probe("http", 80, "/"), Probe("tcp", 80)))]
    check = AppCheck("shop front page", "http", "10.77.0.13", 80, "/", contains="vmferry test service web")
    plan = replicas.plan_for(APP, netlibvirtd.uri, storage, vms, [("web", "app"), ("app", "db")], (check,))
    assert plan.groups == (("db",), ("app",), ("web",))
    before = _listing(storage)
    digests = {p: file_digest(str(storage / p)) for p in before if p.endswith(".qcow2")}
    seen: dict = {}
    report = run_test(plan, tmp_path / "state", say=_isolation_watch(netlibvirtd, seen))
    doc = report.to_dict()
    assert report.ok, render_text(report)
    # isolated: no forwarding of any kind, the host at the gateway, the firewall rejecting both ways
    assert seen["forward"] is None and seen["ip"] == replicas.GATEWAY
    assert seen["rejects_out"] and seen["rejects_in"]
    assert seen["routes"].startswith("10.77.0.0/24 ") and "via" not in seen["routes"]
    # in order: each group started after the group before proved itself
    by_vm = {v["vm"]: v for v in doc["vms"]}
    assert by_vm["app"]["started"] >= by_vm["db"]["proved_at"]
    assert by_vm["web"]["started"] >= by_vm["app"]["proved_at"]
    # ... and was made ready beside the group before it: defined, QEMU started paused, not one guest byte yet
    assert seen["app state"] == seen["web state"] == "paused", seen
    assert seen["app console bytes"] == seen["web console bytes"] == 0, seen
    for v in doc["vms"]:
        assert v["proved"] and v["time_to_proof"] > 0
        assert any(c["what"] == "guest agent" and c["ok"] for c in v["checks"])
    assert {c["what"] for c in by_vm["db"]["checks"]} == {"guest agent", "tcp 5432"}
    assert doc["checks"][0]["ok"] and doc["checks"][0]["what"] == "shop front page"
    assert doc["rto_seconds"] >= by_vm["web"]["proved_at"]
    assert [g["components"] for g in doc["groups"]] == [["db"], ["app"], ["web"]]
    # nothing left behind, the replicas never written
    assert report.replicas_unchanged and report.replica_files == 6
    assert {p: file_digest(str(storage / p)) for p in digests} == digests
    assert report.cleanup.clean and any(r.startswith("network ") for r in report.cleanup.removed)
    _leftovers(netlibvirtd, storage, before, tmp_path / "state")
    page = render_html(report)
    assert "Measured RTO" in page and "<script" not in page and "http://" not in page.split("<body>")[0]
    json.dumps(doc)


def test_a_guest_that_never_comes_up_fails_the_run_with_its_console_and_leaves_nothing(netlibvirtd, tmp_path):
    storage = _storage(netlibvirtd, "dr-broken")
    vms = [replicas.vm_spec(storage, APP, "db", serviceguest.broken_image(), 11, (Probe("tcp", 5432),),
                            timeout=240),
           replicas.vm_spec(storage, APP, "web", serviceguest.service_image(), 13, (Probe("http", 80, "/"),))]
    plan = replicas.plan_for(APP, netlibvirtd.uri, storage, vms, [("web", "db")])
    before = _listing(storage)
    report = run_test(plan, tmp_path / "state", say=print)
    assert not report.ok and report.rto_seconds is None
    db = report.vms[0]
    assert db.vm == "db" and not db.proved and "stopped before it proved itself" in db.failure
    assert "VMFERRY-ROOT-MISSING" in db.console_tail            # the guest's own last words
    assert report.not_started == ["web"] and len(report.vms) == 1
    text = render_text(report)
    assert "FAILED" in text and "VMFERRY-ROOT-MISSING" in text and "not started: web" in text
    assert "VMFERRY-ROOT-MISSING" in render_html(report)
    assert report.replicas_unchanged and report.cleanup.clean
    _leftovers(netlibvirtd, storage, before, tmp_path / "state")


RUNNER = r"""
import pickle, sys
from vmferry.recovery.test import run_test
plan = pickle.load(open(sys.argv[1], "rb"))
run_test(plan, sys.argv[2], say=lambda m: print(m, flush=True))
"""


def test_a_run_killed_mid_way_is_cleaned_by_the_next(netlibvirtd, tmp_path):
    import pickle

    storage = _storage(netlibvirtd, "dr-killed")
    vms = [replicas.vm_spec(storage, APP, "db", serviceguest.service_image(), 11, (Probe("tcp", 5432),))]
    plan = replicas.plan_for(APP, netlibvirtd.uri, storage, vms, [])
    before = _listing(storage)
    (tmp_path / "plan.pickle").write_bytes(pickle.dumps(plan))
    state = tmp_path / "state"
    child = subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path / "plan.pickle"), str(state)],
                             stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        for line in child.stdout:
            if line.startswith("group 1: starting"):
                break
        with lv.connect(netlibvirtd.uri) as conn:       # wait until its domain really runs
            deadline = time.monotonic() + 120
            while not [n for n in conn.names() if n.startswith("vmferry-test-") and conn.info(n).active]:
                assert time.monotonic() < deadline and child.poll() is None
                time.sleep(0.2)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with lv.connect(netlibvirtd.uri) as conn:
        assert [n for n in conn.names() if n.startswith("vmferry-test-")]      # it did leave things
    assert len(list(journal_dir(state).glob("*.jsonl"))) == 1
    result = cleanup_pending(state)
    assert result.clean
    kinds = sorted({r.split()[0] for r in result.removed})
    assert kinds == ["dir", "domain", "file", "network"]      # overlay and ISO too, then their directory
    _leftovers(netlibvirtd, storage, before, state)
