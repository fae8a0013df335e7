"""Draw the application, its surroundings and the planned changes with Graphviz (``dot -Tsvg``).

Components are boxes labelled with old → new addresses (changed ones in orange), services are
ellipses (red when they have no counterpart at the target), load-balancer pools and DNS names
are notes; edges are dependencies, pool membership and DNS targets. Node ids are stable
(``c_<component>``, ``s_<service>``, ``p_<pool>``, ``d_<n>``) and become SVG ``<title>`` s.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from vmferry.errors import PlanError
from vmferry.plans.model import App
from vmferry.plans.plan import Plan
from vmferry.tools.proc import run


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(app: App, plan: Plan) -> str:
    lines = [f"digraph {_q(app.name)} {{", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];',
             f"  label={_q(f'{app.name}: {plan.source} -> {plan.target}')};"]
    missing = {s.service for s in plan.services if s.new is None}
    for comp in app.components.values():
        nics = [n for n in plan.nics if n.component == comp.name]
        rows = [comp.name] + [f"{n.source_network}->{n.target_network or '?'}: {n.old_address or 'dhcp'} -> "
                              f"{n.new_address or '?'}" for n in nics]
        changed = any(n.changed or n.source_network != n.target_network for n in nics)
        style = 'color="darkorange", penwidth=2' if changed else ""
        lines.append(f"  {_q('c_' + comp.name)} [shape=box, label={_q(chr(10).join(rows))}{', ' + style if style else ''}];")
    for svc in app.services.values():
        change = next((s for s in plan.services if s.service == svc.name), None)
        label = f"{svc.name} ({svc.kind})\n{svc.endpoint}"
        attrs = "shape=ellipse"
        if svc.name in missing:
            label += "\nNO COUNTERPART"
            attrs += ', color="red", fontcolor="red", penwidth=2'
        elif change and change.new and change.new != change.old:
            label += f"\n-> {change.new}"
            attrs += ', color="darkorange"'
        lines.append(f"  {_q('s_' + svc.name)} [{attrs}, label={_q(label)}];")
    for pool in app.pools:
        lines.append(f"  {_q('p_' + pool.name)} [shape=note, label={_q(f'pool {pool.name} :{pool.port}')}];")
        for m in pool.members:
            lines.append(f'  {_q("p_" + pool.name)} -> {_q("c_" + m)} [style=dashed, label="member"];')
    for i, d in enumerate(plan.dns):
        color = ', color="darkorange"' if d.changed else ""
        label = f"{d.name} {d.type}\n{', '.join(d.old)} -> {', '.join(d.new)}" if d.changed else f"{d.name} {d.type}"
        lines.append(f"  d_{i} [shape=cds, label={_q(label)}{color}];")
        rec = next(r for r in app.dns_records if r.name == d.name and r.type == d.type)
        for t in rec.targets:
            node = f"c_{t}" if rec.target_kind == "component" else f"p_{t}" if rec.target_kind == "pool" else None
            if node:
                lines.append(f"  d_{i} -> {_q(node)} [style=dotted];")
    for dep in app.dependencies:
        dst = f"c_{dep.target}" if dep.target_kind == "component" else f"s_{dep.target}"
        color = ', color="red"' if dep.target_kind == "service" and dep.target in missing else ""
        label = f"{dep.port}/{dep.protocol}" if dep.port else dep.protocol
        lines.append(f"  {_q('c_' + dep.source)} -> {_q(dst)} [label={_q(label)}{color}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_svg(app: App, plan: Plan, path: str | os.PathLike) -> None:
    """Render the graph to ``path`` (temp file in the same directory, then rename)."""
    path = Path(path)
    svg = run(["dot", "-Tsvg"], input=to_dot(app, plan), timeout=60).stdout
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
        with os.fdopen(fd, "w") as fh:
            fh.write(svg)
        os.replace(tmp, path)
    except OSError as exc:
        raise PlanError(f"cannot write the graph: {exc.strerror}", path=path) from exc
