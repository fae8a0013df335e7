"""What burst keeps: the copies of a component at a site and the policy's decisions.

Plain dataclasses, JSON in and out (the record of a component lives in
``<state>/burst/<app>.<component>.json``, see :mod:`vmferry.burst.store`). A copy is recorded (state
``launching``) *before* anything of it exists, with every resource it will own, so a run that fails or is
killed leaves a record from which :func:`vmferry.burst.scale.remove_copy` removes all of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from vmferry.errors import BurstError

COPY_STATES = ("launching", "serving", "draining")


@dataclass
class BurstCopy:
    name: str                       # libvirt domain name, also the HAProxy server name
    index: int                      # 1, 2, ... (never reused while the record lives)
    hostname: str
    machine_id: str
    mac: str
    address: str                    # without prefix
    prefix: int
    network: str                    # the libvirt network its NIC joins
    rundir: str                     # overlays, OVF environment ISO, console log
    overlays: list[str] = field(default_factory=list)
    point_id: str = ""
    state: str = "launching"
    created_at: str = ""
    serving_at: str = ""
    server: str = ""                # backend/server registered in HAProxy ("" until added)
    dns: list[list[str]] = field(default_factory=list)     # [name, type] rrsets holding its address
    eid: str = ""                   # locator EID registered for it ("" until registered)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Decision:
    at: str                         # ISO time
    metric: str
    value: float | None             # None: the metric could not be read
    servers: int                    # serving servers the value was computed over
    copies: int                     # copies before the decision
    action: str                     # add, remove, hold
    count: int = 0                  # copies added or removed
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BurstRecord:
    app: str
    component: str
    site: str
    copies: list[BurstCopy] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)     # newest last, at most KEEP_DECISIONS
    last_change: float = 0.0        # wall-clock seconds of the last add/remove (cooldown)
    next_index: int = 1

    def serving(self) -> list[BurstCopy]:
        return [c for c in self.copies if c.state == "serving"]

    def to_dict(self) -> dict:
        return {"app": self.app, "component": self.component, "site": self.site,
                "copies": [c.to_dict() for c in self.copies], "decisions": [d.to_dict() for d in self.decisions],
                "last_change": self.last_change, "next_index": self.next_index}

    @classmethod
    def from_dict(cls, data: dict, *, path: str) -> BurstRecord:
        try:
            copies = [_build(BurstCopy, c) for c in data.get("copies", [])]
            decisions = [_build(Decision, d) for d in data.get("decisions", [])]
            return cls(str(data["app"]), str(data["component"]), str(data["site"]), copies, decisions,
                       float(data.get("last_change", 0.0)), int(data.get("next_index", 1)))
        except (KeyError, TypeError, ValueError) as exc:
            raise BurstError(f"the burst record is damaged: {exc}", path=path) from exc


def _build(cls, data: dict):
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}")
    return cls(**data)
