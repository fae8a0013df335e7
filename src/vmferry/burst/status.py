"""Burst copies per component and the policy's last decisions, for ``vmferry status``."""

from __future__ import annotations

from vmferry.burst import store

LAST_DECISIONS = 5


def burst_status(state, app: str | None = None) -> list[dict]:
    out = []
    for record in store.records(state):
        if app and record.app != app:
            continue
        out.append({"app": record.app, "component": record.component, "site": record.site,
                    "copies": [{"name": c.name, "hostname": c.hostname, "address": c.address, "mac": c.mac,
                                "state": c.state, "serving_at": c.serving_at, "server": c.server}
                               for c in record.copies],
                    "decisions": [d.to_dict() for d in record.decisions[-LAST_DECISIONS:]]})
    return out


def render(entries: list[dict]) -> list[str]:
    lines = []
    for e in entries:
        lines.append(f"{e['app']}/{e['component']}: {len(e['copies'])} burst copie(s) at {e['site']}")
        for c in e["copies"]:
            lines.append(f"  {c['name']}: {c['state']}, {c['address']} ({c['hostname']}, {c['mac']})")
        for d in e["decisions"]:
            value = "-" if d["value"] is None else f"{d['value']:g}"
            lines.append(f"  {d['at']} {d['action']}{' ' + str(d['count']) if d['count'] else ''}: "
                         f"{d['metric']}={value} over {d['servers']} server(s) — {d['reason']}")
    return lines
