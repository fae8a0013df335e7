"""``vmferry burst`` through the command, over a protection group record (the ready image resolved by
``target_from_group`` as for a real protect) and a real HAProxy: the policy's control loop reads the pool's
metric and holds (no load), every decision is recorded with its metric and shown by ``vmferry status``;
refusals name the problem in one line (exit 2)."""

from __future__ import annotations

import json

import yaml

from tests.burst.group import write_group
from tests.burst.servers import HAProxy, Primary
from tests.conftest import run_vmferry


def _manifest(tmp_path, runtime: str):
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump({
        "name": "shop",
        "components": {"web": {"source": {"domain": "web"}, "nics": [{"network": "lan", "address": "10.66.0.13/24"}],
                               "burst": {"metric": "sessions", "up": 10, "down": 1, "max": 2, "cooldown": 0}}},
        "load_balancer": {"pools": [{"name": "web", "port": 80, "members": ["web"]}]},
        "sites": {
            "dc1": {"networks": {"lan": {"subnet": "10.66.0.0/24"}}},
            "cloud": {"platform": "libvirt",
                      "libvirt": {"uri": "test:///default", "storage": "store", "networks": {"cloud-lan": "cl"}},
                      "networks": {"cloud-lan": {"subnet": "10.78.0.0/24", "gateway": "10.78.0.1",
                                                 "pool": "10.78.0.50-10.78.0.59"}},
                      "load_balancer": {"runtime": runtime}}},
        "moves": [{"from": "dc1", "to": "cloud", "networks": {"lan": "cloud-lan"},
                   "readdress": [{"from": "10.66.0.0/24", "to": "10.78.0.0/24"}]}]}))
    (tmp_path / "store").mkdir()
    return path


def test_watch_holds_records_decisions_and_status_shows_them(tmp_path):
    primary = Primary()
    haproxy = HAProxy(tmp_path / "haproxy", primary.port).start()
    try:
        manifest = _manifest(tmp_path, f"unix:{haproxy.socket}")
        state = tmp_path / "state"
        write_group(state, manifest, tmp_path / "store", uri="test:///default")
        env = {"VMFERRY_STATE": str(state)}
        res = run_vmferry("burst", "shop", "--component", "web", "--watch", "--rounds", "2", "--interval", "0.1",
                          "--json", env=env)
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert doc["rounds"] == 2 and doc["added"] == [] and doc["removed"] == []
        assert [d["action"] for d in doc["decisions"]] == ["hold", "hold"]
        assert all(d["metric"] == "sessions" and d["value"] == 0 and d["servers"] == 1 for d in doc["decisions"])
        res = run_vmferry("status", "--json", env=env)
        (burst,) = json.loads(res.stdout)["burst"]
        assert (burst["app"], burst["component"], burst["site"], burst["copies"]) == ("shop", "web", "cloud", [])
        assert len(burst["decisions"]) == 2
        res = run_vmferry("status", env=env)
        assert "shop/web: 0 burst copie(s) at cloud" in res.stdout and "hold: sessions=0 over 1 server(s)" in res.stdout
        res = run_vmferry("burst", "shop", "--component", "web", "--all", env=env)
        assert res.returncode == 0 and res.stdout.strip() == "no copy to remove"
        res = run_vmferry("burst", "shop", "--component", "web", "--to", "dc1", "--add", "1", env=env)
        assert res.returncode == 2 and "the ready image of shop is at site 'cloud', not 'dc1'" in res.stderr
        res = run_vmferry("burst", "shop", "--component", "db", "--add", "1", env=env)
        assert res.returncode == 2 and "'db'" in res.stderr and len(res.stderr.strip().splitlines()) == 1
        assert haproxy.servers() == ["primary"]
    finally:
        haproxy.close()
        primary.close()
