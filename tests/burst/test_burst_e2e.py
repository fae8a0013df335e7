"""Cloud burst end to end on a real private libvirtd, HAProxy, BIND and the locator (all on 127.0.0.1):
a bounded load generator drives HAProxy's session rate over the policy's threshold → the control loop adds
two copies of the web component from its ready image (copy-on-write overlays, generalized), they prove
themselves, join HAProxy, DNS and the locator and answer requests; the load falls → after the cooldown
they are drained and removed. No request fails; each copy has its own machine-id, hostname, MAC and
address (read from the guests); nothing is left in libvirt, the storage directory, HAProxy, DNS or the
locator."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest

from tests.burst import burstguest
from tests.burst.servers import LoadGenerator
from tests.burst.site import ZONE, burst_site
from tests.conftest import run_vmferry
from vmferry.burst import policy, store
from vmferry.locator.client import LocatorClient
from vmferry.plans.dnsupdate import current
from vmferry.tools import libvirt as lv
from vmferry.tools.proc import run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.xdist_group("hostnet")]


def _get(host: str, path: str) -> str:
    conn = http.client.HTTPConnection(host, 80, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_burst_out_and_in_under_load(netlibvirtd, tmp_path):
    state = tmp_path / "state"
    with burst_site(netlibvirtd, tmp_path) as site:
        target, haproxy = site.target, site.haproxy
        dns = target.site.dns
        before = _listing(site.storage)
        www = f"www.{ZONE}"
        assert current(dns, www, "A") == []

        # -- scale out: 20 requests/s on one server is over the policy's 6 per server
        gen = LoadGenerator(haproxy.port, rate=20, total=6000).start()
        try:
            crossed = None
            decisions = []
            for _ in range(30):
                d = policy.watch_round(target, state, say=print)
                decisions.append(d)
                if d.action == "add":
                    crossed = d
                    break
                time.sleep(1)
            assert crossed is not None and crossed.value > 6 and crossed.count == 2, decisions
            record = store.load(state, "shop", "web", "cloud")
            copies = record.serving()
            assert [c.state for c in record.copies] == ["serving", "serving"]
            names = {c.hostname for c in copies}
            deadline = time.monotonic() + 60
            while not names <= set(gen.by_instance) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert names <= set(gen.by_instance), dict(gen.by_instance)     # the new copies answer requests
            assert haproxy.servers() == sorted(["primary", *(c.name for c in copies)])

            # -- their identity, from the guests themselves
            seen = [burstguest.identity(_get(c.address, "/identity.txt")) for c in copies]
            for c, ident in zip(copies, seen, strict=True):
                assert ident["machine-id"] == c.machine_id != burstguest.ORIGINAL_MACHINE_ID
                assert ident["hostname"] == c.hostname
                assert ident["mac"] == c.mac and ident["address"] == c.address
                assert ident["ssh-keys"].strip() == ""                      # the original's host key is gone
            for key in ("machine-id", "hostname", "mac", "address"):
                assert len({ident[key] for ident in seen}) == 2, key

            # -- copy-on-write: one overlay per copy, backed by the ready point's layer, small
            for c in copies:
                (overlay,) = c.overlays
                info = json.loads(run(["qemu-img", "info", "-U", "--output=json", overlay]).stdout)
                assert info["backing-filename"] == str(site.top)
                assert Path(overlay).stat().st_size < site.image.stat().st_size / 4

            # -- DNS (round-robin name and one per copy) and the locator
            assert current(dns, www, "A") == sorted(c.address for c in copies)
            for c in copies:
                assert current(dns, f"{c.hostname}.{ZONE}", "A") == [c.address]
            with LocatorClient(site.locator.url) as client:
                for c in copies:
                    mapping = client.resolve(f"{c.hostname}.{ZONE}").mapping
                    assert mapping is not None and [loc.address for loc in mapping.locators] == [c.address]

            # -- the policy holds at max while the load stays
            d = policy.watch_round(target, state)
            assert d.action == "hold" and d.copies == 2

            # -- load falls: 3 requests/s over three servers is under 2 per server; removed after the cooldown
            gen.rate = 3
            removed = []
            for _ in range(40):
                d = policy.watch_round(target, state, say=print)
                if d.action == "remove":
                    removed.append(d)
                    break
                time.sleep(1)
            assert removed and removed[0].count == 2 and removed[0].value < 2
        finally:
            gen.stop()
        assert gen.errors == [], gen.errors[:5]                             # no request failed
        assert gen.by_instance["primary"] > 0 and sum(gen.by_instance.values()) == gen.sent

        # -- nothing left
        assert haproxy.servers() == ["primary"]
        assert current(dns, www, "A") == []
        for c in copies:
            assert current(dns, f"{c.hostname}.{ZONE}", "A") == []
        with LocatorClient(site.locator.url) as client:
            assert client.mappings() == []
        with lv.connect(netlibvirtd.uri) as conn:
            assert [n for n in conn.names() if n.startswith("shop-")] == []
        assert _listing(site.storage) == before
        record = store.load(state, "shop", "web", "cloud")
        assert record.copies == []
        assert [d.action for d in record.decisions].count("add") == 1
        assert all(d.metric == "rate" and d.value is not None for d in record.decisions)

        # -- vmferry status shows the decisions
        res = run_vmferry("status", "--json", env={"VMFERRY_STATE": str(state)})
        assert res.returncode == 0, res.stderr
        (burst,) = json.loads(res.stdout)["burst"]
        assert burst["copies"] == [] and burst["decisions"][-1]["action"] == "remove"
