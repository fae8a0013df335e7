"""Real servers for the plans tests, on 127.0.0.1, free ports, temporary directories.

BIND 9 comes from the locator's ``Named`` helper; here: HAProxy from Debian with an admin socket,
and ``vmferry locator serve`` in a child process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.locator.serving import spawn_locator
from vmferry.locator.devservers import free_port
from vmferry.tools.proc import which

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "three-tier"
ZONE = "shop.example.test"
LOCATOR_SECRET = "cloud-secret-0123456789abcdef"


def edit_yaml(path: Path, change) -> Path:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def start_haproxy(cfg: Path, socket: Path, timeout: float = 10.0) -> subprocess.Popen:
    """HAProxy in the foreground on the configuration file ``cfg`` (its log ``haproxy.log`` beside it),
    returned once it created its admin ``socket``."""
    log = open(cfg.parent / "haproxy.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([which("haproxy"), "-db", "-f", str(cfg)], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"haproxy exited: {(cfg.parent / 'haproxy.log').read_text()[-1000:]}")
        if socket.exists():
            return proc
        time.sleep(0.05)
    proc.terminate()
    proc.wait(timeout=10)
    raise RuntimeError("haproxy did not create its admin socket")


class HAProxy:
    """HAProxy with one backend ``web`` whose servers sit at the source (dc1) addresses."""

    def __init__(self, workdir: Path, servers: dict[str, str]) -> None:
        self.workdir = workdir
        self.socket = workdir / "admin.sock"
        self.port = free_port()
        self.admin_port = free_port()           # the same runtime API over TCP
        self.servers = servers
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> HAProxy:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = "\n".join(f"    server {n} {a}" for n, a in self.servers.items())
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(f"""global
    stats socket {self.socket} mode 600 level admin
    stats socket ipv4@127.0.0.1:{self.admin_port} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend www
    bind 127.0.0.1:{self.port}
    default_backend web
backend web
    balance roundrobin
    option httpchk GET /health
{lines}
""")
        self.proc = start_haproxy(cfg, self.socket, timeout)
        return self

    def command(self, line: str) -> str:
        import socket

        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode()

    def state(self, backend: str = "web") -> dict[str, str]:
        """server name -> addr:port from ``show servers state`` (columns named by its header)."""
        lines = [ln for ln in self.command(f"show servers state {backend}").splitlines() if ln.strip()]
        cols = next(ln for ln in lines if ln.startswith("#")).lstrip("#").split()
        rows = [dict(zip(cols, ln.split(), strict=True)) for ln in lines
                if not ln.startswith("#") and len(ln.split()) == len(cols)]
        return {r["srv_name"]: f"{r['srv_addr']}:{r['srv_port']}" for r in rows}

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Locator:
    """``vmferry locator serve`` (SQLite) in a child process; ``cloud-1`` may register 10.1.0.0/16."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Locator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        sites = self.workdir / "sites.toml"
        sites.write_text(f'[[site]]\nname = "cloud"\nkey_id = "cloud-1"\nsecret = "{LOCATOR_SECRET}"\n'
                         'prefixes = ["10.1.0.0/16"]\n')
        argv = [sys.executable, "-m", "vmferry.cli.main", "locator", "serve", "--sites", str(sites), "--http",
                f"127.0.0.1:{self.port}", "--db", str(self.workdir / "locator.db")]
        self.proc = spawn_locator(argv, self.workdir, self.url, timeout)
        return self

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)


