"""libguestfs adapter: one appliance per guest, driven through libguestfs' Python binding.

:class:`Session` starts the appliance over one disk image (its format given explicitly, never guessed),
runs libguestfs inspection, mounts the guest's file systems (read-only for inspection, read-write for
repair) and offers the few calls vmferry needs; every libguestfs error becomes a :class:`GuestError`.
Launching the appliance is the slow part (about 20 s under TCG), so an inspection or a repair starts it
once; a repair and the inspection that follows it share one (:func:`vmferry.guest.collect.inspect_session`).

The appliance runs with ``LIBGUESTFS_BACKEND=direct`` (no libvirtd needed) and, unless the caller's
environment says otherwise, ``LIBGUESTFS_BACKEND_SETTINGS=force_tcg``: hardware KVM is not usable
on the machines vmferry is tested on. The binding is Debian's ``python3-guestfs``, loaded from its own
directory when vmferry runs in a virtualenv without system packages (:func:`binding`).
"""

from __future__ import annotations

import os
from pathlib import Path

from vmferry.errors import GuestError
from vmferry.tools import debian_binding


def guestfs_env() -> dict[str, str]:
    """The environment libguestfs (and its tools, in tests) run with."""
    return {
        "LIBGUESTFS_BACKEND": os.environ.get("LIBGUESTFS_BACKEND", "direct"),
        "LIBGUESTFS_BACKEND_SETTINGS": os.environ.get("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg"),
    }


# ---- the libguestfs Python binding (read-write sessions: guest repair) ----------------------------

def binding():
    """The ``guestfs`` module: importable as is, or Debian's ``python3-guestfs`` loaded from its own
    directory when vmferry runs in a virtualenv without system packages."""
    return debian_binding.load("guestfs", "libguestfsmod", package="python3-guestfs", error=GuestError)


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
        self.roots: list[str] = []
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
            self.root, self.roots = roots[0], list(roots)
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

    def attempt(self, name: str, *args, default=None, **kwargs):
        """A libguestfs call whose failure is an answer (``default``), not an error."""
        try:
            return self._call(name, *args, **kwargs)
        except GuestError:
            return default

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
