"""A copy joins and leaves what sends it traffic: HAProxy (runtime API), DNS (RFC 2136) and the locator.

HAProxy, through its runtime API (``level admin``), HAProxy ≥ 2.4:

* join: ``add server <backend>/<copy> <addr>:<port> [check]`` (a new server starts in maintenance),
  ``enable health`` when the pool has a health check, ``set server ... state ready``; then wait until
  ``show servers state`` says the server runs (operational state 2) — the copy already proved itself,
  so HAProxy's check only confirms what the run saw;
* leave: ``set server ... state drain`` (no new sessions, current ones finish), wait until its current
  sessions (``show stat`` ``scur``) reach 0 or the drain timeout, ``set server ... state maint``,
  ``shutdown sessions server`` when the timeout passed, ``del server`` (refused while connections are
  attached: retried a few seconds).

Every function is idempotent: a server that is not there is not removed again, one that is there is not
added again (:func:`join_pool` on a present server only makes it ready).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable

from vmferry.burst.model import BurstCopy
from vmferry.burst.target import BurstTarget
from vmferry.errors import BurstError, VmferryError
from vmferry.plans.haproxy import RuntimeApi

RUNNING = 2                              # srv_op_state of a server that is up


def api(target: BurstTarget) -> RuntimeApi:
    return RuntimeApi(target.site.lb.runtime)


def _say(rt: RuntimeApi, line: str, *, ok: tuple[str, ...] = ()) -> str:
    try:
        answer = rt.command(line).strip()
    except VmferryError as exc:
        raise BurstError(str(exc)) from exc
    if answer and (not ok or not any(w.lower() in answer.lower() for w in ok)):
        raise BurstError(f"HAProxy {rt.address} refused {line!r}: {answer.splitlines()[0][:160]}")
    return answer


def server_states(rt: RuntimeApi, backend: str) -> dict[str, dict[str, str]]:
    """server name -> the columns of ``show servers state`` (named by its header)."""
    try:
        text = rt.command(f"show servers state {backend}")
    except VmferryError as exc:
        raise BurstError(str(exc)) from exc
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = next((ln for ln in lines if ln.startswith("#")), None)
    if header is None:
        raise BurstError(f"HAProxy {rt.address}: backend {backend!r}: {text.strip()[:120] or 'no answer'}")
    cols = header.lstrip("#").split()
    out = {}
    for ln in lines:
        parts = ln.split()
        if not ln.startswith("#") and len(parts) == len(cols):
            row = dict(zip(cols, parts, strict=True))
            if row.get("be_name") == backend:
                out[row["srv_name"]] = row
    return out


def stats(rt: RuntimeApi, backend: str) -> dict[str, dict[str, str]]:
    """``show stat`` rows of ``backend``: svname (server names, ``BACKEND``) -> CSV columns."""
    try:
        text = rt.command("show stat")
    except VmferryError as exc:
        raise BurstError(str(exc)) from exc
    if not text.startswith("# "):
        raise BurstError(f"HAProxy {rt.address}: show stat answered {text.strip()[:120]!r}")
    rows = csv.DictReader(io.StringIO(text[2:]))
    return {r["svname"]: r for r in rows if r.get("pxname") == backend}


def join_pool(target: BurstTarget, copy: BurstCopy, *, timeout: float = 30.0,
              clock: Callable[[], float] = time.monotonic, sleep=time.sleep) -> None:
    rt, backend, pool = api(target), target.backend, target.pool
    name = f"{backend}/{copy.name}"
    check = pool.health is not None and pool.health.kind in ("tcp", "http")
    if copy.name not in server_states(rt, backend):
        _say(rt, f"add server {name} {copy.address}:{pool.port}{' check' if check else ''}",
             ok=("New server registered",))
        if check:
            _say(rt, f"enable health {name}")
    _say(rt, f"set server {name} state ready")
    end = clock() + timeout
    while True:
        row = server_states(rt, backend).get(copy.name)
        if row is not None and int(row.get("srv_op_state", 0)) == RUNNING:
            return
        if clock() >= end:
            raise BurstError(f"HAProxy does not see {name} ({copy.address}:{pool.port}) up within {timeout:g} s")
        sleep(0.2)


def drain(target: BurstTarget, copy: BurstCopy) -> bool:
    """Put the copy's server in drain state; False when HAProxy has no such server."""
    rt = api(target)
    if copy.name not in server_states(rt, target.backend):
        return False
    _say(rt, f"set server {target.backend}/{copy.name} state drain")
    return True


