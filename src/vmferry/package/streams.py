"""Byte streams over package files: a byte range of an OVA, chunked files, gzip-compressed files."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator

from vmferry.errors import PackageError

BLOCK = 1 << 20


class RangeReader(io.RawIOBase):
    """Read ``size`` bytes at ``offset`` of an open file, without copying."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._fh.seek(offset)
        self._left = size
        self.name = path

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self._left)]
        n = self._fh.readinto(view)
        if not n:
            raise PackageError("archive ended early while reading a member", path=self.name)
        self._left -= n
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def iter_blocks(opener: Callable[[], io.RawIOBase], block: int = BLOCK) -> Iterator[bytes]:
    with opener() as fh:
        while True:
            data = fh.read(block)
            if not data:
                return
            yield data


def concat(block_iters: list[Callable[[], Iterator[bytes]]]) -> Iterator[bytes]:
    for make in block_iters:
        yield from make()


def gunzip(blocks: Iterator[bytes], name: str, limit: int | None = None) -> Iterator[bytes]:
    """Decompress a gzip stream; ``limit`` bounds the output (a decompression bomb is refused)."""
    dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
    produced = 0
    for data in blocks:
        while data:
            try:
                out = dec.decompress(data, BLOCK)
            except zlib.error as exc:
                raise PackageError(f"gzip data is corrupt: {exc}", path=name) from exc
            data = dec.unconsumed_tail
            produced += len(out)
            if limit is not None and produced > limit:
                raise PackageError(f"decompresses to more than {limit} bytes (gzip bomb?)", path=name)
            if out:
                yield out
            if dec.eof:
                break
    if not dec.eof:
        raise PackageError("gzip stream is truncated", path=name)
