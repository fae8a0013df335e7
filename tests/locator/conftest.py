"""Fixtures of the locator tests: real servers on 127.0.0.1, free ports, temporary directories.

``LocatorProcess`` runs ``vmferry locator serve`` as a child process (so tests can kill -9 it);
``named`` is a BIND 9 primary accepting TSIG-signed updates; ``etcd_cluster`` has three members.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.locator.serving import spawn_locator
from vmferry.locator.client import LocatorClient
from vmferry.locator.devservers import EtcdCluster, Named, free_port, free_tcp_udp_port

EAST_SECRET = "east-secret-0123456789abcdef"
WEST_SECRET = "west-secret-0123456789abcdef"
ZONE = "example.test"

SITES = f"""
[[site]]
name = "east"
key_id = "east-1"
secret = "{EAST_SECRET}"
prefixes = ["10.1.0.0/16", "2001:db8:1::/48", "{ZONE}"]
instance_ids = [0, 7]

[[site]]
name = "west"
key_id = "west-1"
secret_file = "west.key"
prefixes = ["10.2.0.0/16"]
more_specifics = false
"""


def write_sites(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "west.key").write_text(WEST_SECRET + "\n")
    path = directory / "sites.toml"
    path.write_text(SITES)
    return path


class LocatorProcess:
    """``vmferry locator serve`` in a child process."""

    def __init__(self, workdir: Path, *, etcd: list[str] | None = None, dns: bool = True,
                 push_file: Path | None = None, max_body: int | None = None,
                 etcd_prefix: str | None = None) -> None:
        self.workdir = workdir
        self.sites = write_sites(workdir)
        self.http_port = free_port()
        self.dns_port = free_tcp_udp_port() if dns else None
        self.argv = [sys.executable, "-m", "vmferry.cli.main", "locator", "serve",
                     "--sites", str(self.sites), "--http", f"127.0.0.1:{self.http_port}"]
        if etcd:
            self.argv += ["--etcd", ",".join(etcd), "--etcd-prefix", etcd_prefix or f"/t-{os.urandom(4).hex()}/"]
        else:
            self.argv += ["--db", str(workdir / "locator.db")]
        if dns:
            self.argv += ["--dns", f"127.0.0.1:{self.dns_port}"]
        if push_file:
            self.argv += ["--dns-push", str(push_file)]
        if max_body:
            self.argv += ["--max-body", str(max_body)]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30.0) -> LocatorProcess:
        self.proc = spawn_locator(self.argv, self.workdir, self.url, timeout)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)

    def restart(self) -> LocatorProcess:
        self.kill(signal.SIGTERM)
        return self.start()

    def client(self, site: str = "east") -> LocatorClient:
        if site == "east":
            return LocatorClient(self.url, key_id="east-1", secret=EAST_SECRET)
        if site == "west":
            return LocatorClient(self.url, key_id="west-1", secret=WEST_SECRET)
        return LocatorClient(self.url)


@pytest.fixture(scope="session")
def etcd_cluster(tmp_path_factory):
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd"), size=3).start()
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    server = Named(tmp_path_factory.mktemp("named"), zone=ZONE).start()
    yield server
    server.close()


@pytest.fixture
def sqlite_locator(tmp_path):
    proc = LocatorProcess(tmp_path).start()
    yield proc
    proc.kill(signal.SIGTERM)
