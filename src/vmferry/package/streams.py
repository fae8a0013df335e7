"""Byte streams over package files: byte ranges read with ``pread``, checked and hashed as they pass.

:func:`checked_blocks` is the one place a member's bytes are verified: exactly its size, and its
manifest digest compared *before the last block is handed on* — a consumer that got every byte of a
member has also had it verified, whether or not it asks for more. :func:`hash_range` hashes a range
straight from the page cache (``mmap``) for a thread that verifies while another reader (qemu-img)
copies the same bytes. :func:`gunzip` decompresses with a bound.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
import zlib
from collections.abc import Callable, Iterator

from vmferry.errors import ManifestMismatch, PackageError, SizeMismatch, TruncatedArchive

BLOCK = 4 << 20
WINDOW = 8 << 20
# MAP_POPULATE maps a whole window at once instead of taking a page fault per 4 KiB page
MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


def pread_blocks(fd: int, offset: int, size: int, where: str, block: int = BLOCK) -> Iterator[bytes]:
    """``size`` bytes at ``offset`` of ``fd``; a file that ends early raises :class:`TruncatedArchive`."""
    pos, end = offset, offset + size
    while pos < end:
        data = os.pread(fd, min(block, end - pos), pos)
        if not data:
            raise TruncatedArchive(f"ends after {pos - offset} of its {size} bytes", path=where)
        pos += len(data)
        yield data


def checked_blocks(blocks: Iterator[bytes], *, size: int, where: str,
                   digest: tuple[str, str] | None) -> Iterator[bytes]:
    """``blocks`` passed on, with exactly ``size`` bytes required and ``digest`` (hashlib name, hex)
    checked before the last block leaves."""
    h = hashlib.new(digest[0]) if digest else None
    count = 0
    held = None
    for block in blocks:
        count += len(block)
        if count > size:
            raise SizeMismatch(f"holds more than its {size} bytes", path=where)
        if h is not None:
            h.update(block)
        if held is not None:
            yield held
        held = block
    if count != size:
        raise TruncatedArchive(f"ends after {count} of its {size} bytes", path=where)
    if h is not None and h.hexdigest() != digest[1]:
        raise mismatch(where, digest[0], h.hexdigest(), digest[1])
    if held is not None:
        yield held


def mismatch(where: str, algo: str, got: str, want: str) -> ManifestMismatch:
    return ManifestMismatch(f"{algo.upper()} digest does not match the manifest (manifest {want[:16]}…, "
                            f"file {got[:16]}…): the file is damaged or was altered", path=where)


def hash_range(fd: int, offset: int, size: int, algo: str, where: str, *,
               stop: threading.Event | None = None, step: Callable[[int], None] | None = None,
               sink=None) -> str:
    """Digest of ``size`` bytes at ``offset`` of ``fd``, hashed from the page cache in windows of
    :data:`WINDOW` bytes (bounded memory); ``sink`` receives the same bytes."""
    h = hashlib.new(algo)
    if os.fstat(fd).st_size < offset + size:
        raise TruncatedArchive(f"ends before its {size} bytes", path=where)
    pos, end = offset, offset + size
    while pos < end:
        if stop is not None and stop.is_set():
            return ""
        base = pos - pos % mmap.ALLOCATIONGRANULARITY
        length = min(end, base + WINDOW) - base
        with mmap.mmap(fd, length, flags=MAP_FLAGS, prot=mmap.PROT_READ, offset=base) as mm, \
                memoryview(mm) as view, view[pos - base:] as chunk:
            h.update(chunk)
            if sink is not None:
                sink.write(chunk)
        if step is not None:
            step(base + length - pos)
        pos = base + length
    return h.hexdigest()


class Inflater:
    """A gzip stream inflated piece by piece as its bytes pass: the output is bounded by ``limit`` (a
    decompression bomb is refused), corrupt data, data after the end of the stream and a stream that
    ends early are refused. :meth:`feed` yields the output; :meth:`write` (a sink, e.g. for
    :func:`hash_range`) counts it and lets it go: a check that streams with a copy of the stored bytes."""

    def __init__(self, where: str, limit: int | None = None) -> None:
        self.where, self.limit, self.produced = where, limit, 0
        self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data) -> Iterator[bytes]:
        dec = self._dec
        while data:
            if dec.eof:
                raise PackageError("holds data after the end of its gzip stream", path=self.where)
            try:
                out = dec.decompress(data, BLOCK)
            except zlib.error as exc:
                raise PackageError(f"gzip data is corrupt: {exc}", path=self.where) from exc
            data = dec.unconsumed_tail or (dec.unused_data if dec.eof else b"")
            self.produced += len(out)
            if self.limit is not None and self.produced > self.limit:
                raise PackageError(f"decompresses to more than {self.limit} bytes, past what the descriptor "
                                   "declares (a decompression bomb?); refused", path=self.where)
            if out:
                yield out

    def write(self, data) -> None:
        for _ in self.feed(data):
            pass

    def finish(self) -> None:
        if not self._dec.eof:
            raise PackageError("gzip stream is truncated", path=self.where)


def gunzip(blocks: Iterator[bytes], name: str, limit: int | None = None) -> Iterator[bytes]:
    """Decompress a gzip stream; ``limit`` bounds the output (a decompression bomb is refused)."""
    inflater = Inflater(name, limit)
    for data in blocks:
        yield from inflater.feed(data)
    inflater.finish()
