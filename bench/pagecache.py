"""Page-cache control shared by the benchmarks."""

from __future__ import annotations

import os


def evict(path: str | os.PathLike) -> None:
    """Write back and drop the page cache of one file: a cold read, as a DR site reads storage that is not
    in its host's memory. Only this file's pages, nobody else's."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
