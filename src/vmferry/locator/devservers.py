"""Local servers for tests, benchmarks and trying things out: an etcd cluster and a BIND primary.

Both run as child processes on 127.0.0.1 only, on free ports, with all their files in a directory
the caller owns, and stop when closed. Long-running daemons cannot go through
:func:`vmferry.tools.proc.run` (which waits for exit); the executable is still found with
:func:`vmferry.tools.proc.which` so a missing package gives the usual :class:`ToolMissing`.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from vmferry.errors import ToolFailed
from vmferry.tools.proc import which


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_udp_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (DNS servers want both)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise ToolFailed("no free port for TCP and UDP on 127.0.0.1")


def _stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class _Member:
    name: str
    client_port: int
    peer_port: int
    proc: subprocess.Popen | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


class EtcdCluster:
    """An etcd cluster of ``size`` members on 127.0.0.1 under ``workdir``."""

    def __init__(self, workdir: str | os.PathLike, size: int = 3) -> None:
        self.workdir = Path(workdir)
        self.exe = which("etcd")
        self.token = "vmferry-" + secrets.token_hex(4)
        self.members = [_Member(f"m{i}", free_port(), free_port()) for i in range(size)]

    @property
    def client_urls(self) -> list[str]:
        return [m.client_url for m in self.members]

    def _argv(self, m: _Member) -> list[str]:
        initial = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        return [self.exe, "--name", m.name, "--data-dir", str(self.workdir / m.name),
                "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", self.token, "--logger", "zap", "--log-level", "error",
                "--heartbeat-interval", "50", "--election-timeout", "500"]

    def start(self, timeout: float = 30.0) -> EtcdCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for m in self.members:
            self.start_member(m.name, wait=False)
        for m in self.members:
            self.wait_healthy(m.name, timeout)
        return self

    def start_member(self, name: str, *, wait: bool = True, timeout: float = 30.0) -> None:
        m = self._member(name)
        log = open(self.workdir / f"{m.name}.log", "ab")  # noqa: SIM115 - handed to the child
        m.proc = subprocess.Popen(self._argv(m), stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        log.close()
        if wait:
            self.wait_healthy(name, timeout)

    def stop_member(self, name: str) -> None:
        _stop(self._member(name).proc)

    def _member(self, name: str) -> _Member:
        return next(m for m in self.members if m.name == name)

    def wait_healthy(self, name: str, timeout: float = 30.0) -> None:
        m = self._member(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if m.proc is not None and m.proc.poll() is not None:
                raise ToolFailed(f"etcd member {name} exited with {m.proc.returncode}; see "
                                 f"{self.workdir / (m.name + '.log')}")
            try:
                if httpx.get(m.client_url + "/health", timeout=1).json().get("health") == "true":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        raise ToolFailed(f"etcd member {name} not healthy after {timeout} s")

    def close(self) -> None:
        for m in self.members:
            _stop(m.proc)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class Named:
    """A BIND 9 primary for one zone that accepts RFC 2136 updates signed with one TSIG key."""

    def __init__(self, workdir: str | os.PathLike, zone: str = "example.test",
                 key_name: str = "vmferry-update") -> None:
        self.workdir = Path(workdir)
        self.exe = which("named")
        self.zone = zone.rstrip(".")
        self.key_name = key_name
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.port = free_tcp_udp_port()
        self.proc: subprocess.Popen | None = None

    def _write_config(self) -> Path:
        d = self.workdir
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{self.zone}.db").write_text(
            f"$TTL 60\n@ IN SOA ns.{self.zone}. hostmaster.{self.zone}. 1 3600 600 86400 60\n"
            f"@ IN NS ns.{self.zone}.\nns IN A 127.0.0.1\n")
        conf = d / "named.conf"
        conf.write_text(f"""
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {self.port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ 127.0.0.1; }};
    allow-transfer {{ none; }};
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{self.key_name}" {{ algorithm hmac-sha256; secret "{self.secret}"; }};
zone "{self.zone}" {{
    type primary;
    file "{d}/{self.zone}.db";
    allow-update {{ key "{self.key_name}"; }};
}};
""")
        return conf

    def start(self, timeout: float = 20.0) -> Named:
        import dns.exception
        import dns.message
        import dns.query

        conf = self._write_config()
        log = open(self.workdir / "named.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen([self.exe, "-g", "-4", "-c", str(conf)], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        query = dns.message.make_query(self.zone + ".", "SOA")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ToolFailed(f"named exited with {self.proc.returncode}; see {self.workdir / 'named.log'}")
            try:
                if dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5).answer:
                    return self
            except (dns.exception.DNSException, OSError):
                pass
            time.sleep(0.1)
        raise ToolFailed(f"named did not answer within {timeout} s")

    def push_config_text(self) -> str:
        """A DNS push file (see :mod:`vmferry.locator.dns_push`) for this server."""
        return (f'zone = "{self.zone}"\nserver = "127.0.0.1:{self.port}"\n'
                f'[tsig]\nname = "{self.key_name}"\nalgorithm = "hmac-sha256"\nsecret = "{self.secret}"\n')

    def close(self) -> None:
        _stop(self.proc)

    def __enter__(self) -> Named:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
