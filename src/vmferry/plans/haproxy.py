"""HAProxy's runtime API: read ``show servers state`` and move, add or enable pool members.

The address is ``unix:/path/to/admin.sock`` or ``host:port`` (a stats socket at ``level admin``).
``show servers state`` prints HAProxy's server-state file format (a version line, a ``#`` header
naming the columns, one line per server), which is parsed by column name. ``add server`` needs
HAProxy ≥ 2.4 (Debian 12 ships 2.6); servers added at run time are lost when HAProxy restarts
unless its configuration is updated too.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from vmferry.errors import PlanError


@dataclass(frozen=True)
class ServerState:
    backend: str
    name: str
    address: str
    port: int
    admin_state: int

    @property
    def in_maintenance(self) -> bool:
        return bool(self.admin_state & 0x1 or self.admin_state & 0x4)  # forced or configured maintenance


class RuntimeApi:
    def __init__(self, address: str, *, timeout: float = 5.0) -> None:
        self.address = address
        self.timeout = timeout

    def command(self, line: str) -> str:
        if "\n" in line:
            raise PlanError(f"HAProxy command must be one line: {line!r}")
        try:
            if self.address.startswith("unix:") or self.address.startswith("/"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                target: object = self.address.removeprefix("unix:")
            else:
                host, _, port = self.address.rpartition(":")
                sock = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
                target = (host.strip("[]"), int(port))
            with sock:
                sock.settimeout(self.timeout)
                sock.connect(target)
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while True:
                    data = sock.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
        except (OSError, ValueError) as exc:
            raise PlanError(f"cannot reach HAProxy runtime API at {self.address}: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def servers(self, backend: str) -> dict[str, ServerState]:
        text = self.command(f"show servers state {backend}")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        header = next((ln for ln in lines if ln.startswith("#")), None)
        if header is None:
            raise PlanError(f"HAProxy {self.address}: backend {backend!r}: {text.strip()[:120] or 'no answer'}")
        cols = header.lstrip("#").split()
        out = {}
        for ln in lines:
            if ln.startswith("#") or len(ln.split()) != len(cols):
                continue
            row = dict(zip(cols, ln.split(), strict=True))
            if row.get("be_name") != backend:
                continue
            out[row["srv_name"]] = ServerState(backend, row["srv_name"], row["srv_addr"], int(row["srv_port"]),
                                               int(row["srv_admin_state"]))
        return out

    def _expect(self, line: str, *, ok: tuple[str, ...]) -> str:
        answer = self.command(line).strip()
        if not any(word.lower() in answer.lower() for word in ok) and answer:
            raise PlanError(f"HAProxy {self.address} refused {line!r}: {answer.splitlines()[0][:160]}")
        return answer

    def ensure_member(self, backend: str, server: str, address: str, port: int, *, check: bool) -> str:
        """Make ``backend/server`` point at ``address:port`` and be enabled. Returns what was done."""
        current = self.servers(backend).get(server)
        done = []
        if current is None:
            self._expect(f"add server {backend}/{server} {address}:{port}{' check' if check else ''}",
                         ok=("New server registered",))
            done.append("added")
            if check:
                self._expect(f"enable health {backend}/{server}", ok=())
        elif (current.address, current.port) != (address, port):
            self._expect(f"set server {backend}/{server} addr {address} port {port}",
                         ok=("changed", "no need"))
            done.append(f"moved from {current.address}:{current.port}")
        current = self.servers(backend).get(server)
        if current is None or (current.address, current.port) != (address, port):
            raise PlanError(f"HAProxy {self.address}: {backend}/{server} is not at {address}:{port} after the update")
        if current.in_maintenance:
            self._expect(f"enable server {backend}/{server}", ok=())
            done.append("enabled")
        return ", ".join(done) or "already in place"