def current_sessions(target: BurstTarget, names: list[str]) -> dict[str, int]:
    rows = stats(api(target), target.backend)
    return {n: int(rows[n].get("scur") or 0) for n in names if n in rows}


def leave_pool(target: BurstTarget, copy: BurstCopy, *, forced: bool, clock=time.monotonic,
               sleep=time.sleep) -> bool:
    """Remove the copy's server from the backend (it should be drained). False when it was not there."""
    rt, name = api(target), f"{target.backend}/{copy.name}"
    if copy.name not in server_states(rt, target.backend):
        return False
    _say(rt, f"set server {name} state maint")
    if forced:
        _say(rt, f"shutdown sessions server {name}")
    end = clock() + 10.0
    while True:
        answer = rt.command(f"del server {name}").strip()
        if "deleted" in answer.lower() or copy.name not in server_states(rt, target.backend):
            return True
        if clock() >= end:
            raise BurstError(f"HAProxy {rt.address} refused to delete {name}: {answer.splitlines()[0][:160]}")
        sleep(0.2)


# ---- DNS -------------------------------------------------------------------------------------------

def dns_names(target: BurstTarget, copy: BurstCopy) -> list[list[str]]:
    """The [name, type] rrsets that hold the copy's address: the component's round-robin names and,
    with the policy's ``instance_dns``, the copy's own name."""
    if target.site.dns is None or not target.app.zone:
        return []
    rtype = "AAAA" if ":" in copy.address else "A"
    out = [[r.name, r.type] for r in target.round_robin if r.type == rtype]
    if target.policy and target.policy.instance_dns:
        out.append([target.instance_name(copy.hostname), rtype])
    return out


def _ttl(target: BurstTarget, name: str) -> int:
    return next((r.ttl for r in target.app.dns_records if r.name == name), 60)


def dns_add(target: BurstTarget, copy: BurstCopy, rrset: list[str]) -> None:
    from vmferry.plans.dnsupdate import current, ensure_rrset

    name, rtype = rrset
    try:
        values = current(target.site.dns, name, rtype)
        if copy.address not in values:
            ensure_rrset(target.site.dns, target.app.zone, name, rtype, values + [copy.address], _ttl(target, name))
    except VmferryError as exc:
        raise BurstError(f"DNS: {exc}") from exc


def dns_remove(target: BurstTarget, copy: BurstCopy, rrset: list[str]) -> bool:
    from vmferry.plans.dnsupdate import current, ensure_rrset

    name, rtype = rrset
    try:
        values = current(target.site.dns, name, rtype)
        if copy.address not in values:
            return False
        ensure_rrset(target.site.dns, target.app.zone, name, rtype, [v for v in values if v != copy.address],
                     _ttl(target, name))
    except VmferryError as exc:
        raise BurstError(f"DNS: {exc}") from exc
    return True


# ---- locator ---------------------------------------------------------------------------------------

def _locator_client(target: BurstTarget):
    from vmferry.locator.client import LocatorClient

    cfg = target.site.locator
    return LocatorClient(cfg.url, key_id=cfg.key_id, secret=cfg.secret)


def locator_add(target: BurstTarget, copy: BurstCopy, eid: str) -> None:
    from vmferry.locator.model import Locator

    cfg = target.site.locator
    try:
        with _locator_client(target) as client:
            client.register(eid, [Locator(copy.address)], ttl=cfg.ttl, expires_in=cfg.expires_in,
                            instance_id=cfg.instance_id)
    except VmferryError as exc:
        raise BurstError(f"locator: {exc}") from exc


def locator_remove(target: BurstTarget, eid: str) -> bool:
    cfg = target.site.locator
    try:
        with _locator_client(target) as client:
            found = client.resolve(eid, instance_id=cfg.instance_id).mapping
            if found is None or found.eid.text != eid:
                return False
            client.deregister(eid, instance_id=cfg.instance_id)
    except VmferryError as exc:
        raise BurstError(f"locator: {exc}") from exc
    return True
