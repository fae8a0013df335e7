"""The service from Python: expiry, watch history beyond the in-memory feed, etcd history replay."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from vmferry.locator import Eid, Heartbeat, Locator, LocatorService, NotFound, Site, SqliteStore
from vmferry.locator.auth import sign
from vmferry.locator.etcd import EtcdStore

from .conftest import EAST_SECRET, LocatorProcess

SITE = Site("east", "east-1", b"s" * 16, (Eid.parse("10.0.0.0/8"), Eid.parse("example.test")))


def test_registrations_expire_unless_refreshed(tmp_path):
    with LocatorService(SqliteStore(tmp_path / "db"), sweep_interval=0.2) as svc:
        svc.register(SITE, "gone.example.test", [Locator("192.0.2.1")], expires_in=2)
        svc.register(SITE, "kept.example.test", [Locator("192.0.2.2")], expires_in=2)
        start = svc.version
        time.sleep(0.3)
        svc.refresh(SITE, "kept.example.test", expires_in=30)
        deadline = time.monotonic() + 10
        while svc.resolve("gone.example.test").found and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not svc.resolve("gone.example.test").found
        assert svc.resolve("kept.example.test").found
        kinds = [(c.kind, c.eid.text) for c in _take(svc.watch(start, heartbeat=0.1))]
        assert kinds == [("refresh", "kept.example.test"), ("deregister", "gone.example.test")]
        with pytest.raises(NotFound):
            svc.refresh(SITE, "gone.example.test")


def _take(events):
    out = []
    for item in events:
        if isinstance(item, Heartbeat):
            return out
        out.append(item)
    return out


def test_watch_reads_history_older_than_the_feed_then_continues_live(tmp_path):
    with LocatorService(SqliteStore(tmp_path / "db"), feed_capacity=5) as svc:
        versions = [svc.register(SITE, f"10.1.{i}.0/24", [Locator("192.0.2.1")]).version for i in range(20)]
        assert svc.feed.base > versions[0]  # the early changes are only in the store now
        got = []
        stop = threading.Event()

        def follow():
            for item in svc.watch(versions[2], heartbeat=0.1, stop=stop):
                if not isinstance(item, Heartbeat):
                    got.append(item.version)

        t = threading.Thread(target=follow)
        t.start()
        time.sleep(0.2)
        versions.append(svc.register(SITE, "10.2.0.0/16", [Locator("192.0.2.9")]).version)
        time.sleep(0.3)
        stop.set()
        t.join(5)
        assert got == versions[3:]


def test_etcd_store_history_survives_a_service_restart(etcd_cluster):
    prefix = f"/svc-{time.monotonic_ns()}/"
    with LocatorService(EtcdStore(etcd_cluster.client_urls, prefix=prefix)) as svc:
        versions = [svc.register(SITE, f"n{i}.example.test", [Locator(f"192.0.2.{i + 1}")]).version
                    for i in range(6)]
        svc.deregister(SITE, "n0.example.test")
    # a new service (a restart, or another instance) knows the table and can replay the history
    with LocatorService(EtcdStore(etcd_cluster.client_urls[::-1], prefix=prefix)) as svc:
        assert sorted(m.eid.text for m in svc.mappings()) == [f"n{i}.example.test" for i in range(1, 6)]
        assert svc.resolve("n3.example.test").mapping.version == versions[3]
        replay = _take(svc.watch(versions[1], heartbeat=0.2))
        assert [(c.version, c.kind) for c in replay][:4] == [(v, "register") for v in versions[2:6]]
        assert replay[-1].kind == "deregister" and replay[-1].eid.text == "n0.example.test"
        later = svc.register(SITE, "n9.example.test", [Locator("192.0.2.99")]).version
        assert [c.version for c in _take(svc.watch(replay[-1].version, heartbeat=0.2))] == [later]


def test_services_sharing_etcd_refuse_each_others_replays(etcd_cluster, tmp_path):
    prefix = f"/shared-{time.monotonic_ns()}/"
    one = LocatorProcess(tmp_path / "one", etcd=etcd_cluster.client_urls, dns=False, etcd_prefix=prefix).start()
    two = LocatorProcess(tmp_path / "two", etcd=etcd_cluster.client_urls[::-1], dns=False,
                         etcd_prefix=prefix).start()
    try:
        body = json.dumps({"eid": "app.example.test", "locators": [{"address": "192.0.2.1"}]}).encode()
        headers = {**sign(EAST_SECRET.encode(), "POST", "/v1/register", "east-1", body),
                   "Content-Type": "application/json"}
        first = httpx.post(one.url + "/v1/register", content=body, headers=headers)
        assert first.status_code == 200
        replay = httpx.post(two.url + "/v1/register", content=body, headers=headers)
        assert replay.status_code == 401 and replay.json()["reason"] == "replayed"
        assert "reason=replayed" in (tmp_path / "two" / "serve.log").read_text()
        with two.client() as east:  # the second service sees the first one's write, unchanged
            assert east.resolve("app.example.test").mapping.version == first.json()["version"]
            assert east.register("app.example.test", [Locator("192.0.2.2")]).version > first.json()["version"]
    finally:
        one.kill()
        two.kill()
