"""Local cloud endpoints for the upload tests, started by the tests on 127.0.0.1 and stopped after them:

* :func:`moto` — moto's server (``moto_server``, from the ``moto[server]`` test dependency): S3 and EC2 as
  far as moto implements them, with moto's request recorder on, so a test can read the requests vmferry
  really sent (``requests()``);
* :func:`azurite` — Azurite, Microsoft's Azure Storage emulator (npm package ``azurite``), blob service only,
  in memory, telemetry off. It is installed once with ``npm install --prefix`` into the test cache
  (``$VMFERRY_TEST_CACHE/azurite``, default ``~/.cache/vmferry-test``; Node.js and npm are Debian packages
  in .ci/apt-packages.txt), under a lock, so a fresh CI machine gets it on first use.

The credentials are the emulators' own documented development values (moto accepts any key; Azurite's
``devstoreaccount1`` account and key are published in its README), never real secrets.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.guestimage.build import _locked, cache_dir

AZURITE_VERSION = "3.35.0"
# Azurite's well-known development account (README "Default Storage Account")
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
MOTO_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not listen on 127.0.0.1:{port} within {timeout} s: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Moto:
    endpoint: str
    recording: Path

    def env(self) -> dict[str, str]:
        return {**MOTO_KEYS, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def requests(self) -> list[dict]:
        """Every request the server received (moto's recorder), bodies decoded."""
        out = []
        if not self.recording.exists():
            return out
        for line in self.recording.read_text().splitlines():
            rec = json.loads(line)
            body = rec.get("body") or ""
            if rec.get("body_encoded") and body:
                body = base64.b64decode(body)
            rec["body"] = body if isinstance(body, bytes) else body.encode()
            out.append(rec)
        return out


@contextlib.contextmanager
def moto(workdir: Path) -> Iterator[Moto]:
    exe = shutil.which("moto_server") or os.path.join(os.path.dirname(sys.executable), "moto_server")
    port = free_port()
    rec, log = workdir / "moto-recording.jsonl", workdir / "moto.log"
    env = {**os.environ, "MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": os.fspath(rec)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env=env)
    try:
        _wait_port(port, proc, log)
        yield Moto(f"http://127.0.0.1:{port}", rec)
    finally:
        _stop(proc)


def azurite_bin() -> Path:
    """The ``azurite-blob`` script, installed once into the test cache with npm."""
    root = cache_dir() / "azurite"
    script = root / "node_modules" / ".bin" / "azurite-blob"
    if script.exists():
        return script
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed (Debian packages nodejs and npm, .ci/apt-packages.txt)")
    root.mkdir(parents=True, exist_ok=True)
    with _locked(cache_dir() / ".azurite.lock"):
        if not script.exists():
            subprocess.run([npm, "install", "--prefix", os.fspath(root), "--no-audit", "--no-fund",
                            f"azurite@{AZURITE_VERSION}"], check=True, capture_output=True, timeout=900)
    return script


@dataclass
class Azurite:
    port: int

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                f"BlobEndpoint=http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT};")

    def service(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)


@contextlib.contextmanager
def azurite(workdir: Path) -> Iterator[Azurite]:
    script = azurite_bin()
    port = free_port()
    log = workdir / "azurite.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([os.fspath(script), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                                 "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_port(port, proc, log)
        yield Azurite(port)
    finally:
        _stop(proc)
