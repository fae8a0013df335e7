"""What the burst copies join, for the tests: a stand-in for the component's production server (a local
HTTP server), HAProxy in front of it, BIND for the zone, the locator, and a bounded load generator.
Everything on 127.0.0.1, free ports."""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.locator.serving import spawn_locator
from tests.plans.servers import start_haproxy
from vmferry.locator.devservers import free_port

LOCATOR_SECRET = "burst-secret-0123456789abcdef"


class Primary:
    """The component's own server (what runs at the production site), answering like the test guest."""

    def __init__(self) -> None:
        body = b"vmferry test service primary\n"

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):                                      # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass                     # HAProxy's health check closes before reading the body

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HAProxy:
    def __init__(self, workdir: Path, primary_port: int) -> None:
        self.workdir = workdir
        self.socket = workdir / "admin.sock"
        self.port = free_port()
        self.primary_port = primary_port
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> HAProxy:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(f"""global
    stats socket {self.socket} mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 3
    option redispatch
frontend www
    bind 127.0.0.1:{self.port}
    default_backend web
backend web
    balance roundrobin
    option httpchk GET /
    server primary 127.0.0.1:{self.primary_port} check inter 500
""")
        self.proc = start_haproxy(cfg, self.socket, timeout)
        return self

    def servers(self) -> list[str]:
        from vmferry.plans.haproxy import RuntimeApi

        return sorted(RuntimeApi(f"unix:{self.socket}").servers("web"))

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Locator:
    def __init__(self, workdir: Path, names: str, prefix: str) -> None:
        self.workdir, self.names, self.prefix = workdir, names, prefix
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Locator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        sites = self.workdir / "sites.toml"
        sites.write_text(f'[[site]]\nname = "cloud"\nkey_id = "cloud-1"\nsecret = "{LOCATOR_SECRET}"\n'
                         f'prefixes = ["{self.prefix}", "{self.names}"]\n')
        argv = [sys.executable, "-m", "vmferry.cli.main", "locator", "serve", "--sites", str(sites), "--http",
                f"127.0.0.1:{self.port}", "--db", str(self.workdir / "locator.db")]
        self.proc = spawn_locator(argv, self.workdir, self.url, 30.0)
        return self

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


class LoadGenerator:
    """At most ``total`` GET requests to 127.0.0.1:``port`` at ``rate`` per second (changeable), each on
    its own connection; counts answers per instance (the page names it) and errors."""

    def __init__(self, port: int, *, rate: float, total: int, workers: int = 4) -> None:
        self.port, self.rate, self.total, self.workers = port, rate, total, workers
        self.sent = 0
        self.by_instance: Counter = Counter()
        self.first_seen: dict[str, float] = {}
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _take(self) -> bool:
        with self._lock:
            if self.sent >= self.total or self._stop.is_set():
                return False
            self.sent += 1
            return True

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            if not self._take():
                return
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                resp = conn.getresponse()
                body = resp.read().decode("utf-8", "replace").strip()
                if resp.status != 200 or not body.startswith("vmferry test service "):
                    raise RuntimeError(f"status {resp.status}: {body[:80]!r}")
                name = body.removeprefix("vmferry test service ")
                with self._lock:
                    self.by_instance[name] += 1
                    self.first_seen.setdefault(name, time.monotonic())
            except (OSError, http.client.HTTPException, RuntimeError) as exc:
                with self._lock:
                    self.errors.append(str(exc))
            finally:
                conn.close()
            pause = self.workers / max(self.rate, 0.01) - (time.monotonic() - t)
            if pause > 0:
                self._stop.wait(pause)

    def start(self) -> LoadGenerator:
        for _ in range(self.workers):
            th = threading.Thread(target=self._run, daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def stop(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(timeout=15)
