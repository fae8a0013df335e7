"""The surroundings of a failed-over application: DNS, load-balancer pools, firewall ruleset, locator.

The steps are the application move plan's (:func:`vmferry.plans.plan.build_plan` from the protection
group's source site to its target site), applied by the same code as ``vmferry plan --apply``
(:func:`vmferry.plans.apply.apply_plan`: RFC 2136 updates with TSIG, HAProxy's runtime API, the locator
client, the nftables ruleset checked with ``nft -c``) with its own journal, so a step done is not done
again. Then each step is **verified** by reading the server back: the DNS server answers exactly the
planned values, HAProxy's backend holds the member at its target address, the locator resolves the EID
to the new locator, the ruleset file holds the planned text and ``nft -c`` accepts it.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

from vmferry.errors import VmferryError


@dataclass
class SurroundingStep:
    id: str
    kind: str                      # dns, lb, locator, firewall
    summary: str
    status: str                    # applied, skipped (journal), failed, pending
    detail: str = ""
    verified: bool = False
    verify_detail: str = ""
    apply_seconds: float = 0.0     # the change sent to the server (0 when the journal had it)
    verify_seconds: float = 0.0    # the read-back

    def to_dict(self) -> dict:
        return asdict(self)


def apply_surroundings(move_plan, site, journal: str | os.PathLike, *, say=None) -> list[SurroundingStep]:
    """Apply the plan's steps at ``site`` (its journal at ``journal``), then verify each one applied."""
    from vmferry.plans.apply import apply_plan

    say = say or (lambda _m: None)
    by_id = {s.id: s for s in move_plan.steps}
    report = apply_plan(move_plan, site, journal, progress=lambda r: say(f"{r.id}: {r.status} {r.detail}"))
    out = []
    for r in report.results:
        step = by_id[r.id]
        item = SurroundingStep(r.id, step.kind, step.summary, r.status, r.detail, apply_seconds=r.seconds)
        if r.status in ("applied", "skipped"):
            start = time.monotonic()
            try:
                item.verify_detail = VERIFIERS[step.kind](step, site)
                item.verified = True
            except VmferryError as exc:
                item.verify_detail = str(exc)
            item.verify_seconds = time.monotonic() - start
        out.append(item)
    return out


def _verify_dns(step, site) -> str:
    from vmferry.plans.dnsupdate import current

    p = step.params
    have = current(site.dns, p["name"], p["type"])
    if have != sorted(p["values"]):
        raise _mismatch(f"DNS {p['name']} {p['type']} answers {', '.join(have) or 'nothing'}, "
                        f"not {', '.join(sorted(p['values']))}")
    return f"{p['name']} {p['type']} answers {', '.join(have)}"


def _verify_lb(step, site) -> str:
    from vmferry.plans.haproxy import RuntimeApi

    p = step.params
    have = RuntimeApi(site.lb.runtime).servers(p["backend"]).get(p["server"])
    if have is None or (have.address, have.port) != (p["address"], p["port"]) or have.in_maintenance:
        where = "missing" if have is None else f"at {have.address}:{have.port}" + \
            (" in maintenance" if have.in_maintenance else "")
        raise _mismatch(f"HAProxy {p['backend']}/{p['server']} is {where}, not at {p['address']}:{p['port']}")
    return f"{p['backend']}/{p['server']} at {have.address}:{have.port}"


def _verify_locator(step, site) -> str:
    from vmferry.locator.client import LocatorClient

    cfg, p = site.locator, step.params
    with LocatorClient(cfg.url, key_id=cfg.key_id, secret=cfg.secret) as client:
        res = client.resolve(p["eid"], instance_id=p["instance_id"])
    have = [loc.address for loc in res.mapping.locators] if res.mapping else []
    if have != [p["locator"]]:
        raise _mismatch(f"locator resolves {p['eid']} to {', '.join(have) or 'nothing'}, not {p['locator']}")
    return f"{p['eid']} resolves to {p['locator']}"


def _verify_firewall(step, site) -> str:
    from vmferry.plans.nft import check_ruleset

    path = step.params["path"]
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise _mismatch(f"cannot read the ruleset {path}: {exc.strerror}") from exc
    if text != step.params["text"]:
        raise _mismatch(f"the ruleset {path} is not the one planned")
    check_ruleset(path)
    return f"{path} accepted by nft -c"


def _mismatch(message: str) -> VmferryError:
    from vmferry.errors import RecoveryError

    return RecoveryError(message)


VERIFIERS = {"dns": _verify_dns, "lb": _verify_lb, "locator": _verify_locator, "firewall": _verify_firewall}
