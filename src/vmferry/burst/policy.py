"""The burst policy's control loop: read HAProxy's statistics, decide, scale, write the decision down.

Metrics (``show stat`` of the pool's backend):

* ``sessions``: current sessions of the backend per serving server (``scur`` / servers UP);
* ``queue``: requests queued in the backend (``qcur``), whatever the number of servers;
* ``rate``: new sessions per second of the backend over the last second (``rate``) per serving server.

Decision (:func:`decide`, pure): fewer copies than ``min`` → add up to ``min``; above ``up`` → add
``step`` (never beyond ``max``); below ``down`` with more than ``min`` copies, once ``cooldown`` seconds
passed since the last change → remove ``step`` (never below ``min``); otherwise hold. Every decision,
with the metric value that caused it, is kept in the component's burst record (the newest
:data:`vmferry.burst.store.KEEP_DECISIONS`).

:func:`watch` runs the loop for a bounded time (or number of rounds); each round reads, decides and
acts under the component's lock, so ``vmferry burst --add/--remove`` and the loop never interleave. A round
whose metric cannot be read (HAProxy down) holds and records why (value ``None``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vmferry.burst import register, scale, store
from vmferry.burst.model import Decision
from vmferry.burst.target import BurstTarget
from vmferry.errors import BurstError
from vmferry.plans.model import BurstPolicy


def read_metric(target: BurstTarget, metric: str) -> tuple[float, int]:
    """(value, serving servers) of ``metric`` for the target's pool."""
    rows = register.stats(register.api(target), target.backend)
    back = rows.get("BACKEND")
    if back is None:
        raise BurstError(f"HAProxy has no backend {target.backend!r}")
    servers = [r for n, r in rows.items() if n not in ("BACKEND", "FRONTEND") and r.get("status", "").startswith("UP")]
    up = max(1, len(servers))
    if metric == "queue":
        return float(back.get("qcur") or 0), len(servers)
    if metric == "sessions":
        return float(back.get("scur") or 0) / up, len(servers)
    return float(back.get("rate") or 0) / up, len(servers)


def decide(policy: BurstPolicy, value: float, copies: int, since_change: float) -> tuple[str, int, str]:
    """(action, count, reason) for ``value`` of the policy's metric with ``copies`` copies serving."""
    if copies < policy.min:
        return "add", policy.min - copies, f"{copies} copies, below min {policy.min}"
    if value > policy.up:
        room = policy.max - copies
        if room <= 0:
            return "hold", 0, f"{policy.metric} {value:g} > {policy.up:g} but already at max {policy.max}"
        n = min(policy.step, room)
        return "add", n, f"{policy.metric} {value:g} > up {policy.up:g}"
    if value < policy.down and copies > policy.min:
        if since_change < policy.cooldown:
            return "hold", 0, (f"{policy.metric} {value:g} < down {policy.down:g}, cooldown "
                               f"{policy.cooldown - since_change:.0f} s left")
        n = min(policy.step, copies - policy.min)
        return "remove", n, f"{policy.metric} {value:g} < down {policy.down:g} for the cooldown"
    return "hold", 0, f"{policy.metric} {value:g} within {policy.down:g}..{policy.up:g}"


@dataclass
class WatchResult:
    rounds: int = 0
    decisions: list[Decision] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    crossings: list[dict] = field(default_factory=list)   # timings of each scale-out (decision, launch, ...)

    def to_dict(self) -> dict:
        return {"rounds": self.rounds, "decisions": [d.to_dict() for d in self.decisions], "added": self.added,
                "removed": self.removed, "crossings": self.crossings}


def watch_round(target: BurstTarget, state, *, say=None, clock: Callable[[], float] = time.monotonic,
                wall: Callable[[], float] = time.time, result: WatchResult | None = None) -> Decision:
    """One round: read the metric, decide, act, record. Returns the decision."""
    policy = target.policy
    if policy is None:
        raise BurstError(f"{target.component} has no burst policy in the application manifest",
                         path=target.app.path)
    if target.pool is None:
        raise BurstError(f"{target.component} is in no load-balancer pool: there is no metric to watch")
    say = say or (lambda _m: None)
    result = result if result is not None else WatchResult()
    t_read = clock()
    with store.locked(state, target.app.name, target.component):
        record = scale.load_record(target, state)
        scale.clean_unfinished(target, record, state, say)
        copies = len(record.serving())
        try:
            value, servers = read_metric(target, policy.metric)
        except BurstError as exc:          # no decision without the metric; the round says why
            value, servers, action, count, reason = None, 0, "hold", 0, f"metric not read: {exc}"
        else:
            action, count, reason = decide(policy, value, copies, wall() - record.last_change)
        decision = Decision(at=datetime.now(UTC).isoformat(timespec="milliseconds"), metric=policy.metric,
                            value=None if value is None else round(value, 3), servers=servers, copies=copies,
                            action=action, count=count, reason=reason)
        record.decisions.append(decision)
        store.save(state, record)
        result.decisions.append(decision)
        if action != "hold":
            say(f"{action} {count}: {reason}")
        if action == "add":
            t_decided = clock()
            new = scale.add_locked(target, record, count, state, say, clock)
            result.added += [c.name for c in new]
            first = min(new, key=lambda c: c.timings.get("registration", 0))
            result.crossings.append({"decision": round(t_decided - t_read, 3),
                                     "launch": first.timings.get("launch", 0.0),
                                     "generalize": first.timings.get("generalize", 0.0),
                                     "boot_to_health": first.timings.get("boot_to_health", 0.0),
                                     "registration": first.timings.get("registration", 0.0),
                                     "total": round(clock() - t_read, 3), "copies": [c.name for c in new]})
        elif action == "remove":
            result.removed += scale.remove_locked(target, record, state, count, None, say, clock, time.sleep)
    return decision


def watch(target: BurstTarget, state, *, duration: float | None = None, rounds: int | None = None,
          interval: float = 1.0, say=None, clock: Callable[[], float] = time.monotonic, sleep=time.sleep,
          stop: Callable[[], bool] | None = None) -> WatchResult:
    """The bounded control loop: until ``duration`` seconds or ``rounds`` rounds (one of them needed)."""
    if duration is None and rounds is None:
        raise BurstError("the control loop needs a bound: a duration or a number of rounds")
    result = WatchResult()
    end = clock() + duration if duration is not None else None
    while True:
        watch_round(target, state, say=say, clock=clock, result=result)
        result.rounds += 1
        if (rounds is not None and result.rounds >= rounds) or (end is not None and clock() >= end) or \
                (stop is not None and stop()):
            return result
        sleep(interval)
