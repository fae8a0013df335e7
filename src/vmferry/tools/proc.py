"""The one subprocess runner: every external tool vmferry calls goes through :func:`run`.

Failures become :class:`~vmferry.errors.ToolMissing` or :class:`~vmferry.errors.ToolFailed`, which
carry the argv, the exit code and the captured output. Tools that can print JSON are asked to, and
:func:`run_json` parses it; no adapter scrapes human-readable text.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vmferry.errors import ToolFailed, ToolMissing


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def which(tool: str) -> str:
    """Return the full path of ``tool`` or raise :class:`ToolMissing` naming the package to install."""
    found = shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.access(p, os.X_OK)), None)
    if not found:
        raise ToolMissing(f"{tool} is not installed (see .ci/apt-packages.txt for the Debian package)")
    return found


def run(argv: Sequence[str], *, check: bool = True, input: str | bytes | None = None,
        timeout: float | None = None, env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike | None = None) -> Result:
    """Run ``argv`` and capture its output as text.

    Raises :class:`ToolFailed` when ``check`` is true and the tool exits non-zero or times out.
    """
    argv = [os.fspath(a) for a in argv]
    exe = which(argv[0])
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        proc = subprocess.run([exe, *argv[1:]], input=input, capture_output=True,
                              text=not isinstance(input, bytes), timeout=timeout, env=full_env, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(f"{argv[0]} timed out after {timeout} s", argv=argv) from exc
    except OSError as exc:
        raise ToolFailed(f"{argv[0]} could not be started: {exc.strerror}", argv=argv) from exc
    stdout = proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode(errors="replace")
    stderr = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
    result = Result(argv, proc.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "")
        raise ToolFailed(f"{argv[0]} failed (exit {proc.returncode}): {last}", argv=argv,
                         returncode=proc.returncode, stdout=stdout, stderr=stderr)
    return result


def run_json(argv: Sequence[str], **kwargs) -> object:
    """Run a tool that prints JSON on standard output and return the parsed document."""
    result = run(argv, **kwargs)
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise ToolFailed(f"{argv[0]} printed output that is not JSON: {exc}", argv=list(argv),
                         returncode=result.returncode, stdout=result.stdout,
                         stderr=result.stderr) from exc
