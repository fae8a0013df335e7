"""Opening files without leaving a directory and without waiting on anything that is not a file.

:func:`open_regular` opens a path a user named (an ``.ova``, a descriptor): with ``O_NONBLOCK`` so a
FIFO or a device never blocks, then ``fstat`` so anything but a regular file is refused before one
byte is read. :class:`Root` is an OVF package directory opened once: every file below it is opened
``openat``-style, one path component at a time relative to the directory's descriptor, each with
``O_NOFOLLOW`` — a symbolic link anywhere in the path (a sub-folder that is a link out of the package,
a linked disk) is refused, whatever it points at; ``..`` and absolute names never get that far.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from vmferry.errors import MissingFile, PackageError, UnsafeArchive

_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
_DIR = os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY | os.O_NOFOLLOW


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def _blocking(fd: int) -> int:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    return fd


def _regular_or_close(fd: int, where: str) -> int:
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise PackageError(f"is {_kind(st.st_mode)}, not a regular file; refused", path=where)
    return _blocking(fd)


def open_regular(path: str | os.PathLike) -> int:
    """A read-only descriptor of the regular file ``path`` (links in a user-given path are followed);
    a FIFO, device, socket or directory is refused without being waited on."""
    path = os.fspath(path)
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError as exc:
        raise MissingFile("no such file or directory", path=path) from exc
    except OSError as exc:
        raise PackageError(f"cannot open: {exc.strerror}", path=path) from exc
    return _regular_or_close(fd, path)


class Root:
    """A package directory, opened once; files below it are opened without following any link.

    Use as a context manager or call :meth:`close`. ``name`` arguments are ``/``-separated relative
    names (already checked by :func:`vmferry.package.base.safe_href`)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.path = os.path.abspath(os.fspath(directory))
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
        except OSError as exc:
            raise PackageError(f"cannot open the package directory: {exc.strerror}", path=self.path) from exc

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def where(self, name: str) -> str:
        return os.path.join(self.path, *name.split("/"))

    def _parts(self, name: str) -> list[str]:
        parts = name.split("/")
        if not name or any(p in ("", ".", "..") for p in parts) or "\x00" in name:
            raise UnsafeArchive(f"'{name}' is not a plain relative name inside the package", path=self.path)
        return parts

    def _walk(self, parts: list[str], name: str) -> int | None:
        """A descriptor of the directory holding the last component (caller closes it unless it is
        the root's), or None when a folder on the way does not exist."""
        cur = self.fd
        for i, comp in enumerate(parts[:-1]):
            try:
                nxt = os.open(comp, _DIR, dir_fd=cur)
            except FileNotFoundError:
                nxt = None
            except OSError as exc:
                if cur != self.fd:
                    os.close(cur)
                folder = "/".join(parts[:i + 1])
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeArchive(f"'{name}': '{folder}' is a symbolic link or not a folder; package "
                                        "files must lie inside the package", path=self.where(name)) from exc
                raise PackageError(f"cannot open '{folder}': {exc.strerror}", path=self.where(name)) from exc
            if cur != self.fd:
                os.close(cur)
            if nxt is None:
                return None
            cur = nxt
        return cur

    def lstat(self, name: str) -> os.stat_result | None:
        """The ``lstat`` of ``name`` below the root (None when absent); links in folders on the way
        are refused."""
        parts = self._parts(name)
        parent = self._walk(parts, name)
        if parent is None:
            return None
        try:
            return os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PackageError(f"cannot read: {exc.strerror}", path=self.where(name)) from exc
        finally:
            if parent != self.fd:
                os.close(parent)

    def regular_size(self, name: str) -> int | None:
        """The size of the regular file ``name`` (None when absent); a link or any other kind of
        file is refused."""
        st = self.lstat(name)
        if st is None:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeArchive(f"is {_kind(st.st_mode)}, not a regular file inside the package; refused",
                                path=self.where(name))
        return st.st_size

    def open(self, name: str) -> int:
        """A read-only descriptor of the regular file ``name`` below the root."""
        parts = self._parts(name)
        parent = self._walk(parts, name)
        if parent is None:
            raise MissingFile("is not in the package", path=self.where(name))
        try:
            fd = os.open(parts[-1], _READ | os.O_NOFOLLOW, dir_fd=parent)
        except FileNotFoundError as exc:
            raise MissingFile("is not in the package", path=self.where(name)) from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafeArchive("is a symbolic link; package files must be regular files inside the "
                                    "package", path=self.where(name)) from exc
            raise PackageError(f"cannot open: {exc.strerror}", path=self.where(name)) from exc
        finally:
            if parent != self.fd:
                os.close(parent)
        return _regular_or_close(fd, self.where(name))

    def listdir(self, folder: str) -> list[str]:
        """Names in ``folder`` ("" for the root), links on the way refused; [] when absent."""
        if not folder:
            return sorted(os.listdir(self.fd))
        parts = self._parts(folder + "/x")
        parent = self._walk(parts, folder)
        if parent is None:
            return []
        try:
            return sorted(os.listdir(parent))
        finally:
            if parent != self.fd:
                os.close(parent)
