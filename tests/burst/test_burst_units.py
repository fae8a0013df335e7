"""Burst without VMs: the manifest's policy, the policy's decisions, the address pool, the record and the
command's refusals (one line, exit 2, nothing written). HAProxy's runtime API pieces run against a real
HAProxy (tests/burst/servers.py)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.burst.servers import HAProxy, Primary
from tests.conftest import run_vmferry
from vmferry.burst import policy, register, store
from vmferry.burst.model import BurstCopy, BurstRecord, Decision
from vmferry.burst.status import burst_status, render
from vmferry.burst.target import free_address, make_target
from vmferry.errors import BurstError, PlanError
from vmferry.plans.manifest import load_app
from vmferry.plans.model import BurstPolicy
from vmferry.recovery.model import Probe, RecoveryVm, VmDisk, VmNic

POLICY = {"metric": "rate", "up": 10, "down": 2, "max": 3}


def _doc(burst=None, pool="10.78.0.50-10.78.0.52", runtime="unix:/nonexistent.sock", **site):
    web = {"source": {"domain": "web"}, "nics": [{"network": "lan", "address": "10.66.0.13/24"}]}
    if burst is not None:
        web["burst"] = burst
    net = {"subnet": "10.78.0.0/24", "gateway": "10.78.0.1", **({"pool": pool} if pool else {})}
    return {"name": "shop", "zone": "shop.example.test", "components": {"web": web},
            "load_balancer": {"pools": [{"name": "web", "port": 80, "members": ["web"]}]},
            "sites": {"cloud": {"platform": "libvirt",
                                "libvirt": {"uri": "test:///default", "storage": "store",
                                            "networks": {"cloud-lan": "cloud-net"}},
                                "networks": {"cloud-lan": net}, "in_use": ["10.78.0.50"],
                                "load_balancer": {"runtime": runtime}, **site}}}


def _load(tmp_path, doc):
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(doc))
    (tmp_path / "store").mkdir(exist_ok=True)
    return load_app(path)


def _vm() -> RecoveryVm:
    return RecoveryVm("web", "web", "<domain/>", (VmDisk("vda", "/x.qcow2"),), (VmNic(0, "cloud-lan", None),),
                      probes=(Probe("http", 80),))


def test_policy_is_read_from_the_manifest(tmp_path):
    app = _load(tmp_path, _doc({**POLICY, "min": 1, "step": 2, "cooldown": 30, "instance_dns": True}))
    assert app.components["web"].burst == BurstPolicy("rate", 10.0, 2.0, 3, 1, 2, 30.0, None, 60.0, True)
    assert _load(tmp_path, _doc()).components["web"].burst is None


@pytest.mark.parametrize(("change", "message"), [
    ({"metric": "cpu"}, "components.web.burst.metric: must be one of sessions, queue, rate"),
    ({"down": 10}, "components.web.burst.down: must be below up"),
    ({"min": 4}, "components.web.burst.min: must not exceed max"),
    ({"max": 0}, "components.web.burst.max: must be an integer 1..64"),
    ({"step": True}, "components.web.burst.step"),
    ({"cooldown": -1}, "components.web.burst.cooldown: must be a number"),
    ({"extra": 1}, "components.web.burst: unknown key 'extra'"),
    ({"up": None}, "components.web.burst.up"),
])
def test_bad_policies_are_refused_with_the_key_path(tmp_path, change, message):
    with pytest.raises(PlanError, match=message.replace(".", r"\.")):
        _load(tmp_path, _doc({**POLICY, **change}))


def test_decisions():
    p = BurstPolicy("rate", up=10, down=2, max=3, min=1, step=2, cooldown=30)
    assert policy.decide(p, 0, 0, 999)[:2] == ("add", 1)             # below min
    assert policy.decide(p, 11, 1, 0)[:2] == ("add", 2)              # step
    assert policy.decide(p, 11, 2, 0)[:2] == ("add", 1)              # never beyond max
    assert policy.decide(p, 50, 3, 0)[:2] == ("hold", 0)
    assert policy.decide(p, 1, 3, 10)[:2] == ("hold", 0)             # cooldown not over
    assert policy.decide(p, 1, 3, 31)[:2] == ("remove", 2)
    assert policy.decide(p, 1, 2, 31)[:2] == ("remove", 1)           # never below min
    assert policy.decide(p, 1, 1, 31)[:2] == ("hold", 0)
    assert policy.decide(p, 5, 2, 99)[:2] == ("hold", 0)             # inside the band


def test_addresses_come_from_the_pool_and_run_out(tmp_path):
    app = _load(tmp_path, _doc(POLICY))
    t = make_target(app, "web", "cloud", _vm(), "P", uri="test:///default", storage=str(tmp_path / "store"))
    assert t.network == "cloud-net" and t.backend == "web"
    assert free_address(t, set()) == "10.78.0.51"                     # .50 is in use at the site
    assert free_address(t, {"10.78.0.51"}) == "10.78.0.52"
    with pytest.raises(BurstError, match="10.78.0.50-10.78.0.52 is exhausted"):
        free_address(t, {"10.78.0.51", "10.78.0.52"})


@pytest.mark.parametrize(("doc", "message"), [
    (_doc(POLICY, pool=None), "network 'cloud-lan' has no address pool"),
    (_doc(POLICY, runtime=None), "no load balancer runtime API"),
    (_doc({**POLICY, "pool": "api"}), "names pool 'api'"),
])
def test_targets_without_what_copies_need_are_refused(tmp_path, doc, message):
    app = _load(tmp_path, doc)
    with pytest.raises(BurstError, match=message):
        make_target(app, "web", "cloud", _vm(), "P", uri="test:///default", storage=str(tmp_path / "store"))


def test_record_round_trip_status_and_damage(tmp_path):
    record = BurstRecord("shop", "web", "cloud")
    record.copies.append(BurstCopy("shop-web-b1", 1, "web-b1", "ab" * 16, "52:54:00:00:00:01", "10.78.0.51", 24,
                                   "cloud-net", "/s/shop.burst/shop-web-b1", state="serving"))
    record.decisions.append(Decision("2026-12-01T05:00:00", "rate", 12.5, 1, 0, "add", 1, "rate 12.5 > up 10"))
    store.save(tmp_path, record)
    again = store.load(tmp_path, "shop", "web", "cloud")
    assert again.to_dict() == record.to_dict()
    with pytest.raises(BurstError, match="has copies at site 'cloud'"):
        store.load(tmp_path, "shop", "web", "dc2")
    (doc,) = burst_status(tmp_path)
    assert doc["copies"][0]["address"] == "10.78.0.51" and doc["decisions"][0]["value"] == 12.5
    assert "add 1: rate=12.5 over 1 server(s)" in "\n".join(render([doc]))
    path = store.burst_dir(tmp_path) / "shop.web.json"
    path.write_text(json.dumps({"app": "shop", "component": "web", "site": "cloud", "copies": [{"bogus": 1}]}))
    with pytest.raises(BurstError, match="the burst record is damaged"):
        store.load(tmp_path, "shop", "web", "cloud")


def _haproxy_target(tmp_path, haproxy, second):
    """The burst target of the test application on ``haproxy``'s runtime API (libvirt: test:///default);
    a copy's "address" is 127.0.0.1, so the pool's port is the ``second`` server's."""
    app = _load(tmp_path, _doc(POLICY, runtime=f"unix:{haproxy.socket}"))
    t = make_target(app, "web", "cloud", _vm(), "P", uri="test:///default", storage=str(tmp_path / "store"))
    pool = t.pool.__class__(t.pool.name, second.port, t.pool.members, t.pool.health)
    return t.__class__(**{**t.__dict__, "pool": pool})


