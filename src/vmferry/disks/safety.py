"""Safe outputs: temporary names, atomic renames, free-space checks and SIGTERM handling.

Every file vmferry produces is written under a hidden temporary name in the destination
directory and renamed into place only when complete (:func:`atomic_output`). An exception,
Ctrl-C or, inside :func:`sigterm_as_interrupt`, SIGTERM, removes the temporary file, so nothing
partial and nothing stray is left behind. Before the rename the data is flushed to the disk
(``fsync``), and the directory after it: an output that has its final name is whole on the disk
too, even after a power loss (as ``qemu-img convert`` flushes its output before it ends). While the
output is written, a thread starts the writeback of what is there every 0.2 s
(``sync_file_range(SYNC_FILE_RANGE_WRITE)``: it starts the disk writes and waits for nothing), so
the flush overlaps the work and the final ``fsync`` waits only for the last part.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator

from vmferry.errors import DiskError, UsageError
from vmferry.tools.files import fsync_dir

TEMP_MARK = ".vmferry-tmp-"


def check_output_path(path: str | os.PathLike, *, force: bool = False) -> str:
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path) and not force:
        raise UsageError(f"{path} exists (use --force to overwrite)", path=path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise UsageError(f"the directory {parent} does not exist", path=path)
    return path


SYNC_FILE_RANGE_WRITE = 2
WRITEBACK_EVERY = 0.2


def _sync_file_range():
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return fn


class EarlyWriteback:
    """A thread that starts the writeback of the files at ``path`` (a file, or the files of a directory)
    every :data:`WRITEBACK_EVERY` seconds until closed. Best effort: where ``sync_file_range`` is missing
    it does nothing, and the final ``fsync`` does all the flushing."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._start = _sync_file_range()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vmferry-writeback", daemon=True)

    def __enter__(self) -> EarlyWriteback:
        if self._start is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _files(self) -> list[str]:
        if os.path.isdir(self.path):
            out = []
            for root, _dirs, names in os.walk(self.path):
                out += [os.path.join(root, n) for n in names]
            return out
        return [self.path]

    def _run(self) -> None:
        while not self._stop.wait(WRITEBACK_EVERY):
            for name in self._files():
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                except OSError:
                    continue
                try:
                    self._start(fd, 0, 0, SYNC_FILE_RANGE_WRITE)
                finally:
                    os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, force: bool = False) -> Iterator[str]:
    """Yield a temporary path next to ``path``; rename it to ``path`` when the block succeeds."""
    final = check_output_path(path, force=force)
    parent, base = os.path.split(final)
    while True:  # like mkstemp, but with the usual 0666 & ~umask permissions of a new file
        temp = os.path.join(parent, f".{base}{TEMP_MARK}{secrets.token_hex(4)}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        with EarlyWriteback(temp):
            yield temp
        flush(temp)
        os.replace(temp, final)
        fsync_dir(parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def flush(path: str) -> None:
    """fsync the file ``path``, or every file under the directory ``path`` and the directories (symlinks
    are not followed)."""
    if os.path.islink(path):
        return
    if os.path.isdir(path):
        for name in os.listdir(path):
            flush(os.path.join(path, name))
        fsync_dir(path)
    elif os.path.isfile(path):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, force: bool = False) -> Iterator[str]:
    """Yield a temporary directory next to ``path``; its files are moved into ``path`` at the end.

    Used for outputs made of several files (monolithicFlat VMDK, unpacked OVAs). ``path`` may be
    an existing empty directory.
    """
    final = os.path.abspath(os.fspath(path))
    if os.path.exists(final) and (not os.path.isdir(final) or (os.listdir(final) and not force)):
        raise UsageError(f"{final} exists and is not an empty directory (use --force)", path=final)
    parent = os.path.dirname(final)
    if not os.path.isdir(parent):
        raise UsageError(f"the directory {parent} does not exist", path=final)
    temp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}{TEMP_MARK}", dir=parent)
    try:
        with EarlyWriteback(temp):
            yield temp
        flush(temp)
        os.makedirs(final, exist_ok=True)
        for name in os.listdir(temp):
            os.replace(os.path.join(temp, name), os.path.join(final, name))
        os.rmdir(temp)
        fsync_dir(final)          # the entries moved in; their data was flushed above
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_files(path: str | os.PathLike, *, force: bool = False) -> Iterator[str]:
    """Yield a temporary directory next to ``path`` for an output made of several files (a
    monolithicFlat VMDK and its extent); they are moved beside ``path`` when the block succeeds."""
    final = check_output_path(path, force=force)
    parent = os.path.dirname(final)
    temp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}{TEMP_MARK}", dir=parent)
    try:
        with EarlyWriteback(temp):
            yield temp
        names = os.listdir(temp)
        clash = [n for n in names if os.path.lexists(os.path.join(parent, n))]
        if clash and not force:
            raise UsageError(f"{os.path.join(parent, clash[0])} exists (use --force to overwrite)")
        flush(temp)
        for name in names:
            os.replace(os.path.join(temp, name), os.path.join(parent, name))
        os.rmdir(temp)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def free_space(directory: str | os.PathLike) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def ensure_free_space(directory: str | os.PathLike, needed: int, *, what: str = "the output") -> None:
    """Fail before writing anything when ``directory`` has less than ``needed`` bytes free."""
    directory = os.fspath(directory)
    have = free_space(directory)
    if have < needed:
        raise DiskError(f"not enough free space for {what}: needs about {_mib(needed)} MiB, "
                        f"{_mib(have)} MiB free", path=directory)


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f}"


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; handled like Ctrl-C so every ``finally`` and cleanup runs."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (then restored)."""
    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
