"""Durability: kill -9 during a burst keeps every acknowledged registration (SQLite and etcd);
an etcd member can stop and come back while the service keeps working."""

from __future__ import annotations

import base64
import signal
import threading
import time

import httpx
import pytest

from vmferry.errors import LocatorError
from vmferry.locator.model import Locator

from .conftest import LocatorProcess


@pytest.mark.parametrize("store", ["sqlite", "etcd"])
def test_kill_9_during_burst_keeps_every_acknowledged_registration(store, tmp_path, request):
    etcd = request.getfixturevalue("etcd_cluster").client_urls if store == "etcd" else None
    proc = LocatorProcess(tmp_path, etcd=etcd, dns=False).start()
    acked: dict[str, tuple[int, str]] = {}
    lock = threading.Lock()
    failures: list[str] = []

    def burst(worker: int) -> None:
        with proc.client() as east:
            for i in range(4000):
                eid = f"10.1.{worker * 16 + i // 250}.{i % 250}/32"
                address = f"192.0.2.{(i % 200) + 1}"
                try:
                    mapping = east.register(eid, [Locator(address)])
                except LocatorError as exc:  # the service died under us: stop this worker
                    failures.append(str(exc))
                    return
                with lock:
                    acked[eid] = (mapping.version, address)

    workers = [threading.Thread(target=burst, args=(w,), daemon=True) for w in range(4)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 20
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill(signal.SIGKILL)
    for w in workers:
        w.join(timeout=30)
    assert failures, "the burst was still running when the service was killed"
    assert len(acked) >= 150
    proc.start()
    try:
        with proc.client() as east:
            table = {m.eid.text: m for m in east.mappings()}
            for eid, (version, address) in acked.items():
                assert eid in table, f"acknowledged {eid} lost"
                assert table[eid].version == version and table[eid].locators[0].address == address
            # and the restarted service keeps registering, with later versions
            after = east.register("10.1.255.0/24", [Locator("192.0.2.1")])
            assert after.version > max(v for v, _ in acked.values())
    finally:
        proc.kill()


def test_etcd_member_stops_and_catches_up(etcd_cluster, tmp_path):
    proc = LocatorProcess(tmp_path, etcd=etcd_cluster.client_urls, dns=False).start()
    first = etcd_cluster.members[0]  # the service's first endpoint
    try:
        with proc.client() as east:
            east.register("10.1.0.0/16", [Locator("192.0.2.1")])
            etcd_cluster.stop_member(first.name)
            versions = []
            for i in range(20):
                versions.append(east.register(f"10.1.{i}.0/24", [Locator(f"198.51.100.{i + 1}")]).version)
            for i in range(20):
                mapping = east.resolve(f"10.1.{i}.9").mapping
                assert mapping.eid.text == f"10.1.{i}.0/24" and mapping.version == versions[i]
            etcd_cluster.start_member(first.name)
            # the restarted member serves the latest revision from its own copy (serializable read)
            key = None
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                reply = httpx.post(first.client_url + "/v3/kv/range", timeout=2, json={
                    "key": base64.b64encode(b"/").decode(), "range_end": base64.b64encode(b"\0").decode(),
                    "serializable": True, "keys_only": True, "sort_target": "MOD", "sort_order": "DESCEND",
                    "limit": "1"}).json()
                kvs = reply.get("kvs", [])
                key = kvs[0] if kvs else None
                if key and int(key["mod_revision"]) >= versions[-1]:
                    break
                time.sleep(0.1)
            assert key and int(key["mod_revision"]) >= versions[-1]
            assert east.register("10.1.99.0/24", [Locator("192.0.2.99")]).version > versions[-1]
    finally:
        if first.proc is not None and first.proc.poll() is not None:
            etcd_cluster.start_member(first.name)
        proc.kill()
