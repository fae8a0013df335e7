"""The locator service: registrations, resolution and watches over a :class:`Store`.

Use it directly from Python::

    from vmferry.locator import LocatorService, SqliteStore, Locator, load_sites

    sites = {s.name: s for s in load_sites("sites.toml")}
    with LocatorService(SqliteStore("locator.db")) as svc:
        svc.register(sites["dc-east"], "app.example.com", [Locator("192.0.2.10")], ttl=30)
        print(svc.resolve("app.example.com").mapping.best())

The HTTP API (:mod:`vmferry.locator.http_api`) authenticates requests and calls the same methods.
Every write goes to the store first; the service's in-memory index and its change feed are updated
from the store's ordered change stream, and a write returns once its change is visible here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence

from vmferry.errors import LocatorError, NotAllowed
from vmferry.locator.feed import ChangeFeed, Heartbeat
from vmferry.locator.index import PrefixIndex
from vmferry.locator.model import Change, Eid, InvalidRequest, Locator, Mapping, Resolution, Site
from vmferry.locator.store import Store

DEFAULT_EXPIRY = 300  # seconds a registration lives without a refresh
MAX_EXPIRY = 7 * 24 * 3600


class NotFound(LocatorError):
    """The EID has no registration."""


class LocatorService:
    def __init__(self, store: Store, *, negative_ttl: int = 60, sweep_interval: float = 1.0,
                 feed_capacity: int = 100_000, clock=time.time) -> None:
        self.store = store
        self.negative_ttl = negative_ttl
        self.sweep_interval = sweep_interval
        self.clock = clock
        self.index = PrefixIndex()
        self.feed = ChangeFeed(0, feed_capacity)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._started = False

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> LocatorService:
        with self._lock:
            mappings, head = self.store.open(self._apply)
            self.feed = ChangeFeed(head, self.feed.capacity)
            for mapping in mappings:
                self.index.put(mapping)
            self._started = True
        if self.sweep_interval > 0:
            self._sweeper = threading.Thread(target=self._sweep_loop, name="locator-sweeper", daemon=True)
            self._sweeper.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
        self.store.close()

    def __enter__(self) -> LocatorService:
        return self.start() if not self._started else self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def version(self) -> int:
        """The last version this service has applied."""
        return self.feed.head

    def _apply(self, change: Change) -> None:
        """Store callback, in version order: update the index, then tell the watchers."""
        with self._lock:
            if change.version <= self.feed.head:
                return
            if change.mapping is None:
                self.index.remove(change.eid)
            else:
                self.index.put(change.mapping)
        self.feed.publish(change)

    def _await(self, version: int) -> None:
        if not self.feed.wait_beyond(version - 1, 10.0):
            raise LocatorError(f"the store acknowledged version {version} but it did not arrive within 10 s")

    # -- writes ----------------------------------------------------------------------------------
    @staticmethod
    def authorize(site: Site, eid: Eid) -> None:
        if not site.may_register(eid):
            raise NotAllowed(f"site {site.name!r} may not register {eid}")

    def register(self, site: Site, eid: str | Eid, locators: Sequence[Locator], *, ttl: int = 60,
                 expires_in: int = DEFAULT_EXPIRY, instance_id: int = 0, nonce: str | None = None) -> Mapping:
        """Register (or move) ``eid`` to ``locators``; returns the stored mapping with its version.

        ``nonce`` is the signed request's "<key id>/<nonce>", given by the HTTP layer (see Store.put)."""
        eid = eid if isinstance(eid, Eid) else Eid.parse(eid, instance_id)
        self.authorize(site, eid)
        expires_in = _check_expiry(expires_in)
        now = self.clock()
        mapping = Mapping(eid=eid, locators=tuple(locators), ttl=ttl, expires_at=now + expires_in,
                          site=site.name, registered_at=now)
        version = self.store.put("register", mapping, nonce=nonce)
        self._await(version)
        return mapping.with_version(version)

    def register_many(self, site: Site, items: Sequence[tuple[str | Eid, Sequence[Locator]]], *,
                      ttl: int = 60, expires_in: int = DEFAULT_EXPIRY, instance_id: int = 0) -> list[int]:
        """Bulk import: register many EIDs (one transaction where the store supports it)."""
        expires_in = _check_expiry(expires_in)
        now = self.clock()
        mappings = []
        for eid, locators in items:
            eid = eid if isinstance(eid, Eid) else Eid.parse(eid, instance_id)
            self.authorize(site, eid)
            mappings.append(Mapping(eid=eid, locators=tuple(locators), ttl=ttl, expires_at=now + expires_in,
                                    site=site.name, registered_at=now))
        put_many = getattr(self.store, "put_many", None)
        versions = put_many("register", mappings) if put_many else [self.store.put("register", m) for m in mappings]
        if versions:
            self._await(max(versions))
        return versions

    def refresh(self, site: Site, eid: str | Eid, *, expires_in: int = DEFAULT_EXPIRY,
                instance_id: int = 0, nonce: str | None = None) -> Mapping:
        """Extend the registration of ``eid`` without changing its locators."""
        eid = eid if isinstance(eid, Eid) else Eid.parse(eid, instance_id)
        self.authorize(site, eid)
        expires_in = _check_expiry(expires_in)
        current = self.index.get(eid)
        if current is None or current.expired(self.clock()):
            raise NotFound(f"{eid} is not registered")
        mapping = Mapping(eid=eid, locators=current.locators, ttl=current.ttl,
                          expires_at=self.clock() + expires_in, site=site.name,
                          registered_at=current.registered_at)
        version = self.store.put("refresh", mapping, nonce=nonce)
        self._await(version)
        return mapping.with_version(version)

    def deregister(self, site: Site, eid: str | Eid, *, instance_id: int = 0, nonce: str | None = None) -> int:
        """Remove the mapping of ``eid``; returns the version of the removal."""
        eid = eid if isinstance(eid, Eid) else Eid.parse(eid, instance_id)
        self.authorize(site, eid)
        version = self.store.delete(eid, site.name, nonce=nonce)
        if version is None:
            raise NotFound(f"{eid} is not registered")
        self._await(version)
        return version

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.sweep_interval):
            try:
                self.sweep()
            except LocatorError:
                continue  # the store is unreachable for now; the next round retries

    def sweep(self) -> int:
        """Remove registrations whose expiry has passed; returns how many were removed."""
        now = self.clock()
        removed = 0
        for mapping in [m for m in self.index if m.expired(now)]:
            version = self.store.delete(mapping.eid, mapping.site, if_version=mapping.version)
            if version is not None:
                removed += 1
        return removed

    # -- reads -----------------------------------------------------------------------------------
    def resolve(self, query: str, instance_id: int = 0) -> Resolution:
        """Longest-prefix match for an address or prefix, exact match for a name.

        A miss gives a negative answer (for addresses, with the largest uncovered prefix)."""
        query = query.strip()
        if "/" in query or ":" in query or _is_ipv4(query):
            eid = Eid.parse(query if "/" in query else query + ("/128" if ":" in query else "/32"), instance_id)
            net = eid.network
            with self._lock:
                mapping, negative = self.index.lookup_address(str(net.network_address), instance_id,
                                                              net.prefixlen)
        else:
            eid = Eid.parse(query, instance_id)
            with self._lock:
                mapping, negative = self.index.lookup_name(eid.text, instance_id), None
        if mapping is not None and mapping.expired(self.clock()):
            mapping, negative = None, mapping.eid.text if not mapping.eid.is_name else None
        return Resolution(query=eid.text, instance_id=instance_id, mapping=mapping,
                          negative_prefix=negative, ttl=self.negative_ttl)

    def lookup_address(self, address: str, instance_id: int = 0) -> Mapping | None:
        """The fast path: longest-prefix match of one address, no negative answer."""
        return self.index.match(address, instance_id)

    def get(self, eid: str | Eid, instance_id: int = 0) -> Mapping | None:
        eid = eid if isinstance(eid, Eid) else Eid.parse(eid, instance_id)
        return self.index.get(eid)

    def mappings(self, instance_id: int | None = None) -> list[Mapping]:
        with self._lock:
            found = list(self.index)
        return sorted((m for m in found if instance_id is None or m.eid.instance_id == instance_id),
                      key=lambda m: m.eid)

    # -- watches ---------------------------------------------------------------------------------
    def watch(self, after: int, follows: Iterable[Eid] = (), *, heartbeat: float = 5.0,
              stop: threading.Event | None = None) -> Iterator[Change | Heartbeat]:
        """Every change after version ``after`` to the followed EIDs (all when none), in order.

        Blocks while nothing happens, yielding a :class:`Heartbeat` every ``heartbeat`` seconds.
        Resume after a disconnect with the last version seen (a change's or a heartbeat's)."""
        follows = list(follows)
        if after > self.feed.head:
            raise InvalidRequest(f"version {after} is ahead of this store (at {self.feed.head})")
        version = after
        while not (stop is not None and stop.is_set()):
            batch = self.feed.since(version)
            if batch is None:
                base = self.feed.base
                for change in self.store.history(version, base):
                    if change.matches(follows):
                        yield change
                version = base
                continue
            if batch:
                for change in batch:
                    if change.matches(follows):
                        yield change
                version = batch[-1].version
                continue
            if not self.feed.wait_beyond(version, heartbeat):
                yield Heartbeat(version)


def _check_expiry(expires_in: int) -> int:
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or not 1 <= expires_in <= MAX_EXPIRY:
        raise InvalidRequest(f"expires_in must be 1..{MAX_EXPIRY} seconds, not {expires_in!r}")
    return expires_in


def _is_ipv4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)
