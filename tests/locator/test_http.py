"""The HTTP API of a real `vmferry locator serve` (SQLite store): updates, refusals, watches, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx
import pytest

from vmferry.errors import AuthError, LocatorError, NotAllowed
from vmferry.locator.auth import sign
from vmferry.locator.feed import Heartbeat
from vmferry.locator.model import Change, Locator

from .conftest import EAST_SECRET, WEST_SECRET, LocatorProcess


def test_register_resolve_refresh_deregister(sqlite_locator):
    with sqlite_locator.client() as east:
        first = east.register("10.1.0.0/16", [Locator("192.0.2.10")], ttl=30)
        second = east.register("10.1.5.0/24", [Locator("192.0.2.20", priority=2),
                                               Locator("2001:db8:ff::1", priority=1, weight=5)])
        assert second.version > first.version
        hit = east.resolve("10.1.5.77")
        assert hit.mapping.eid.text == "10.1.5.0/24"
        assert [loc.address for loc in hit.mapping.ordered()] == ["2001:db8:ff::1", "192.0.2.20"]
        assert east.resolve("10.1.6.1").mapping.eid.text == "10.1.0.0/16"
        miss = east.resolve("10.3.0.1")
        assert not miss.found and miss.negative_prefix == "10.2.0.0/15"
        east.register("2001:db8:1::/48", [Locator("192.0.2.30")])
        east.register("2001:db8:1:5::/64", [Locator("192.0.2.31")], instance_id=7)
        assert east.resolve("2001:db8:1:5::1").mapping.eid.text == "2001:db8:1::/48"
        assert east.resolve("2001:db8:1:5::1", instance_id=7).mapping.locators[0].address == "192.0.2.31"
        v6_miss = east.resolve("2001:db8:2::1")
        assert not v6_miss.found and v6_miss.negative_prefix == "2001:db8:2::/47"
        raw = east.resolve_raw("10.1.5.1", pick=True)
        assert raw["selected"]["address"] == "2001:db8:ff::1"
        refreshed = east.refresh("10.1.0.0/16", expires_in=900)
        assert refreshed.version > second.version and refreshed.locators == first.locators
        assert refreshed.expires_at > first.expires_at
        east.deregister("10.1.5.0/24")
        assert east.resolve("10.1.5.77").mapping.eid.text == "10.1.0.0/16"
        with pytest.raises(LocatorError, match="404"):
            east.deregister("10.1.5.0/24")
        assert [m.eid.text for m in east.mappings(instance_id=0)] == ["10.1.0.0/16", "2001:db8:1::/48"]


def _post(url: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url + path, content=body, headers={**headers, "Content-Type": "application/json"})


def test_every_attack_is_refused_and_leaves_the_mapping(sqlite_locator):
    url = sqlite_locator.url
    with sqlite_locator.client() as east:
        good = east.register("10.1.9.0/24", [Locator("192.0.2.1")])
    body = json.dumps({"eid": "10.1.9.0/24", "locators": [{"address": "203.0.113.66"}]}).encode()
    key = EAST_SECRET.encode()
    now = time.time()

    signed = sign(key, "POST", "/v1/register", "east-1", body)
    forged = dict(signed, **{"X-Locator-Signature": sign(b"not-the-secret-000", "POST", "/v1/register",
                                                          "east-1", body)["X-Locator-Signature"]})
    cases = {
        "forged": (forged, body, 401),
        "unknown_key": (sign(key, "POST", "/v1/register", "mallory", body), body, 401),
        "wrong key id": (sign(WEST_SECRET.encode(), "POST", "/v1/register", "east-1", body), body, 401),
        "stale": (sign(key, "POST", "/v1/register", "east-1", body, timestamp=now - 3600), body, 401),
    }
    for name, (headers, data, status) in cases.items():
        resp = _post(url, "/v1/register", data, headers)
        assert resp.status_code == status, (name, resp.text)
    # replay: the genuine request passes once, its copy is refused
    first = _post(url, "/v1/register", body, signed)
    assert first.status_code == 200
    replay = _post(url, "/v1/register", body, signed)
    assert replay.status_code == 401 and replay.json()["reason"] == "replayed"
    with sqlite_locator.client() as east:
        moved = east.resolve("10.1.9.1").mapping
        assert moved.version == first.json()["version"] and moved.locators[0].address == "203.0.113.66"
        # a prefix outside the site's allowance, and a more-specific where the site has none
        with pytest.raises(NotAllowed):
            east.register("10.2.0.0/24", [Locator("192.0.2.1")])
    with sqlite_locator.client("west") as west:
        west.register("10.2.0.0/16", [Locator("198.51.100.1")])
        with pytest.raises(NotAllowed):
            west.register("10.2.1.0/24", [Locator("198.51.100.2")])
        with pytest.raises(NotAllowed):
            west.deregister("10.1.9.0/24")
    # oversized body: refused before any parsing
    huge = json.dumps({"eid": "10.1.9.0/24", "locators": [{"address": "192.0.2.1"}], "pad": "x" * 70000}).encode()
    resp = _post(url, "/v1/register", huge, sign(key, "POST", "/v1/register", "east-1", huge))
    assert resp.status_code == 413 and resp.json()["reason"] == "too_large"
    with sqlite_locator.client() as east:
        assert east.resolve("10.1.9.1").mapping.version == first.json()["version"]
        assert east.resolve("10.2.1.1").mapping.eid.text == "10.2.0.0/16"
        with pytest.raises(AuthError):
            type(east)(url, key_id="east-1", secret=b"wrong-secret-wrong").register("10.1.9.0/24", [])
    log = (sqlite_locator.workdir / "serve.log").read_text()
    for reason in ("forged", "unknown_key", "stale", "replayed", "not_allowed", "too_large"):
        assert f"reason={reason}" in log, reason
    assert good.version < first.json()["version"]


def _collect(url: str, out: list, stop: threading.Event, **kwargs) -> None:
    from vmferry.locator.client import LocatorClient

    with LocatorClient(url) as client:
        for item in client.watch(heartbeat=0.2, **kwargs):
            out.append(item)
            if stop.is_set():
                return


def test_watch_in_order_without_gaps_and_resume_after_restart(sqlite_locator):
    url = sqlite_locator.url
    seen_all: list = []
    seen_app: list = []
    stop = threading.Event()
    threads = [threading.Thread(target=_collect, args=(url, seen_all, stop), daemon=True),
               threading.Thread(target=_collect, args=(url, seen_app, stop),
                                kwargs={"eids": ["app.example.test"]}, daemon=True)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    versions = []
    with sqlite_locator.client() as east:
        for i in range(30):
            eid = "app.example.test" if i % 3 == 0 else f"10.1.{i}.0/24"
            versions.append(east.register(eid, [Locator(f"192.0.2.{i + 1}")]).version)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len([c for c in seen_all if isinstance(c, Change)]) < 30:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=5)
    changes = [c.version for c in seen_all if isinstance(c, Change)]
    assert changes[:30] == versions
    app = [c for c in seen_app if isinstance(c, Change)]
    assert [c.version for c in app] == versions[::3]
    assert all(c.eid.text == "app.example.test" for c in app)

    # resume: after a restart, from the version a client last saw, exactly the later changes
    last_seen = versions[14]
    sqlite_locator.restart()
    with sqlite_locator.client() as east:
        extra = east.register("10.1.200.0/24", [Locator("192.0.2.200")]).version
        resumed = []
        for item in east.watch(from_version=last_seen, heartbeat=0.2):
            if isinstance(item, Heartbeat):
                break
            resumed.append(item.version)
    assert resumed == versions[15:] + [extra]


def test_cli_clients(sqlite_locator, tmp_path):
    secret = tmp_path / "east.secret"
    secret.write_text(EAST_SECRET)
    base = [sys.executable, "-m", "vmferry.cli.main", "locator"]
    common = ["--url", sqlite_locator.url]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)

    watcher = subprocess.Popen([*base, "watch", *common, "--eid", "db.example.test", "--count", "2", "--json"],
                               stdout=subprocess.PIPE, text=True)
    time.sleep(0.8)
    out = cli("register", *common, "--key-id", "east-1", "--secret-file", str(secret), "db.example.test",
              "-l", "192.0.2.7,priority=1,weight=10", "-l", "2001:db8:1::7,priority=2,port=5432", "--ttl", "20")
    assert out.returncode == 0, out.stderr
    res = cli("resolve", *common, "db.example.test", "--json")
    data = json.loads(res.stdout)
    assert data["found"] and data["ttl"] == 20 and data["locators"][0]["address"] == "192.0.2.7"
    assert cli("deregister", *common, "--key-id", "east-1", "--secret-file", str(secret),
               "db.example.test").returncode == 0
    events = [json.loads(line) for line in watcher.communicate(timeout=20)[0].splitlines()]
    assert [e["kind"] for e in events] == ["register", "deregister"]
    assert cli("register", *common, "--key-id", "east-1", "--secret-file", str(secret), "10.1.0.0/16",
               "-l", "192.0.2.1").returncode == 0
    listed = json.loads(cli("list", *common, "--json").stdout)
    assert [(m["eid"], m["locators"][0]["address"]) for m in listed] == [("10.1.0.0/16", "192.0.2.1")]
    miss = cli("resolve", *common, "10.9.0.1")
    assert miss.returncode == 0 and "not found" in miss.stdout and "10.8.0.0/13" in miss.stdout
    # bad input: one line, exit 2, no traceback
    bad = cli("register", *common, "--key-id", "east-1", "--secret-file", str(secret), "10.1.0.0/16",
              "-l", "192.0.2.1,bogus")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "bogus" in bad.stderr
    denied = cli("register", *common, "--key-id", "east-1", "--secret-file", str(secret), "10.9.0.0/16",
                 "-l", "192.0.2.1")
    assert denied.returncode == 2 and "may not register" in denied.stderr and "Traceback" not in denied.stderr


def test_serve_with_bad_sites_file_fails_in_one_line(tmp_path):
    sites = tmp_path / "sites.toml"
    sites.write_text("[[site]]\nname = 'x'\n")
    out = subprocess.run([sys.executable, "-m", "vmferry.cli.main", "locator", "serve", "--sites", str(sites),
                          "--db", str(tmp_path / "db")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and str(sites) in out.stderr


def test_oversized_limit_is_configurable(tmp_path):
    proc = LocatorProcess(tmp_path, dns=False, max_body=300).start()
    try:
        with proc.client() as east:
            east.register("10.1.0.0/16", [Locator("192.0.2.1")])
            with pytest.raises(LocatorError, match="413"):
                east.register("10.1.0.0/16", [Locator(f"192.0.2.{i}") for i in range(1, 20)])
            assert len(east.resolve("10.1.0.1").mapping.locators) == 1
    finally:
        proc.kill()
