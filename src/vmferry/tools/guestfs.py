"""libguestfs adapter: one ``guestfish --listen`` appliance per inspection, driven with ``--remote``.

Launching the appliance is the slow part (about 20 s under TCG), so an inspection starts it once and
sends every command to it. Commands whose output vmferry reads print either one value per line, or
the ``field: value`` records guestfish prints for structs; both are read by :func:`records`.

The appliance runs with ``LIBGUESTFS_BACKEND=direct`` (no libvirtd needed) and, unless the caller's
environment says otherwise, ``LIBGUESTFS_BACKEND_SETTINGS=force_tcg``: hardware KVM is not usable
on the machines vmferry is tested on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from vmferry.errors import GuestError, ToolFailed
from vmferry.tools.proc import run

_PID = re.compile(r"GUESTFISH_PID=(\d+)")


def guestfs_env() -> dict[str, str]:
    """The environment libguestfs tools are run with."""
    return {
        "LIBGUESTFS_BACKEND": os.environ.get("LIBGUESTFS_BACKEND", "direct"),
        "LIBGUESTFS_BACKEND_SETTINGS": os.environ.get("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg"),
    }


def records(text: str) -> list[dict[str, str]]:
    """Parse guestfish struct-list output (``[0] = {`` / ``field: value`` / ``}``) into dicts."""
    out: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        s = line.strip()
        if s.endswith("{") and s.startswith("["):
            current = {}
            out.append(current)
        elif s == "}":
            current = None
        elif current is not None and ": " in s:
            k, _, v = s.partition(": ")
            current[k] = v
        elif current is not None and s.endswith(":"):
            current[s[:-1]] = ""
    return out


def mapping(text: str) -> dict[str, str]:
    """Parse guestfish hash output (``key: value`` per line), as printed by ``inspect-get-mountpoints``."""
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(": ")
        if sep:
            out[k.strip()] = v.strip()
    return out


class Appliance:
    """A read-only libguestfs appliance over some disk images; use as a context manager."""

    def __init__(self, disks: Sequence[str | os.PathLike], *, readonly: bool = True, timeout: float = 900):
        self.disks = [os.fspath(d) for d in disks]
        for d in self.disks:
            if not os.path.exists(d):
                raise GuestError("no such disk image", path=d)
        self.readonly = readonly
        self.timeout = timeout
        self.pid: str | None = None

    def __enter__(self) -> Appliance:
        argv = ["guestfish", "--listen"]
        if self.readonly:
            argv.append("--ro")
        for d in self.disks:
            argv += ["-a", d]
        try:
            res = run(argv, env=guestfs_env(), timeout=60)
        except ToolFailed as exc:
            raise GuestError(f"cannot start libguestfs: {exc}", path=self.disks[0]) from exc
        m = _PID.search(res.stdout)
        if not m:
            raise GuestError("guestfish --listen did not print its PID", path=self.disks[0])
        self.pid = m.group(1)
        try:
            self.call("run")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.pid:
            pid, self.pid = self.pid, None
            run(["guestfish", f"--remote={pid}", "exit"], check=False, env=guestfs_env(), timeout=60)

    def call(self, *args: str, check: bool = True) -> str:
        """Run one guestfish command in the appliance and return its standard output."""
        if not self.pid:
            raise GuestError("libguestfs appliance is not running")
        try:
            res = run(["guestfish", f"--remote={self.pid}", "--", *args], env=guestfs_env(),
                      timeout=self.timeout)
        except ToolFailed as exc:
            if not check:
                return ""
            msg = " ".join((exc.stderr or str(exc)).split())
            raise GuestError(f"libguestfs {args[0]} failed: {msg}", path=self.disks[0]) from exc
        return res.stdout

    def lines(self, *args: str) -> list[str]:
        return [ln for ln in self.call(*args).splitlines() if ln.strip()]

    def exists(self, path: str) -> bool:
        return self.call("exists", path).strip() == "true"

    def is_file(self, path: str) -> bool:
        return self.call("is-file", path, "followsymlinks:true").strip() == "true"

    def download(self, path: str, dest: str | os.PathLike) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.call("download", path, os.fspath(dest))
        return dest