def test_runtime_api_join_drain_leave_on_a_real_haproxy(tmp_path):
    primary, second = Primary(), Primary()
    haproxy = HAProxy(tmp_path / "haproxy", primary.port).start()
    try:
        t = _haproxy_target(tmp_path, haproxy, second)
        copy = BurstCopy("shop-web-b1", 1, "web-b1", "ab" * 16, "52:54:00:00:00:01", "127.0.0.1", 24, "n", "/x")
        register.join_pool(t, copy)
        assert haproxy.servers() == ["primary", "shop-web-b1"]
        register.join_pool(t, copy)                                   # again: nothing added twice
        assert haproxy.servers() == ["primary", "shop-web-b1"]
        value, servers = policy.read_metric(t, "sessions")
        assert servers == 2 and value == 0
        assert register.drain(t, copy)
        assert register.server_states(register.api(t), "web")["shop-web-b1"]["srv_admin_state"] == "8"  # drain
        assert register.current_sessions(t, ["shop-web-b1"]) == {"shop-web-b1": 0}
        assert register.leave_pool(t, copy, forced=False)
        assert haproxy.servers() == ["primary"]
        assert not register.leave_pool(t, copy, forced=False) and not register.drain(t, copy)
    finally:
        haproxy.close()
        primary.close()
        second.close()


