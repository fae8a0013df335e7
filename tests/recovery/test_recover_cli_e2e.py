"""`vmferry recover APP --to dr --test` on what `vmferry protect` really made: the serving test guest
packed as a VMware-style OVA, protected dc1 -> dr on the privileged private libvirtd (converted,
repaired, first recovery point), then test-recovered through the CLI from its newest point: re-addressed
for dr (10.66.0.13 -> 10.77.0.13 by the move's rule), proved by its guest agent and the TCP check of its
declared port, reported (JSON and HTML), recorded as the VM's last test, and nothing left behind."""

from __future__ import annotations

import json
import os
import time

import pytest
import yaml

from tests.conftest import run_vmferry
from tests.recovery import serviceguest
from tests.replication.conftest import make_ova
from vmferry.tools import libvirt as lv
from vmferry.tools.proc import run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def test_recover_test_of_a_protected_application(netlibvirtd, tmp_path):
    work = netlibvirtd.workdir / f"cli-{os.getpid()}-{time.time_ns()}"   # the daemon is shared by the session
    work.mkdir()
    netlibvirtd.own(work)
    for site in ("dc1", "dr"):
        (work / site).mkdir()
        netlibvirtd.own(work / site)
    raw = tmp_path / "web.raw"
    run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", serviceguest.service_image(), raw])
    make_ova(raw, tmp_path, "web", ip="10.66.0.13")
    lib = {"uri": netlibvirtd.uri}
    manifest = tmp_path / "app.yaml"
    manifest.write_text(yaml.safe_dump({
        "name": "shop",
        "components": {"web": {"package": "web.ova", "nics": [{"address": "10.66.0.13/24"}], "ports": [80]}},
        "sites": {
            "dc1": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dc1"),
                                                       "networks": {"VM Network": "dc1-lan"}},
                    "networks": {"VM Network": {"subnet": "10.66.0.0/24", "gateway": "10.66.0.1"}}},
            "dr": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dr"),
                                                      "networks": {"VM Network": "dr-lan"}},
                   "networks": {"dr-app": {"subnet": "10.77.0.0/24", "gateway": "10.77.0.1"}}}},
        "moves": [{"from": "dc1", "to": "dr", "networks": {"VM Network": "dr-app"},
                   "readdress": [{"from": "10.66.0.0/24", "to": "10.77.0.0/24"}]}]}))
    env = {"VMFERRY_STATE": str(tmp_path / "state")}
    res = run_vmferry("protect", manifest, "--from", "dc1", "--to", "dr", "--domain-type", "qemu", "--json",
                      env=env, timeout=1800)
    assert res.returncode == 0, res.stderr
    before = sorted(str(p) for p in (work / "dr").rglob("*"))
    html = tmp_path / "report.html"
    res = run_vmferry("recover", "shop", "--to", "dr", "--test", "--json", "--html", html, env=env, timeout=1200)
    doc = json.loads(res.stdout)
    assert res.returncode == 0, json.dumps(doc)[:3000] + res.stderr
    assert doc["ok"] and doc["rto_seconds"] > 0
    (vm,) = doc["vms"]
    assert vm["component"] == "web" and vm["address"] == "10.77.0.13" and vm["proved"]
    assert {c["what"] for c in vm["checks"] if c["ok"]} == {"guest agent", "tcp 80"}
    assert doc["networks"][0]["subnet"] == "10.77.0.0/24" and doc["networks"][0]["host_address"] == "10.77.0.1"
    assert doc["replicas_unchanged"] and doc["cleanup"]["clean"]
    page = html.read_text()
    assert "Measured RTO" in page and "10.77.0.13" in page
    status = json.loads(run_vmferry("status", "shop", "--json", env=env).stdout)
    (svm,) = status["applications"][0]["vms"]
    assert svm["last_test"]["ok"] and svm["last_test"]["point_id"] == doc["point"]
    assert sorted(str(p) for p in (work / "dr").rglob("*")) == before
    with lv.connect(netlibvirtd.uri) as conn:
        assert not [n for n in conn.names() if n.startswith("vmferry-test-")]
        assert not [n for n in conn.networks() if n.startswith("vmferry-test-")]
    assert not os.listdir(tmp_path / "state" / "recovery" / "journal")
    res = run_vmferry("recover", "shop", "--to", "dr", "--test", "--point", "nope", env=env)
    assert res.returncode == 2 and "no recovery point nope" in res.stderr
    res = run_vmferry("recover", "shop", "--to", "dc1", "--test", env=env)
    assert res.returncode == 2 and "protected to site 'dr'" in res.stderr
    run_vmferry("unprotect", "shop", env=env)
