"""Build OVA archives for tests with the standard library's tar writer (independent of vmferry)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def make_ova(out: Path, members: list[tuple[str, bytes]], fmt=tarfile.USTAR_FORMAT) -> Path:
    with tarfile.open(out, "w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out


def files_of(directory: Path, names: list[str]) -> list[tuple[str, bytes]]:
    return [(n, (directory / n).read_bytes()) for n in names]