@pytest.mark.parametrize(("args", "message"), [
    (["--add", "0"], "--add must be at least 1, not 0"),
    (["--watch"], "--watch needs a bound"),
    (["--add", "1", "--for", "5"], "--for and --rounds go with --watch"),
    (["--watch", "--for", "-1"], "--for must be positive"),
])
def test_command_refuses_bad_input(tmp_path, args, message):
    res = run_vmferry("burst", "shop", "--component", "web", *args, env={"VMFERRY_STATE": str(tmp_path)})
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_command_names_an_unprotected_application(tmp_path):
    res = run_vmferry("burst", "shop", "--component", "web", "--add", "1", env={"VMFERRY_STATE": str(tmp_path)})
    assert res.returncode == 2 and "shop" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "burst").exists()


def test_copies_a_killed_run_left_are_removed_by_the_next_run(tmp_path):
    """A run killed after it recorded a copy and made its run directory, its domain and its HAProxy server:
    the next run on the component removes all of it before anything else (the record is the journal)."""
    from vmferry.burst import scale
    from vmferry.tools import libvirt as lv

    primary, second = Primary(), Primary()
    haproxy = HAProxy(tmp_path / "haproxy", primary.port).start()
    try:
        t = _haproxy_target(tmp_path, haproxy, second)
        rundir = scale.burst_root(t) / "shop-web-b1"
        copy = BurstCopy("shop-web-b1", 1, "web-b1", "ab" * 16, "52:54:00:00:00:01", "127.0.0.1", 24, "n",
                         str(rundir), overlays=[str(rundir / "vda.qcow2")], server="web/shop-web-b1")
        record = BurstRecord("shop", "web", "cloud", [copy], next_index=2)
        store.save(tmp_path / "state", record)
        rundir.mkdir(parents=True)
        (rundir / "vda.qcow2").write_bytes(b"overlay")
        register.join_pool(t, copy)
        with lv.connect("test:///default") as conn:
            conn.define("<domain type='test'><name>shop-web-b1</name><memory>1024</memory>"
                        "<os><type>hvm</type></os></domain>")
            assert "shop-web-b1" in conn.names()
            said = []
            assert scale.remove_copies(t, tmp_path / "state", count=None, say=said.append) == []
            assert "shop-web-b1" not in conn.names()
        assert said[0] == "removing shop-web-b1, left launching by an earlier run"
        assert haproxy.servers() == ["primary"]
        assert not scale.burst_root(t).exists()
        assert store.load(tmp_path / "state", "shop", "web", "cloud").copies == []
    finally:
        haproxy.close()
        primary.close()
        second.close()


def test_a_round_without_its_metric_holds_and_says_why(tmp_path):
    app = _load(tmp_path, _doc(POLICY, runtime=f"unix:{tmp_path}/no-haproxy.sock"))
    t = make_target(app, "web", "cloud", _vm(), "P", uri="test:///default", storage=str(tmp_path / "store"))
    d = policy.watch_round(t, tmp_path / "state")
    assert (d.action, d.value, d.servers) == ("hold", None, 0)
    assert d.reason.startswith("metric not read: cannot reach HAProxy runtime API")
    assert store.load(tmp_path / "state", "shop", "web", "cloud").decisions == [d]


def test_a_copy_gets_its_own_environment_and_mac(tmp_path):
    from lxml import etree

    from tests.recovery import replicas
    from vmferry.burst import scale

    app = _load(tmp_path, _doc(POLICY))
    vm = RecoveryVm("web", "web", replicas.replica_domain("web"), (VmDisk("vda", "/x.qcow2"),),
                    (VmNic(0, "cloud-lan", None),),
                    env=(("vmferry.net.0.mac", "52:54:00:77:00:01"), ("vmferry.net.0.address", "10.78.0.13/24"),
                         ("vmferry.net.0.dns", "10.78.0.2"), ("vmferry.hostname", "web")))
    t = make_target(app, "web", "cloud", vm, "P", uri="test:///default", storage=str(tmp_path / "store"))
    copy = BurstCopy("shop-web-b1", 1, "web-b1", "ab" * 16, "52:54:00:12:34:56", "10.78.0.51", 24, "cloud-net",
                     str(tmp_path / "run"))
    assert scale._env(t, copy) == {"vmferry.net.0.address": "10.78.0.51/24", "vmferry.net.0.gateway": "10.78.0.1",
                                   "vmferry.net.0.dns": "10.78.0.2", "vmferry.hostname": "web-b1"}
    root = etree.fromstring(scale.copy_domain_xml(t, copy, {"vda": "/run/vda.qcow2"}, "/run/env.iso").encode())
    assert root.findtext("name") == "shop-web-b1"
    (nic,) = root.findall("devices/interface")
    assert nic.find("mac").get("address") == "52:54:00:12:34:56" and nic.find("source").get("network") == "cloud-net"
    assert [d.find("source").get("file") for d in root.findall("devices/disk")] == ["/run/vda.qcow2", "/run/env.iso"]
