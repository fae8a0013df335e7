"""In-memory lookup structures: longest-prefix match per instance id, and names.

The prefix index keeps, per (instance id, address family), one hash table per prefix length present.
A lookup masks the address once per length, longest first, and stops at the first hit: with the
handful of distinct lengths real deployments use this is a few dictionary probes, and it needs no
tree rebalancing on updates. Negative answers (the largest empty prefix around an address) are
found by binary search over the prefix length against a sorted list of the registered network
starts, rebuilt lazily after changes.
"""

from __future__ import annotations

import bisect
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from vmferry.locator.model import Eid, InvalidRequest, Mapping

_WIDTH = {4: 32, 6: 128}
_pton, _AF4, _AF6 = socket.inet_pton, socket.AF_INET, socket.AF_INET6


def parse_address(text: str) -> tuple[int, int]:
    """Return (family, integer) of an IPv4 or IPv6 address; raise LocatorError if it is neither."""
    try:
        if ":" in text:
            return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"invalid address {text!r}") from exc


def format_prefix(family: int, value: int, length: int) -> str:
    size = 4 if family == 4 else 16
    raw = socket.inet_ntop(socket.AF_INET if family == 4 else socket.AF_INET6, value.to_bytes(size, "big"))
    return f"{raw}/{length}"


def _mask(family: int, length: int) -> int:
    width = _WIDTH[family]
    return ((1 << length) - 1) << (width - length) if length else 0


@dataclass
class _Family:
    family: int
    tables: dict[int, dict[int, Mapping]] = field(default_factory=dict)
    probes: list[tuple[int, int, dict[int, Mapping]]] = field(default_factory=list)  # (len, mask, table)
    _starts: list[int] | None = None

    def add(self, length: int, network: int, mapping: Mapping) -> None:
        table = self.tables.get(length)
        if table is None:
            table = self.tables[length] = {}
            self._reprobe()
        if network not in table:
            self._starts = None
        table[network] = mapping

    def remove(self, length: int, network: int) -> Mapping | None:
        table = self.tables.get(length)
        if table is None:
            return None
        old = table.pop(network, None)
        if old is not None:
            self._starts = None
            if not table:
                del self.tables[length]
                self._reprobe()
        return old

    def _reprobe(self) -> None:
        self.probes = [(ln, _mask(self.family, ln), self.tables[ln]) for ln in sorted(self.tables, reverse=True)]

    def lookup(self, value: int, max_length: int) -> Mapping | None:
        for length, mask, table in self.probes:
            if length <= max_length:
                hit = table.get(value & mask)
                if hit is not None:
                    return hit
        return None

    def starts(self) -> list[int]:
        if self._starts is None:
            self._starts = sorted({net for table in self.tables.values() for net in table})
        return self._starts

    def negative(self, value: int) -> tuple[int, int]:
        """Largest prefix around ``value`` that contains no registered prefix: (network, length)."""
        width = _WIDTH[self.family]
        starts = self.starts()
        lo, hi = 0, width  # block at `width` is empty for a miss; find the smallest empty length
        while lo < hi:
            mid = (lo + hi) // 2
            mask = _mask(self.family, mid)
            first = value & mask
            last = first | (~mask & ((1 << width) - 1))
            i = bisect.bisect_left(starts, first)
            if i < len(starts) and starts[i] <= last:
                lo = mid + 1
            else:
                hi = mid
        return value & _mask(self.family, lo), lo


class PrefixIndex:
    """Longest-prefix match over prefix EIDs and exact match over name EIDs, per instance id."""

    def __init__(self) -> None:
        self._families: dict[tuple[int, int], _Family] = {}
        self._by_family: dict[int, dict[int, _Family]] = {4: {}, 6: {}}  # family -> instance id -> table
        self._names: dict[tuple[int, str], Mapping] = {}
        self._by_eid: dict[Eid, Mapping] = {}

    def __len__(self) -> int:
        return len(self._by_eid)

    def __iter__(self) -> Iterator[Mapping]:
        return iter(list(self._by_eid.values()))

    def get(self, eid: Eid) -> Mapping | None:
        return self._by_eid.get(eid)

    def put(self, mapping: Mapping) -> None:
        eid = mapping.eid
        self._by_eid[eid] = mapping
        if eid.is_name:
            self._names[(eid.instance_id, eid.text)] = mapping
            return
        net = eid.network
        fam = self._families.get((eid.instance_id, net.version))
        if fam is None:
            fam = self._families[(eid.instance_id, net.version)] = _Family(net.version)
            self._by_family[net.version][eid.instance_id] = fam
        fam.add(net.prefixlen, int(net.network_address), mapping)

    def remove(self, eid: Eid) -> Mapping | None:
        old = self._by_eid.pop(eid, None)
        if old is None:
            return None
        if eid.is_name:
            self._names.pop((eid.instance_id, eid.text), None)
        else:
            net = eid.network
            fam = self._families.get((eid.instance_id, net.version))
            if fam is not None:
                fam.remove(net.prefixlen, int(net.network_address))
        return old

    def lookup_name(self, name: str, instance_id: int = 0) -> Mapping | None:
        return self._names.get((instance_id, name))

    def match(self, address: str, instance_id: int = 0) -> Mapping | None:
        """The fast path: the longest registered prefix covering ``address``, or None."""
        try:
            if ":" in address:
                fam = self._by_family[6].get(instance_id)
                value = int.from_bytes(_pton(_AF6, address), "big")
            else:
                fam = self._by_family[4].get(instance_id)
                value = int.from_bytes(_pton(_AF4, address), "big")
        except (OSError, TypeError) as exc:
            raise InvalidRequest(f"invalid address {address!r}") from exc
        if fam is None:
            return None
        for _length, mask, table in fam.probes:
            hit = table.get(value & mask)
            if hit is not None:
                return hit
        return None

    def lookup_address(self, address: str, instance_id: int = 0,
                       max_length: int | None = None) -> tuple[Mapping | None, str | None]:
        """Longest-prefix match of an address; on a miss also the negative prefix."""
        if max_length is None:
            hit = self.match(address, instance_id)
            if hit is not None:
                return hit, None
        family, value = parse_address(address)
        width = _WIDTH[family]
        fam = self._families.get((instance_id, family))
        if max_length is None:
            max_length = width
        if fam is not None:
            hit = fam.lookup(value, max_length)
            if hit is not None:
                return hit, None
            net, length = fam.negative(value)
        else:
            net, length = 0, 0
        return None, format_prefix(family, net, length)
