"""Push name EIDs to an existing DNS server with RFC 2136 dynamic updates signed with TSIG.

On start the pusher replaces the A/AAAA records of every registered name inside the zone, then
follows the service's changes in version order: a registration replaces the name's A and AAAA
rrsets with its best usable locators (record TTL from the mapping), a deregistration deletes them.
A failed update is retried (with back-off) before the next one is sent, so the server never sees
changes out of order.

The **ledger** (``ledger`` in the file; default: the push file's path + ``.pushed``) lists the names this
pusher has put in the server (JSON, replaced atomically after each change). On start, a name in the
ledger that is no longer registered (deregistered while the pusher was not running: the service ran
without ``--dns-push``, or another instance on the same etcd removed it) has its A/AAAA records deleted.
Only names in the ledger are ever deleted that way: records vmferry did not push are never touched.

The push configuration file (TOML)::

    zone = "example.com"          # names outside the zone are not pushed
    server = "127.0.0.1:53"       # the primary server accepting updates
    instance_id = 0               # optional, default 0
    ledger = "/var/lib/vmferry/push.pushed"   # optional (see above)
    [tsig]
    name = "vmferry-update"       # key name as configured in the server
    algorithm = "hmac-sha256"     # optional
    secret = "base64 secret"
"""

from __future__ import annotations

import json
import logging
import os
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update

from vmferry.errors import LocatorError
from vmferry.locator.feed import Heartbeat
from vmferry.locator.model import Mapping
from vmferry.locator.service import LocatorService
from vmferry.tools.files import replace_file

log = logging.getLogger("vmferry.locator.dnspush")


@dataclass(frozen=True)
class PushConfig:
    zone: str
    host: str
    port: int
    key_name: str
    secret: str
    algorithm: str = "hmac-sha256"
    instance_id: int = 0
    ledger: str = ""

    @classmethod
    def load(cls, path: str | os.PathLike) -> PushConfig:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
            host, _, port = str(data["server"]).rpartition(":")
            tsig = data["tsig"]
            config = cls(zone=str(data["zone"]).rstrip(".").lower(), host=host.strip("[]"), port=int(port),
                         key_name=str(tsig["name"]), secret=str(tsig["secret"]),
                         algorithm=str(tsig.get("algorithm", "hmac-sha256")),
                         instance_id=int(data.get("instance_id", 0)),
                         ledger=str(data.get("ledger") or f"{path}.pushed"))
            dns.tsigkeyring.from_text({config.key_name: config.secret})
        except OSError as exc:
            raise LocatorError(f"cannot read DNS push file: {exc.strerror}", path=path) from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise LocatorError(f"DNS push file is not valid TOML: {exc}", path=path) from exc
        except KeyError as exc:
            raise LocatorError(f"DNS push file misses {exc.args[0]!r}", path=path) from exc
        except (ValueError, TypeError, dns.exception.DNSException) as exc:
            raise LocatorError(f"DNS push file has a bad value: {exc}", path=path) from exc
        return config


class DnsPusher:
    def __init__(self, service: LocatorService, config: PushConfig) -> None:
        self.service = service
        self.config = config
        self.zone = dns.name.from_text(config.zone + ".")
        self.keyring = dns.tsigkeyring.from_text({config.key_name: config.secret})
        self.pushed_version = 0
        self.ledger = Ledger(config.ledger) if config.ledger else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DnsPusher:
        self._thread = threading.Thread(target=self._run, name="locator-dns-push", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def in_zone(self, name: str) -> bool:
        return name == self.config.zone or name.endswith("." + self.config.zone)

    def _run(self) -> None:
        version = self.service.version
        current = {}
        for mapping in self.service.mappings(self.config.instance_id):
            if mapping.eid.is_name and self.in_zone(mapping.eid.text):
                current[mapping.eid.text] = mapping
        if self.ledger is not None:
            stale = self.ledger.names - set(current)
            self.ledger.replace(self.ledger.names | set(current))     # before pushing: never less than is there
            for name in sorted(stale):
                if self.in_zone(name):
                    log.info("removing %s from DNS: deregistered while not pushing", name)
                    self._send(name, None)
            self.ledger.replace(set(current))
        for name, mapping in current.items():
            self._send(name, mapping)
        self.pushed_version = version
        for item in self.service.watch(version, heartbeat=1.0, stop=self._stop):
            if isinstance(item, Heartbeat):
                continue
            eid = item.eid
            if item.kind == "refresh":  # same locators and TTL: nothing to tell the server
                self.pushed_version = item.version
                continue
            if eid.instance_id == self.config.instance_id and eid.is_name and self.in_zone(eid.text):
                self._send(eid.text, item.mapping)
                if self.ledger is not None:
                    (self.ledger.add if item.mapping is not None else self.ledger.discard)(eid.text)
            self.pushed_version = item.version

    def _send(self, name: str, mapping: Mapping | None) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                self.push(name, mapping)
                return
            except (LocatorError, OSError, dns.exception.DNSException) as exc:
                log.warning("DNS update of %s failed, retrying in %.1f s: %s", name, delay, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)

    def push(self, name: str, mapping: Mapping | None) -> None:
        """Send one update making the server's A/AAAA records of ``name`` match ``mapping``."""
        update = dns.update.Update(self.zone, keyring=self.keyring,
                                   keyname=dns.name.from_text(self.config.key_name),
                                   keyalgorithm=dns.name.from_text(self.config.algorithm))
        owner = dns.name.from_text(name + ".")
        usable = [loc for loc in mapping.locators if loc.usable] if mapping else []
        for family, rtype in ((4, "A"), (6, "AAAA")):
            candidates = [loc for loc in usable if loc.family == family]
            if candidates:
                best = min(loc.priority for loc in candidates)
                update.replace(owner, mapping.ttl, rtype, *[loc.address for loc in candidates
                                                             if loc.priority == best])
            else:
                update.delete(owner, rtype)
        reply = dns.query.tcp(update, self.config.host, port=self.config.port, timeout=5)
        if reply.rcode() != dns.rcode.NOERROR:
            raise LocatorError(f"DNS server {self.config.host}:{self.config.port} refused the update of "
                               f"{name}: {dns.rcode.to_text(reply.rcode())}")


class Ledger:
    """The names a pusher has put in the DNS server, kept in a JSON file (see the module text)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.names: set[str] = set()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("DNS push ledger %s unreadable (%s): names deregistered while not pushing stay", path, exc)
            return
        if isinstance(data, dict) and isinstance(data.get("names"), list):
            self.names = {n for n in data["names"] if isinstance(n, str)}

    def replace(self, names: set[str]) -> None:
        if names != self.names:
            self.names = set(names)
            self._save()

    def add(self, name: str) -> None:
        if name not in self.names:
            self.names.add(name)
            self._save()

    def discard(self, name: str) -> None:
        if name in self.names:
            self.names.discard(name)
            self._save()

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            replace_file(self.path, json.dumps({"names": sorted(self.names)}), mode=0o600)
        except OSError as exc:
            log.warning("cannot write the DNS push ledger %s: %s", self.path, exc.strerror)
