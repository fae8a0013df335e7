"""Durable small files: a record replaced whole, never half-written, and still there after a power loss.

:func:`replace_file` writes the new content to a hidden temporary file beside the target
(``.<name>.tmp-<random>``), fsyncs it, renames it over the target and fsyncs the directory; on any
failure the temporary file is removed and the error (``OSError``) goes to the caller, which names what it
was writing. :func:`fsync_dir` makes a directory's entries (a rename, a new or removed file) durable;
some file systems cannot fsync a directory, which is then left as it is.
"""

from __future__ import annotations

import contextlib
import os
import secrets


def fsync_dir(path: str | os.PathLike) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace_file(path: str | os.PathLike, data: str | bytes, *, mode: int = 0o666) -> None:
    """Make ``data`` (text is written as UTF-8) the whole content of ``path``, atomically and durably."""
    path = os.fspath(path)
    parent, name = os.path.split(os.path.abspath(path))
    temp = os.path.join(parent, f".{name}.tmp-{secrets.token_hex(4)}")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_dir(parent)
