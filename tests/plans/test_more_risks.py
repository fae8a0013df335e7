"""Risks the three-tier example does not plant by itself: a mapping to a network the target lacks, an
exhausted pool, an address outside its target subnet."""

from __future__ import annotations

from tests.plans.servers import edit_yaml
from vmferry.plans import build_plan, load_app


def risks(example) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in build_plan(load_app(example), "dc1", "cloud").risks:
        out.setdefault(r.rule, []).append(r.message)
    return out


def test_mapping_to_a_network_the_target_does_not_declare(example):
    edit_yaml(example, lambda d: d["moves"][0]["networks"].update(back="no-such-net"))
    found = risks(example)
    assert any("back" in m and "no-such-net" in m for m in found["VMF-APP-002"])


def test_exhausted_pool(example):
    def shrink(doc):
        doc["sites"]["cloud"]["networks"]["data"]["pool"] = "10.20.3.100-10.20.3.101"  # .100 is in use
    edit_yaml(example, shrink)
    found = risks(example)
    assert found["VMF-APP-005"] and "data" in found["VMF-APP-005"][0]


def test_override_outside_the_target_subnet(example):
    edit_yaml(example, lambda d: d["moves"][0].update(overrides={"app": {0: "192.0.2.77"}}))
    found = risks(example)
    assert any("192.0.2.77" in m and "outside" in m for m in found["VMF-APP-008"])
