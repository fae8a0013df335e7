"""Proof that a recovered VM works: its guest agent answers and its health checks pass.

Each check is one attempt with a short timeout; :func:`prove` repeats the attempts of every VM of a
boot group until each one has proved itself, has stopped (its domain shut off: no point waiting), or
has run out of its own time. The checks run from where vmferry runs — the host side of the isolated
network — so they see the guests as the target site's clients would.

The time between a guest serving and vmferry seeing it is vmferry's own share of the RTO, so a round of
attempts must stay short while a guest boots: a VM with a guest agent has its network checks tried only
once its agent answered (before, a TCP connect to a guest whose network is not up waits for ARP —
seconds — and leaves the host's neighbour entry retrying once a second: the proof came ~1 s after the
guest served, bench/recover.py), and on its last attempt (their results explain a failure). Connects
give up after :data:`CONNECT_TIMEOUT` (on the site's own network a guest that is up answers in
milliseconds; the next round tries again); an answer, once connected, gets :data:`ATTEMPT_TIMEOUT`.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vmferry.errors import VmferryError
from vmferry.recovery.model import AppCheck, Probe

ATTEMPT_TIMEOUT = 3.0
CONNECT_TIMEOUT = 0.5
TAIL_LINES = 40
TAIL_BYTES = 64 * 1024


@dataclass
class CheckResult:
    what: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0            # since the VM (or the application checks) started

    def to_dict(self) -> dict:
        return {"what": self.what, "ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 3)}


def tcp_attempt(host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, f"connected to {host}:{port}"
    except TimeoutError:
        return False, f"{host}:{port}: no answer within {timeout:g} s"
    except OSError as exc:
        return False, f"{host}:{port}: {exc.strerror or exc}"


def http_attempt(host: str, port: int, path: str, status: int = 0, contains: str = "",
                 timeout: float = ATTEMPT_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT) -> tuple[bool, str]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.sock = socket.create_connection((host, port), timeout=connect_timeout)
        conn.sock.settimeout(timeout)
        conn.request("GET", path or "/", headers={"User-Agent": "vmferry-recovery-proof"})
        resp = conn.getresponse()
        body = resp.read(65536).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        return False, f"http://{host}:{port}{path}: {getattr(exc, 'strerror', None) or exc}"
    finally:
        conn.close()
    good = resp.status == status if status else 200 <= resp.status < 400
    if good and contains and contains not in body:
        return False, f"http://{host}:{port}{path}: {resp.status}, body lacks {contains!r}"
    return good, f"http://{host}:{port}{path}: {resp.status}"


def probe_attempt(probe: Probe, host: str) -> tuple[bool, str]:
    if probe.kind == "tcp":
        return tcp_attempt(host, probe.port)
    return http_attempt(host, probe.port, probe.path, probe.status)


def agent_attempt(conn, domain: str) -> tuple[bool, str]:
    """One ``guest-ping`` through libvirt (the agent answers ``{"return": {}}``)."""
    try:
        answer = conn.agent_command(domain, json.dumps({"execute": "guest-ping"}), timeout=int(ATTEMPT_TIMEOUT))
    except VmferryError as exc:
        return False, str(exc)
    try:
        ok = "return" in json.loads(answer)
    except (ValueError, TypeError):
        ok = False
    return ok, f"guest-ping answered {answer.strip()[:80]}"


def console_tail(log: str | Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a serial console log (at most 64 KiB read)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Proving:
    """One VM being proved: filled in by :func:`prove`."""

    vm: str
    domain: str
    address: str | None
    probes: tuple[Probe, ...]
    agent: bool
    timeout: float
    started: float                               # monotonic time of its start
    agent_result: CheckResult | None = None
    results: dict[str, CheckResult] = field(default_factory=dict)
    proven_at: float | None = None               # monotonic
    failure: str = ""

    @property
    def done(self) -> bool:
        return self.proven_at is not None or bool(self.failure)

    def last_details(self) -> str:
        parts = []
        if self.agent and (self.agent_result is None or not self.agent_result.ok):
            parts.append(f"agent: {self.agent_result.detail if self.agent_result else 'not tried'}")
        parts += [f"{r.what}: {r.detail}" for r in self.results.values() if not r.ok]
        return "; ".join(parts)


def prove(conn, items: list[Proving], *, poll: float = 1.0, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> None:
    """Attempt every check of every item until each one is proved, stopped or out of time."""
    while True:
        pending = [p for p in items if not p.done]
        if not pending:
            return
        for p in pending:
            _attempt(conn, p, clock)
        if any(not p.done for p in items):
            sleep(poll)


def _attempt(conn, p: Proving, clock) -> None:
    now = clock()
    try:
        active = conn.info(p.domain).active
    except VmferryError as exc:
        p.failure = f"domain {p.domain} is gone: {exc}"
        return
    if not active:
        p.failure = f"domain {p.domain} stopped before it proved itself"
        return
    if p.agent and (p.agent_result is None or not p.agent_result.ok):
        ok, detail = agent_attempt(conn, p.domain)
        p.agent_result = CheckResult("guest agent", ok, detail, clock() - p.started)
    last = now - p.started >= p.timeout
    if p.agent and not p.agent_result.ok and not last:
        return                                   # its network checks once the agent answers (module text)
    for probe in p.probes:
        key = probe.describe()
        if key in p.results and p.results[key].ok:
            continue
        if p.address is None:
            p.results[key] = CheckResult(key, False, "the VM has no target address to check", 0.0)
            continue
        ok, detail = probe_attempt(probe, p.address)
        p.results[key] = CheckResult(key, ok, detail, clock() - p.started)
    agent_ok = not p.agent or (p.agent_result is not None and p.agent_result.ok)
    if agent_ok and all(key in p.results and p.results[key].ok for key in (q.describe() for q in p.probes)):
        p.proven_at = clock()
        return
    if last:
        p.failure = f"not proved within {p.timeout:g} s ({p.last_details()})"


def run_app_checks(checks: tuple[AppCheck, ...], *, poll: float = 1.0, clock=time.monotonic,
                   sleep=time.sleep) -> list[CheckResult]:
    """The application's checks, in order, each retried until it passes or its timeout passes."""
    out = []
    for check in checks:
        start = clock()
        while True:
            if check.kind == "tcp":
                ok, detail = tcp_attempt(check.host, check.port)
            else:
                ok, detail = http_attempt(check.host, check.port, check.path, check.status, check.contains)
            if ok or clock() - start >= check.timeout:
                out.append(CheckResult(check.name, ok, detail, clock() - start))
                break
            sleep(poll)
        if not ok:
            break                                # the ones after a failed check are not run
    return out
