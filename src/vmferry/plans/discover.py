"""Discovery help: turn observed connections into dependencies the manifest does not list yet.

Two inputs:

* a CSV of observed flows ``src,dst,port,proto`` (a header line is optional; ``dst`` and ``src``
  are addresses, ``port`` the server port);
* the output of ``ss -tn`` (with or without its header) captured on one component's VM.

For ``ss`` the direction of a connection is decided by the ports: a port the component listens on
(``ports:`` in the manifest, its load-balancer pool port, or a dependency port aimed at it) makes
the connection incoming; otherwise the side with an ephemeral port (32768-60999, Linux's default
range) is the client. Only outgoing connections from a component become suggestions.
"""

from __future__ import annotations

import csv
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from vmferry.errors import PlanError
from vmferry.plans.model import App

EPHEMERAL = range(32768, 61000)


@dataclass(frozen=True)
class Flow:
    src: str
    dst: str
    port: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class Suggestion:
    source: str                 # component
    target: str                 # component name, service name, or host address
    target_kind: str            # component, service, unknown
    port: int
    protocol: str
    seen: int                   # how many observations support it

    @property
    def yaml(self) -> str:
        if self.target_kind == "unknown":
            return (f"services: {{ svc-{self.target.replace('.', '-').replace(':', '-')}-{self.port}: "
                    f"{{ host: {self.target}, port: {self.port}, protocol: {self.protocol} }} }}  "
                    f"+ dependencies: - {{ from: {self.source}, to: service:..., port: {self.port} }}")
        to = f"service:{self.target}" if self.target_kind == "service" else self.target
        return f"- {{ from: {self.source}, to: {to}, port: {self.port}, protocol: {self.protocol} }}"


def _addr(text: str, where: str, path: str | os.PathLike) -> str:
    raw = text.strip().strip("[]").split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        raise PlanError(f"{where}: {text!r} is not an IP address", path=path) from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.compressed


def read_flows_csv(path: str | os.PathLike) -> list[Flow]:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read flows: {getattr(exc, 'strerror', None) or exc}", path=path) from exc
    flows = []
    for n, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if n == 1 and row[0].strip().lower() == "src":
            continue
        if len(row) != 4:
            raise PlanError(f"line {n}: expected src,dst,port,proto, got {len(row)} fields", path=path)
        port = row[2].strip()
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise PlanError(f"line {n}: bad port {port!r}", path=path)
        proto = row[3].strip().lower()
        if proto not in ("tcp", "udp"):
            raise PlanError(f"line {n}: protocol must be tcp or udp, not {proto!r}", path=path)
        flows.append(Flow(_addr(row[0], f"line {n}", path), _addr(row[1], f"line {n}", path), int(port), proto))
    return flows


def _split_endpoint(text: str, where: str, path) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise PlanError(f"{where}: {text!r} is not ADDRESS:PORT", path=path)
    return _addr(host, where, path), int(port)


def listening_ports(app: App, component: str) -> set[int]:
    ports = set(app.components[component].ports)
    ports |= {p.port for p in app.pools if component in p.members}
    ports |= {d.port for d in app.dependencies if d.target_kind == "component" and d.target == component and d.port}
    return ports


def read_ss(path: str | os.PathLike, app: App, component: str) -> list[Flow]:
    """Flows seen in an ``ss -tn`` capture taken on ``component``."""
    if component not in app.components:
        raise PlanError(f"unknown component {component!r} for the ss capture", path=path)
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read ss capture: {getattr(exc, 'strerror', None) or exc}", path=path) from exc
    listen = listening_ports(app, component)
    flows = []
    for n, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0] in ("State", "Recv-Q", "Netid"):
            continue
        if fields[0] == "tcp":          # `ss -tna` style with a Netid column
            fields = fields[1:]
        if len(fields) < 5 or not fields[1].isdigit():
            raise PlanError(f"line {n}: not an ss -tn line: {line.strip()[:80]!r}", path=path)
        if fields[0] not in ("ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT",
                             "CLOSE-WAIT", "LAST-ACK", "CLOSING"):
            continue
        (laddr, lport), (paddr, pport) = (_split_endpoint(fields[3], f"line {n}", path),
                                          _split_endpoint(fields[4], f"line {n}", path))
        if lport in listen:
            incoming = True
        elif pport in listen:
            incoming = False
        elif (lport in EPHEMERAL) != (pport in EPHEMERAL):
            incoming = pport in EPHEMERAL
        else:
            incoming = lport < pport
        flows.append(Flow(paddr, laddr, lport, "tcp") if incoming else Flow(laddr, paddr, pport, "tcp"))
    return flows


def suggest(app: App, flows: list[Flow]) -> list[Suggestion]:
    """Dependencies seen in ``flows`` that the manifest does not declare, most observed first."""
    by_addr = {nic.address: c.name for c in app.components.values() for nic in c.nics if nic.address}
    by_service = {(s.host, s.port): s.name for s in app.services.values()}
    declared = {(d.source, d.target, d.port) for d in app.dependencies}
    declared_any_port = {(d.source, d.target) for d in app.dependencies if d.port is None}
    counts: dict[tuple[str, str, str, int, str], int] = {}
    for f in flows:
        src = by_addr.get(f.src)
        if src is None or ipaddress.ip_address(f.dst).is_loopback:
            continue
        if f.dst in by_addr:
            target, kind = by_addr[f.dst], "component"
            if target == src:
                continue
        elif (f.dst, f.port) in by_service:
            target, kind = by_service[(f.dst, f.port)], "service"
        else:
            target, kind = f.dst, "unknown"
        if (src, target, f.port) in declared or (src, target) in declared_any_port:
            continue
        key = (src, target, kind, f.port, f.protocol)
        counts[key] = counts.get(key, 0) + 1
    out = [Suggestion(s, t, k, p, pr, n) for (s, t, k, p, pr), n in counts.items()]
    return sorted(out, key=lambda x: (-x.seen, x.source, x.target, x.port))
