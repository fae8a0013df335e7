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
import tempfile
from collections.abc import Sequence
from pathlib import Path

from vmferry.errors import GuestError, ToolFailed
from vmferry.tools.proc import run, which

_PID = re.compile(r"GUESTFISH_PID=(\d+)")
_SEP = "@@vmferry-batch@@"


def _quote(arg: str) -> str:
    """Quote one argument for guestfish's command parser."""
    if arg and all(c.isalnum() or c in "/._-=:+,@" for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'



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

    def __init__(self, disks: Sequence[str | os.PathLike], *, formats: Sequence[str] | None = None,
                 readonly: bool = True, timeout: float = 900):
        self.disks = [os.fspath(d) for d in disks]
        self.formats = list(formats) if formats else [None] * len(self.disks)
        for d in self.disks:
            if not os.path.exists(d):
                raise GuestError("no such disk image", path=d)
        self.readonly = readonly
        self.timeout = timeout
        self.pid: str | None = None

    def __enter__(self) -> Appliance:
        argv = [which("guestfish"), "--listen"]
        if self.readonly:
            argv.append("--ro")
        for d, fmt in zip(self.disks, self.formats, strict=True):
            # an explicit format: libguestfs must not guess it from a (possibly hostile) raw image
            argv += [f"--format={fmt}" if fmt else "--format", "-a", d]
        # The forked guestfish server keeps the standard streams it was given: hand it files, not the
        # runner's pipes, or the runner would wait for the server to exit.
        with tempfile.TemporaryDirectory(prefix="vmferry-gfs-") as tmp:
            out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            try:
                run(["sh", "-c", 'o=$1; e=$2; shift 2; exec "$@" >"$o" 2>"$e" </dev/null', "sh", out, err, *argv],
                    env=guestfs_env(), timeout=120)
            except ToolFailed as exc:
                detail = open(err, errors="replace").read().strip() if os.path.exists(err) else str(exc)
                raise GuestError(f"cannot start libguestfs: {' '.join(detail.split())}", path=self.disks[0]) from exc
            with open(out, errors="replace") as fh:
                stdout = fh.read()
        m = _PID.search(stdout)
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

    def batch(self, commands: Sequence[Sequence[str]]) -> list[str]:
        """Run several commands in one round trip; a command that fails yields "" (not an error).

        Each remote call costs a process start and a round trip to the appliance (about half a second
        under TCG), so inspections send their commands in batches.
        """
        if not commands:
            return []
        if not self.pid:
            raise GuestError("libguestfs appliance is not running")
        script = []
        for i, cmd in enumerate(commands):
            script.append(f"echo {_SEP}{i}")
            script.append("-" + " ".join(_quote(a) for a in cmd))
        script.append(f"echo {_SEP}end")
        res = run(["guestfish", f"--remote={self.pid}"], input="\n".join(script) + "\n", env=guestfs_env(),
                  timeout=self.timeout, check=False)
        outputs = [""] * len(commands)
        current: int | None = None
        chunks: list[str] = []
        for line in res.stdout.splitlines():
            if line.startswith(_SEP):
                if current is not None:
                    outputs[current] = "\n".join(chunks)
                tag = line[len(_SEP):]
                current = int(tag) if tag.isdigit() else None
                chunks = []
            else:
                chunks.append(line)
        return outputs

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


# ---- the libguestfs Python binding (read-write sessions: guest repair) ----------------------------

DEBIAN_BINDING_DIR = "/usr/lib/python3/dist-packages"   # Debian's python3-guestfs


def binding():
    """The ``guestfs`` module: importable as is, or Debian's ``python3-guestfs`` loaded from its own
    directory when vmferry runs in a virtualenv without system packages (the extension module's ABI tag
    must match this interpreter, which is checked by the import itself)."""
    import importlib
    import importlib.machinery
    import importlib.util
    import sys

    try:
        return importlib.import_module("guestfs")
    except ImportError:
        pass
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        ext = os.path.join(DEBIAN_BINDING_DIR, "libguestfsmod" + suffix)
        if os.path.exists(ext) and os.path.exists(os.path.join(DEBIAN_BINDING_DIR, "guestfs.py")):
            break
    else:
        raise GuestError("the libguestfs Python binding is not installed (Debian package python3-guestfs)")
    modules = {}
    for name, path in (("libguestfsmod", ext), ("guestfs", os.path.join(DEBIAN_BINDING_DIR, "guestfs.py"))):
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise GuestError("cannot load the libguestfs Python binding", path=path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except ImportError as exc:
            sys.modules.pop(name, None)
            raise GuestError(f"cannot load the libguestfs Python binding: {exc}", path=path) from exc
        modules[name] = module
    return modules["guestfs"]


class Session:
    """One libguestfs appliance over one disk image, through the Python binding, with the guest's file
    systems mounted (read-write unless ``readonly``) as libguestfs inspection finds them.

    Every libguestfs error becomes a :class:`GuestError` naming the image. Use as a context manager;
    leaving it unmounts everything and shuts the appliance down cleanly (so writes reach the image).
    """

    def __init__(self, image: str | os.PathLike, fmt: str, *, readonly: bool = False) -> None:
        self.image = os.fspath(image)
        if not os.path.isfile(self.image):
            raise GuestError("no such disk image", path=self.image)
        self.fmt, self.readonly = fmt, readonly
        self.g = None
        self.root = ""
        self.mountpoints: dict[str, str] = {}

    def __enter__(self) -> Session:
        gfs = binding()
        for key, value in guestfs_env().items():
            os.environ.setdefault(key, value)   # libguestfs reads its backend settings from the environment
        self.g = gfs.GuestFS(python_return_dict=True)
        try:
            self.g.add_drive_opts(self.image, format=self.fmt, readonly=self.readonly)
            self.g.launch()
            roots = self.g.inspect_os()
            if not roots:
                raise GuestError("no operating system found on the disk (libguestfs inspection)", path=self.image)
            self.root = roots[0]
            self.mountpoints = self.g.inspect_get_mountpoints(self.root)
            for mp in sorted(self.mountpoints, key=len):
                try:
                    (self.g.mount_ro if self.readonly else self.g.mount)(self.mountpoints[mp], mp)
                except RuntimeError:
                    if mp == "/":
                        raise
        except RuntimeError as exc:
            self.close()
            raise GuestError(f"libguestfs: {exc}", path=self.image) from exc
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.g is not None:
            g, self.g = self.g, None
            try:
                g.umount_all()
                g.shutdown()
            except RuntimeError:
                pass
            g.close()

    def _call(self, name: str, *args, **kwargs):
        if self.g is None:
            raise GuestError("libguestfs appliance is not running", path=self.image)
        try:
            return getattr(self.g, name)(*args, **kwargs)
        except RuntimeError as exc:
            what = args[0] if args and isinstance(args[0], str) else ""
            raise GuestError(f"libguestfs {name} {what}: {exc}".replace("  ", " "), path=self.image) from exc

    def inspect(self, field: str) -> str:
        """``inspect_get_<field>`` of the root (type, distro, major_version, hostname...)."""
        return str(self._call(f"inspect_get_{field}", self.root))

    def exists(self, path: str) -> bool:
        return bool(self._call("exists", path))

    def is_file(self, path: str) -> bool:
        return bool(self._call("is_file", path, followsymlinks=True))

    def is_dir(self, path: str) -> bool:
        return bool(self._call("is_dir", path, followsymlinks=True))

    def is_symlink(self, path: str) -> bool:
        return self.exists(path) and bool(self._call("is_symlink", path))

    def mode(self, path: str) -> int:
        """Permission bits of a file."""
        return int(self._call("statns", path)["st_mode"]) & 0o7777

    def readlink(self, path: str) -> str:
        return str(self._call("readlink", path))

    def ls(self, path: str) -> list[str]:
        return sorted(self._call("ls", path)) if self.is_dir(path) else []

    def find(self, path: str) -> list[str]:
        """Every name under a directory, relative to it."""
        return list(self._call("find", path)) if self.is_dir(path) else []

    def read(self, path: str) -> bytes:
        return bytes(self._call("read_file", path))

    def read_text(self, path: str) -> str | None:
        """The file's text, or None when there is no such regular file."""
        if not self.is_file(path):
            return None
        return self.read(path).decode("utf-8", "replace")

    def write(self, path: str, content: str | bytes, *, mode: int | None = None) -> None:
        """Write a file (created with ``mode``, default 0644; an existing file keeps its mode)."""
        data = content.encode() if isinstance(content, str) else content
        existed = self.exists(path)
        parent = path.rsplit("/", 1)[0] or "/"
        if not self.is_dir(parent):
            self._call("mkdir_p", parent)
        self._call("write", path, data)
        if not existed or mode is not None:
            self._call("chmod", mode if mode is not None else 0o644, path)

    def symlink(self, target: str, link: str) -> None:
        parent = link.rsplit("/", 1)[0] or "/"
        if not self.is_dir(parent):
            self._call("mkdir_p", parent)
        self._call("ln_sf", target, link)

    def remove(self, path: str) -> None:
        self._call("rm_f", path)

    def copy(self, src: str, dst: str) -> None:
        parent = dst.rsplit("/", 1)[0] or "/"
        if not self.is_dir(parent):
            self._call("mkdir_p", parent)
        self._call("cp", src, dst)

    def vfs_uuid(self, device: str) -> str:
        return str(self._call("vfs_uuid", device))

    def list_filesystems(self) -> dict[str, str]:
        return dict(self._call("list_filesystems"))

    def command(self, argv: list[str]) -> str:
        """Run a program of the guest (chrooted into it, inside the appliance)."""
        return str(self._call("command", argv))

    def download(self, path: str, dest: str | os.PathLike) -> Path:
        self._call("download", path, os.fspath(dest))
        return Path(dest)

    def upload(self, src: str | os.PathLike, path: str) -> None:
        """Replace the content of ``path`` (any size; an existing file keeps its mode)."""
        self._call("upload", os.fspath(src), path)
