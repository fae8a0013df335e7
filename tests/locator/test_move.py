"""A move is visible within one second everywhere: HTTP API, DNS front (dig and dnspython), BIND
(updated by RFC 2136 + TSIG), and every open watch. Run on the SQLite and on the etcd store."""

from __future__ import annotations

import threading
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from vmferry.locator.client import LocatorClient
from vmferry.locator.model import Change, Locator
from vmferry.tools.proc import run

from .conftest import ZONE, LocatorProcess

NAME = f"app.{ZONE}"


def dig(port: int, name: str, rtype: str = "A") -> list[str]:
    out = run(["dig", "@127.0.0.1", "-p", str(port), "+short", "+tries=1", "+time=1", name, rtype], timeout=10)
    return sorted(line.strip() for line in out.stdout.splitlines() if line.strip())


def ask(port: int, name: str, rtype: str = "A") -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, rtype), "127.0.0.1", port=port, timeout=2)


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(r.address for rrset in reply.answer for r in rrset if hasattr(r, "address"))


@pytest.fixture(params=["sqlite", "etcd"])
def locator(request, tmp_path, named):
    push = tmp_path / "push.toml"
    push.write_text(named.push_config_text())
    etcd = request.getfixturevalue("etcd_cluster").client_urls if request.param == "etcd" else None
    proc = LocatorProcess(tmp_path, etcd=etcd, push_file=push).start()
    yield proc
    proc.kill()


def _watch(url: str, out: list, stop: threading.Event, eids: list[str]) -> None:
    with LocatorClient(url) as client:
        for item in client.watch(eids=eids, heartbeat=0.1):
            if isinstance(item, Change):
                out.append((time.monotonic(), item))
            if stop.is_set():
                return


def test_move_is_visible_everywhere_within_one_second(locator, named):
    stop = threading.Event()
    watches: list[list] = [[], [], []]
    follows = [[NAME], [], [ZONE]]
    threads = [threading.Thread(target=_watch, args=(locator.url, w, stop, f), daemon=True)
               for w, f in zip(watches, follows, strict=True)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    with locator.client() as east:
        east.register(NAME, [Locator("192.0.2.10"), Locator("2001:db8:1::10")], ttl=30)
        deadline = time.monotonic() + 10
        while dig(named.port, NAME) != ["192.0.2.10"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dig(named.port, NAME) == ["192.0.2.10"]

        start = time.monotonic()
        moved = east.register(NAME, [Locator("198.51.100.20", priority=1), Locator("198.51.100.21", priority=1),
                                     Locator("192.0.2.10", priority=5)], ttl=45)
        pending = {"http", "front-dnspython", "front-dig", "bind", "watches"}
        while pending and time.monotonic() - start < 1.0:
            if "http" in pending and east.resolve(NAME).mapping.version == moved.version:
                pending.discard("http")
            if "front-dnspython" in pending:
                reply = ask(locator.dns_port, NAME)
                if addresses(reply) == ["198.51.100.20", "198.51.100.21"] and reply.answer[0].ttl == 45:
                    pending.discard("front-dnspython")
            if "front-dig" in pending and dig(locator.dns_port, NAME) == ["198.51.100.20", "198.51.100.21"]:
                pending.discard("front-dig")
            if "bind" in pending and dig(named.port, NAME) == ["198.51.100.20", "198.51.100.21"]:
                pending.discard("bind")
            if "watches" in pending and all(any(c.version == moved.version for _, c in w) for w in watches):
                pending.discard("watches")
            if pending:
                time.sleep(0.02)
        elapsed = time.monotonic() - start
        assert not pending, f"not visible after {elapsed:.2f} s: {pending}"
        bind_reply = ask(named.port, NAME)
        assert bind_reply.answer[0].ttl == 45 and addresses(ask(named.port, NAME, "AAAA")) == []
        # each watch saw both changes, in version order
        for w in watches:
            versions = [c.version for _, c in w]
            assert versions == sorted(versions) and versions[-1] == moved.version and len(versions) == 2

        # deregistration: NXDOMAIN from the front, the names leave BIND
        east.deregister(NAME)
        assert ask(locator.dns_port, NAME).rcode() == dns.rcode.NXDOMAIN
        deadline = time.monotonic() + 1.0
        while dig(named.port, NAME) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert dig(named.port, NAME) == []
    stop.set()
    for t in threads:
        t.join(timeout=5)


def test_dns_front_answers_srv_aaaa_and_negative(sqlite_locator):
    port = sqlite_locator.dns_port
    with sqlite_locator.client() as east:
        east.register(f"_pg._tcp.{ZONE}", [Locator("192.0.2.5", priority=1, weight=70, port=5432),
                                          Locator("2001:db8:1::5", priority=2, weight=30, port=6432),
                                          Locator("192.0.2.6", priority=3)], ttl=15)
        east.register(f"v6.{ZONE}", [Locator("2001:db8:1::9"), Locator("192.0.2.9", priority=9)], ttl=7)
    srv = ask(port, f"_pg._tcp.{ZONE}", "SRV")
    records = sorted((r.priority, r.weight, r.port, r.target.to_text()) for r in srv.answer[0])
    assert records == [(1, 70, 5432, f"ip4-192-0-2-5._pg._tcp.{ZONE}."),
                       (2, 30, 6432, f"ip6-20010db8000100000000000000000005._pg._tcp.{ZONE}.")]
    assert srv.answer[0].ttl == 15
    extra = {rrset.name.to_text(): [r.address for r in rrset] for rrset in srv.additional}
    assert extra[f"ip4-192-0-2-5._pg._tcp.{ZONE}."] == ["192.0.2.5"]
    assert addresses(ask(port, f"ip4-192-0-2-5._pg._tcp.{ZONE}")) == ["192.0.2.5"]
    assert ask(port, f"ip4-192-0-2-99._pg._tcp.{ZONE}").rcode() == dns.rcode.NXDOMAIN
    assert dig(port, f"v6.{ZONE}", "AAAA") == ["2001:db8:1::9"]
    assert dig(port, f"v6.{ZONE}", "A") == ["192.0.2.9"]  # best of its own family
    assert ask(port, f"v6.{ZONE}", "AAAA").answer[0].ttl == 7
    nodata = ask(port, f"v6.{ZONE}", "MX")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    assert ask(port, f"nothing.{ZONE}").rcode() == dns.rcode.NXDOMAIN


def test_dns_front_truncates_over_udp_and_answers_in_full_over_tcp(sqlite_locator):
    port = sqlite_locator.dns_port
    many = [Locator(f"2001:db8:1::{i:x}") for i in range(1, 41)]  # 40 AAAA records: over 512 bytes
    with sqlite_locator.client() as east:
        east.register(f"big.{ZONE}", many, ttl=10)
    udp = dns.query.udp(dns.message.make_query(f"big.{ZONE}", "AAAA", use_edns=False), "127.0.0.1",
                        port=port, timeout=2, raise_on_truncation=False)
    assert udp.flags & dns.flags.TC and not udp.answer
    tcp = dns.query.tcp(dns.message.make_query(f"big.{ZONE}", "AAAA"), "127.0.0.1", port=port, timeout=2)
    assert sorted(addresses(tcp)) == sorted(loc.address for loc in many)
    assert len(dig(port, f"big.{ZONE}", "AAAA")) == 40  # dig retries over TCP by itself
    assert dig(port, f"big.{ZONE}", "A") == []
