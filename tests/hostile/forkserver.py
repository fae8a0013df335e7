"""A fork server for the hostile matrix: one Python process imports vmferry once, then forks a child per
command; the child sets its limits (``RLIMIT_AS``), its own session and working directory, points
stdout/stderr at files and runs the real command-line entry point (``vmferry.cli.main.main``) exactly
as ``python -m vmferry`` does, then exits with its status. Thousands of runs cost milliseconds each
instead of a fresh interpreter's import time.

Requests and answers are JSON lines on a private pipe: ``{"argv", "cwd", "timeout", "memory", "env"}`` ->
``{"returncode" (null when killed on timeout), "stdout", "stderr" (latin-1 strings), "seconds"}``.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import sys
import tempfile
import time

PRELOAD = ("vmferry.validate", "vmferry.summary", "vmferry.check", "vmferry.conversion", "vmferry.targets.kvm",
           "vmferry.disks", "vmferry.disks.convert", "vmferry.disks.ova_read", "vmferry.disks.packdir",
           "vmferry.package.ova_writer", "vmferry.ovfenv", "vmferry.package.certificate", "cryptography.x509")


def _preload() -> None:
    from vmferry.cli.main import COMMANDS

    for module, _help in COMMANDS.values():
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - a command whose optional dependency is absent
            pass
    for module in PRELOAD:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001
            pass


def _child(req: dict, out_fd: int, err_fd: int, proto: int) -> None:
    os.close(proto)
    os.setsid()
    resource.setrlimit(resource.RLIMIT_AS, (req["memory"], req["memory"]))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    code = 70
    try:
        os.environ.update(req.get("env") or {})
        os.chdir(req["cwd"])
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from vmferry.cli.main import main

        code = main(list(req["argv"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BaseException:  # noqa: BLE001 - shown as a traceback, which the test reports
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _run(req: dict, proto: int) -> dict:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(req, out.fileno(), err.fileno(), proto)
        deadline = start + req["timeout"]
        code = None
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.005)
        seconds = time.monotonic() - start
        try:
            os.killpg(pid, signal.SIGKILL)  # anything it left running (qemu-img...)
        except (ProcessLookupError, PermissionError):
            pass
        out.seek(0)
        err.seek(0)
        return {"returncode": code, "stdout": out.read().decode("latin-1"), "stderr": err.read().decode("latin-1"),
                "seconds": seconds}


def serve() -> None:
    proto = os.dup(1)
    os.dup2(2, 1)  # nothing but answers goes to the protocol pipe
    _preload()
    os.write(proto, b'{"ready": true}\n')
    for line in sys.stdin:
        if not line.strip():
            continue
        answer = json.dumps(_run(json.loads(line), proto)) + "\n"
        os.write(proto, answer.encode())


if __name__ == "__main__":
    serve()
