"""Names deregistered while the pusher was not running leave the DNS server when it starts again (its
ledger of pushed names); records it never pushed stay. Real BIND 9 (RFC 2136 + TSIG), the locator
service as a process on SQLite, run once without ``--dns-push`` in between."""

from __future__ import annotations

import json
import time

from vmferry.locator.model import Locator

from .conftest import ZONE, LocatorProcess
from .test_move import dig

GONE, KEPT = f"gone.{ZONE}", f"kept.{ZONE}"


def _until(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_name_deregistered_while_not_pushing_leaves_the_server(tmp_path, named):
    push = tmp_path / "push.toml"
    push.write_text(named.push_config_text())
    ledger = tmp_path / "push.toml.pushed"
    pushing = LocatorProcess(tmp_path, push_file=push).start()
    try:
        with pushing.client() as east:
            east.register(GONE, [Locator("192.0.2.31")], ttl=30)
            east.register(KEPT, [Locator("192.0.2.32")], ttl=30)
        assert _until(lambda: dig(named.port, GONE) == ["192.0.2.31"] and dig(named.port, KEPT) == ["192.0.2.32"])
        assert _until(lambda: ledger.exists() and set(json.loads(ledger.read_text())["names"]) == {GONE, KEPT})
    finally:
        pushing.kill()
    # the service runs without pushing, and the name is deregistered meanwhile: BIND still has it
    quiet = LocatorProcess(tmp_path).start()
    try:
        with quiet.client() as east:
            east.deregister(GONE)
        time.sleep(0.5)
        assert dig(named.port, GONE) == ["192.0.2.31"]
    finally:
        quiet.kill()
    # pushing again: the stale name goes, the registered one and the zone's own record stay
    again = LocatorProcess(tmp_path, push_file=push).start()
    try:
        assert _until(lambda: dig(named.port, GONE) == [])
        assert dig(named.port, KEPT) == ["192.0.2.32"] and dig(named.port, f"ns.{ZONE}") == ["127.0.0.1"]
        assert json.loads(ledger.read_text())["names"] == [KEPT]
    finally:
        again.kill()
