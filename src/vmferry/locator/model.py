"""The locator data model: endpoint identities (EIDs), locators, mappings, sites and changes.

An EID is an IPv4 or IPv6 prefix (a single address is a /32 or /128) or a DNS name, inside an
*instance id* (a tenant or VRF, an integer as in LISP). A :class:`Mapping` ties one EID to the set of
its current :class:`Locator` s. Every change to the mapping table gets a store-wide monotonic
``version``; a :class:`Change` records one.

All values are plain frozen dataclasses; ``to_dict`` / ``from_dict`` give the JSON form used by the
HTTP API, the stores and the watch stream.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from vmferry.errors import LocatorError

MAX_INSTANCE_ID = 2**24 - 1  # LISP instance ids are 24 bits
UNUSABLE_PRIORITY = 255
MAX_TTL = 7 * 24 * 3600

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class InvalidRequest(LocatorError):
    """An EID, locator or mapping field is malformed or out of range."""


def _bad(message: str) -> LocatorError:
    return InvalidRequest(message)


def normalize_name(text: str) -> str:
    """Lower-case a DNS name, drop the trailing dot, and check its syntax."""
    name = text.strip().lower().rstrip(".")
    if not name or len(name) > 253:
        raise _bad(f"invalid DNS name {text!r}")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise _bad(f"invalid DNS name {text!r} (label {label!r})")
    return name


@dataclass(frozen=True, order=True)
class Eid:
    """An endpoint identity: a prefix or a DNS name inside an instance id.

    ``text`` is canonical: ``10.1.0.0/16``, ``2001:db8::/32``, ``app.example.com``.
    """

    instance_id: int
    text: str

    @classmethod
    def parse(cls, text: str, instance_id: int = 0) -> Eid:
        if not isinstance(instance_id, int) or isinstance(instance_id, bool) or not (
                0 <= instance_id <= MAX_INSTANCE_ID):
            raise _bad(f"instance id must be an integer 0..{MAX_INSTANCE_ID}, not {instance_id!r}")
        if not isinstance(text, str) or not text.strip():
            raise _bad("an EID must be a non-empty prefix or DNS name")
        raw = text.strip()
        if ":" in raw or raw[0].isdigit() and "/" in raw or _looks_ipv4(raw):
            try:
                net = ipaddress.ip_network(raw, strict=True)
            except ValueError as exc:
                raise _bad(f"invalid EID prefix {raw!r}: {exc}") from exc
            return cls(instance_id, net.compressed)
        return cls(instance_id, normalize_name(raw))

    @property
    def is_name(self) -> bool:
        return "/" not in self.text

    @property
    def network(self) -> IpNetwork:
        if self.is_name:
            raise _bad(f"EID {self.text} is a name, not a prefix")
        return ipaddress.ip_network(self.text)

    def within(self, other: Eid, *, more_specifics: bool = True) -> bool:
        """True when this EID equals ``other`` or (``more_specifics``) lies inside it."""
        if self.instance_id != other.instance_id or self.is_name != other.is_name:
            return False
        if self.text == other.text:
            return True
        if not more_specifics:
            return False
        if self.is_name:
            return self.text.endswith("." + other.text)
        mine, theirs = self.network, other.network
        return mine.version == theirs.version and mine.subnet_of(theirs)

    def __str__(self) -> str:
        return f"[{self.instance_id}]{self.text}"


def _looks_ipv4(text: str) -> bool:
    parts = text.split("/")[0].split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


@dataclass(frozen=True)
class Locator:
    """One routing locator of an EID: where it can be reached now."""

    address: str
    priority: int = 1
    weight: int = 100
    reachable: bool = True
    port: int | None = None

    def __post_init__(self) -> None:
        try:
            addr = ipaddress.ip_address(self.address)
        except ValueError as exc:
            raise _bad(f"invalid locator address {self.address!r}") from exc
        object.__setattr__(self, "address", addr.compressed)
        for name, value, top in (("priority", self.priority, 255), ("weight", self.weight, 255)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
                raise _bad(f"locator {name} must be an integer 0..{top}, not {value!r}")
        if not isinstance(self.reachable, bool):
            raise _bad("locator reachable must be true or false")
        if self.port is not None and (not isinstance(self.port, int) or isinstance(self.port, bool)
                                      or not 1 <= self.port <= 65535):
            raise _bad(f"locator port must be 1..65535, not {self.port!r}")

    @property
    def family(self) -> int:
        return 6 if ":" in self.address else 4

    @property
    def usable(self) -> bool:
        return self.reachable and self.priority < UNUSABLE_PRIORITY

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address, "priority": self.priority,
                               "weight": self.weight, "reachable": self.reachable}
        if self.port is not None:
            out["port"] = self.port
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Locator:
        if not isinstance(data, dict) or "address" not in data:
            raise _bad("a locator needs at least an address")
        return cls(address=data["address"], priority=data.get("priority", 1),
                   weight=data.get("weight", 100), reachable=data.get("reachable", True),
                   port=data.get("port"))


@dataclass(frozen=True)
class Mapping:
    """The current locators of one EID, as registered by one site."""

    eid: Eid
    locators: tuple[Locator, ...]
    ttl: int = 60
    expires_at: float = 0.0
    version: int = 0
    site: str = ""
    registered_at: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.ttl, int) or isinstance(self.ttl, bool) or not 0 <= self.ttl <= MAX_TTL:
            raise _bad(f"record TTL must be 0..{MAX_TTL} seconds, not {self.ttl!r}")
        if len(self.locators) > 64:
            raise _bad("at most 64 locators per mapping")
        seen = set()
        for loc in self.locators:
            if loc.address in seen:
                raise _bad(f"locator {loc.address} is listed twice")
            seen.add(loc.address)

    def expired(self, now: float) -> bool:
        return bool(self.expires_at) and self.expires_at <= now

    def ordered(self) -> list[Locator]:
        """Usable locators, best (lowest) priority first, then heavier weight."""
        return sorted((loc for loc in self.locators if loc.usable), key=lambda x: (x.priority, -x.weight))

    def best(self) -> list[Locator]:
        """The usable locators of the best priority (the set traffic is shared among)."""
        ordered = self.ordered()
        return [loc for loc in ordered if loc.priority == ordered[0].priority] if ordered else []

    def choose(self, rng: random.Random | None = None) -> Locator | None:
        """Weighted choice among the best-priority locators (weight 0 only if all are 0)."""
        return weighted_choice(self.best(), rng)

    def to_dict(self) -> dict[str, Any]:
        return {"instance_id": self.eid.instance_id, "eid": self.eid.text,
                "locators": [loc.to_dict() for loc in self.locators], "ttl": self.ttl,
                "expires_at": self.expires_at, "version": self.version, "site": self.site,
                "registered_at": self.registered_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mapping:
        return cls(eid=Eid.parse(data["eid"], int(data.get("instance_id", 0))),
                   locators=tuple(Locator.from_dict(x) for x in data.get("locators", [])),
                   ttl=int(data.get("ttl", 60)), expires_at=float(data.get("expires_at", 0.0)),
                   version=int(data.get("version", 0)), site=str(data.get("site", "")),
                   registered_at=float(data.get("registered_at", 0.0)))

    def with_version(self, version: int) -> Mapping:
        return replace(self, version=version)


def weighted_choice(locators: Sequence[Locator], rng: random.Random | None = None) -> Locator | None:
    if not locators:
        return None
    total = sum(loc.weight for loc in locators)
    pick = (rng or random).random()
    if total == 0:
        return locators[int(pick * len(locators))]
    point = pick * total
    for loc in locators:
        point -= loc.weight
        if point < 0:
            return loc
    return locators[-1]


@dataclass(frozen=True)
class Site:
    """A registering site: its key, its shared secret and the EIDs it may register."""

    name: str
    key_id: str
    secret: bytes = field(repr=False)
    allowed: tuple[Eid, ...] = ()
    more_specifics: bool = True

    def may_register(self, eid: Eid) -> bool:
        return any(eid.within(a, more_specifics=self.more_specifics) for a in self.allowed)


CHANGE_KINDS = ("register", "refresh", "deregister")


@dataclass(frozen=True)
class Change:
    """One change to the mapping table. ``mapping`` is the new state, None after a deregistration."""

    version: int
    kind: str
    eid: Eid
    mapping: Mapping | None
    site: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": "change", "version": self.version, "kind": self.kind,
                "instance_id": self.eid.instance_id, "eid": self.eid.text, "site": self.site,
                "mapping": self.mapping.to_dict() if self.mapping else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        mapping = Mapping.from_dict(data["mapping"]) if data.get("mapping") else None
        return cls(version=int(data["version"]), kind=str(data["kind"]),
                   eid=Eid.parse(data["eid"], int(data.get("instance_id", 0))), mapping=mapping,
                   site=str(data.get("site", "")))

    def matches(self, follows: Iterable[Eid]) -> bool:
        """True when this change concerns one of the followed EIDs (equal or more specific)."""
        follows = list(follows)
        return not follows or any(self.eid.within(f) for f in follows)


@dataclass(frozen=True)
class Resolution:
    """The answer to a lookup: a mapping, or a negative answer.

    A negative answer for an address carries ``negative_prefix``: the largest prefix covering the
    queried address that holds no registration (LISP's negative Map-Reply), so the asker may cache
    the whole range for ``ttl`` seconds.
    """

    query: str
    instance_id: int
    mapping: Mapping | None
    negative_prefix: str | None = None
    ttl: int = 60

    @property
    def found(self) -> bool:
        return self.mapping is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query, "instance_id": self.instance_id, "found": self.found,
                               "ttl": self.mapping.ttl if self.mapping else self.ttl}
        if self.mapping:
            out["mapping"] = self.mapping.to_dict()
            out["locators"] = [loc.to_dict() for loc in self.mapping.ordered()]
        else:
            out["negative_prefix"] = self.negative_prefix
        return out
