"""Run the real ``vmferry`` command in a child under the limits of the hostile suite: 20 s of wall time
and 1 GiB of address space (``RLIMIT_AS``, set by a tiny launcher in the child itself, so no
``preexec_fn`` runs in a threaded parent). The whole process group is killed on timeout, qemu-img
children included.

``guestfish`` is found first in ``tests/hostile/bin``: a stand-in that records every call in the file
named by ``VMFERRY_HOSTILE_GUESTFISH_LOG`` and fails at once. No hostile input may reach guest
inspection, so any recorded call fails the case (a real appliance failing under the memory limit
would hide that, and would cost seconds per run). qemu-img and everything else are the real tools."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

TIMEOUT_S = 20.0
STAND_INS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VMFERRY_DEBUG", None)
    env.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
    env["PATH"] = STAND_INS + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env
MEMORY_BYTES = 1 << 30

_LAUNCHER = (
    "import resource, runpy, sys\n"
    "resource.setrlimit(resource.RLIMIT_AS, ({mem}, {mem}))\n"
    "sys.argv = ['vmferry'] + sys.argv[1:]\n"
    "runpy.run_module('vmferry', run_name='__main__', alter_sys=True)\n"
)


@dataclass
class Outcome:
    argv: list[str]
    returncode: int | None      # None: killed on timeout
    stdout: bytes
    stderr: bytes
    seconds: float

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")


def run_limited(argv: list[str], *, cwd: str, timeout: float = TIMEOUT_S,
                memory: int = MEMORY_BYTES, env: dict[str, str] | None = None) -> Outcome:
    env = child_env(env)
    cmd = [sys.executable, "-c", _LAUNCHER.format(mem=memory), *argv]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    else:
        try:  # grandchildren left behind (qemu-img...) go too
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return Outcome(argv, code, out, err, time.monotonic() - start)


class ForkServer:
    """A running :mod:`tests.hostile.forkserver`; :meth:`run` is :func:`run_limited` through it."""

    def __init__(self) -> None:
        env = child_env()
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.hostile.forkserver"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        ready = self.proc.stdout.readline()
        if '"ready"' not in ready:
            raise RuntimeError(f"fork server did not start: {ready!r}")

    def run(self, argv: list[str], *, cwd: str, timeout: float = TIMEOUT_S, memory: int = MEMORY_BYTES,
            env: dict[str, str] | None = None) -> Outcome:
        import json

        request = {"argv": argv, "cwd": cwd, "timeout": timeout, "memory": memory, "env": env or {}}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        return Outcome(argv, answer["returncode"], answer["stdout"].encode("latin-1"),
                       answer["stderr"].encode("latin-1"), answer["seconds"])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
