"""The model and the prefix index, checked against brute force over real address arithmetic."""

from __future__ import annotations

import ipaddress
import random
from collections import Counter

import pytest

from vmferry.errors import LocatorError
from vmferry.locator.index import PrefixIndex
from vmferry.locator.model import Eid, InvalidRequest, Locator, Mapping, Site


def m(text: str, iid: int = 0, *locs: Locator) -> Mapping:
    return Mapping(eid=Eid.parse(text, iid), locators=locs or (Locator("192.0.2.1"),))


@pytest.mark.parametrize("text,canonical", [
    ("10.1.0.0/16", "10.1.0.0/16"), ("10.1.2.3", "10.1.2.3/32"), ("2001:DB8:0::/48", "2001:db8::/48"),
    ("App.Example.TEST.", "app.example.test"), ("_http._tcp.app.example.test", "_http._tcp.app.example.test"),
])
def test_eid_canonical_forms(text, canonical):
    assert Eid.parse(text).text == canonical


@pytest.mark.parametrize("text", ["10.1.0.1/16", "300.1.0.0/16", "bad..name", "-x.example", "", "a" * 64 + ".x"])
def test_eid_rejects_malformed(text):
    with pytest.raises(InvalidRequest):
        Eid.parse(text)


def test_locator_limits():
    with pytest.raises(LocatorError):
        Locator("192.0.2.1", priority=256)
    with pytest.raises(LocatorError):
        Locator("not-an-address")
    with pytest.raises(LocatorError):
        Mapping(Eid.parse("a.example"), (Locator("192.0.2.1"), Locator("192.0.2.1")))
    assert not Locator("192.0.2.1", priority=255).usable
    assert not Locator("192.0.2.1", reachable=False).usable


def test_site_allowance_more_specifics():
    site = Site("s", "k", b"x" * 16, (Eid.parse("10.1.0.0/16"), Eid.parse("example.test")), True)
    assert site.may_register(Eid.parse("10.1.2.0/24"))
    assert site.may_register(Eid.parse("app.example.test"))
    assert not site.may_register(Eid.parse("10.0.0.0/8"))
    assert not site.may_register(Eid.parse("10.1.2.0/24", 5))  # other instance id
    assert not site.may_register(Eid.parse("badexample.test"))
    strict = Site("s", "k", b"x" * 16, (Eid.parse("10.1.0.0/16"),), False)
    assert strict.may_register(Eid.parse("10.1.0.0/16"))
    assert not strict.may_register(Eid.parse("10.1.2.0/24"))


def _random_prefixes(rng: random.Random, n: int, family: int) -> list[str]:
    width = 32 if family == 4 else 128
    out = set()
    while len(out) < n:
        length = rng.choice([8, 12, 16, 20, 24, 28, 32] if family == 4 else [32, 48, 56, 64, 128])
        value = rng.getrandbits(width) & (((1 << length) - 1) << (width - length))
        if family == 4:
            value = (10 << 24) | (value & 0x00FFFFFF) if length >= 8 else value
            value &= ((1 << length) - 1) << (width - length)
        addr = ipaddress.ip_address(value)
        out.add(f"{addr}/{length}")
    return sorted(out)


@pytest.mark.parametrize("family", [4, 6])
def test_longest_prefix_match_and_negative_answers_agree_with_brute_force(family):
    rng = random.Random(family)
    prefixes = _random_prefixes(rng, 400, family)
    index = PrefixIndex()
    for p in prefixes:
        index.put(m(p))
    index.put(m(prefixes[0], 3))  # another instance id must not leak into instance 0
    nets = [ipaddress.ip_network(p) for p in prefixes]
    width = 32 if family == 4 else 128
    hits = misses = 0
    for _ in range(1500):
        if family == 4:
            value = (10 << 24) | rng.getrandbits(24) if rng.random() < 0.8 else rng.getrandbits(32)
        else:
            base = nets[rng.randrange(len(nets))]
            value = int(base.network_address) | (rng.getrandbits(width - base.prefixlen) if rng.random() < 0.7 else 0)
            if rng.random() < 0.3:
                value = rng.getrandbits(128)
        addr = ipaddress.ip_address(value)
        covering = [n for n in nets if addr in n]
        found, negative = index.lookup_address(str(addr))
        if covering:
            hits += 1
            assert found is not None and found.eid.text == max(covering, key=lambda n: n.prefixlen).compressed
            assert negative is None
        else:
            misses += 1
            assert found is None
            neg = ipaddress.ip_network(negative)
            assert addr in neg
            assert not any(n.subnet_of(neg) or neg.subnet_of(n) for n in nets if n.version == neg.version)
            if neg.prefixlen > 0:  # maximal: the next larger prefix would hold a registration
                parent = neg.supernet()
                assert any(n.subnet_of(parent) for n in nets)
    assert hits > 100 and misses > 100


def test_removal_and_other_instance():
    index = PrefixIndex()
    index.put(m("10.1.0.0/16"))
    index.put(m("10.1.2.0/24"))
    assert index.lookup_address("10.1.2.3")[0].eid.text == "10.1.2.0/24"
    index.remove(Eid.parse("10.1.2.0/24"))
    assert index.lookup_address("10.1.2.3")[0].eid.text == "10.1.0.0/16"
    found, negative = index.lookup_address("10.1.2.3", instance_id=9)
    assert found is None and negative == "0.0.0.0/0"
    index.remove(Eid.parse("10.1.0.0/16"))
    assert index.lookup_address("10.1.2.3") == (None, "0.0.0.0/0")


def test_priority_order_and_weighted_choice():
    mapping = Mapping(Eid.parse("app.example.test"), (
        Locator("192.0.2.1", priority=2, weight=100), Locator("192.0.2.2", priority=1, weight=30),
        Locator("192.0.2.3", priority=1, weight=70), Locator("192.0.2.4", priority=0, reachable=False),
        Locator("192.0.2.5", priority=255)))
    assert [loc.address for loc in mapping.ordered()] == ["192.0.2.3", "192.0.2.2", "192.0.2.1"]
    rng = random.Random(1)
    counts = Counter(mapping.choose(rng).address for _ in range(20000))
    assert set(counts) == {"192.0.2.2", "192.0.2.3"}
    assert 0.66 < counts["192.0.2.3"] / 20000 < 0.74
