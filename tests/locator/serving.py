"""Start ``vmferry locator serve`` in a child process and wait until its HTTP API answers (shared by the
locator and the application-plan tests)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


def spawn_locator(argv: list[str], workdir: Path, url: str, timeout: float = 30.0) -> subprocess.Popen:
    """Run ``argv`` with its output in ``workdir/serve.log``; return once ``url``/v1/status answers 200."""
    log = open(workdir / "serve.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"locator exited: {(workdir / 'serve.log').read_text()[-2000:]}")
        try:
            if httpx.get(url + "/v1/status", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError("locator did not start")
