"""Safe outputs: temporary names, atomic renames, free-space checks and SIGTERM handling.

Every file vmferry produces is written under a hidden temporary name in the destination
directory and renamed into place only when complete (:func:`atomic_output`). An exception,
Ctrl-C or, inside :func:`sigterm_as_interrupt`, SIGTERM, removes the temporary file, so nothing
partial and nothing stray is left behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Iterator

from vmferry.errors import DiskError, UsageError

TEMP_MARK = ".vmferry-tmp-"


def check_output_path(path: str | os.PathLike, *, force: bool = False) -> str:
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path) and not force:
        raise UsageError(f"{path} exists (use --force to overwrite)", path=path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise UsageError(f"the directory {parent} does not exist", path=path)
    return path


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
        yield temp
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


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
        yield temp
        os.makedirs(final, exist_ok=True)
        for name in os.listdir(temp):
            os.replace(os.path.join(temp, name), os.path.join(final, name))
        os.rmdir(temp)
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
        yield temp
        names = os.listdir(temp)
        clash = [n for n in names if os.path.lexists(os.path.join(parent, n))]
        if clash and not force:
            raise UsageError(f"{os.path.join(parent, clash[0])} exists (use --force to overwrite)")
        for name in names:
            os.replace(os.path.join(temp, name), os.path.join(parent, name))
        os.rmdir(temp)
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
