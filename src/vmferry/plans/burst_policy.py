"""The ``burst:`` policy of a component in the application manifest.

::

    components:
      web:
        burst: {metric: rate, up: 20, down: 2, min: 0, max: 2, step: 1, cooldown: 30}

``metric``: ``sessions``, ``queue`` or ``rate`` (see :class:`vmferry.plans.model.BurstPolicy`); ``down``
must be below ``up`` (a band, or the policy would add and remove copies in turn) and ``min`` ≤ ``max``.
"""

from __future__ import annotations

from typing import Any

from vmferry.plans.model import BURST_METRICS, BurstPolicy

KEYS = {"metric", "up", "down", "min", "max", "step", "cooldown", "pool", "drain_timeout", "instance_dns"}


def _number(ctx, value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ctx.fail(where, f"must be a number {low:g}..{high:g}, not {value!r}")
    return float(value)


def burst_policy(ctx, data: Any, w: str) -> BurstPolicy:
    """``ctx`` is the manifest reader's context (its ``fail``/``mapping``/``integer`` helpers)."""
    d = ctx.mapping(data, w, KEYS, {"metric", "up", "down", "max"})
    metric = str(d["metric"])
    if metric not in BURST_METRICS:
        raise ctx.fail(f"{w}.metric", f"must be one of {', '.join(BURST_METRICS)}, not {metric!r}")
    up = _number(ctx, d["up"], f"{w}.up", 0, 1e9)
    down = _number(ctx, d["down"], f"{w}.down", 0, 1e9)
    if down >= up:
        raise ctx.fail(f"{w}.down", f"must be below up ({down:g} >= {up:g})")
    top = ctx.integer(d["max"], f"{w}.max", 1, 64)
    low = ctx.integer(d.get("min", 0), f"{w}.min", 0, 64)
    if low > top:
        raise ctx.fail(f"{w}.min", f"must not exceed max ({low} > {top})")
    instance_dns = d.get("instance_dns", False)
    if not isinstance(instance_dns, bool):
        raise ctx.fail(f"{w}.instance_dns", f"must be true or false, not {instance_dns!r}")
    return BurstPolicy(metric=metric, up=up, down=down, max=top, min=low,
                       step=ctx.integer(d.get("step", 1), f"{w}.step", 1, 64),
                       cooldown=_number(ctx, d.get("cooldown", 60), f"{w}.cooldown", 0, 86400),
                       pool=ctx.name(d["pool"], f"{w}.pool") if d.get("pool") is not None else None,
                       drain_timeout=_number(ctx, d.get("drain_timeout", 60), f"{w}.drain_timeout", 0, 86400),
                       instance_dns=instance_dns)
