"""A gzip stream (RFC 1952, one member) deflated on several threads, as ``pigz`` writes one.

The input is cut into chunks (1 MiB by default). Each chunk is deflated on its own, on a thread pool
(``zlib`` releases the GIL), as raw deflate (RFC 1951) primed with the last 32 KiB of the input before
it (``zdict``: matches may reach back over the cut, so the ratio stays close to one deflate of the
whole); every chunk but the last ends with a sync flush (an empty stored block, which leaves the
stream on a byte boundary without ending it), the last one ends the stream. The main thread writes
the chunks in order between the 10-byte header and the trailer (CRC-32 of the input, computed on
the main thread as the chunks are cut, and its length modulo 2**32). The result is one ordinary
gzip member: ``gzip -t``, ``gzip -d``, GNU tar and Go's or Python's readers take it as any other.

Chunks that do not look compressible (``disks.deflate.worth_deflating``) are stored (deflate level
0): random or already-compressed data costs a copy instead of a full deflate that would save nothing.

At most ``2 * workers`` chunks are in flight, so memory stays bounded whatever the input's size.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from vmferry.disks.deflate import worth_deflating

CHUNK = 1 << 20
WINDOW = 32 << 10
OS_UNIX = 3


def deflate_chunk(data: bytes, dictionary: bytes, level: int, last: bool) -> bytes:
    """``data`` as raw deflate, primed with ``dictionary``; ends the stream when ``last``."""
    if not worth_deflating(data, level):
        level = 0
    if level and dictionary:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=dictionary)
    else:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelGzip:
    """A writable gzip stream over ``sink`` (a callable taking bytes); :meth:`close` ends it.

    Use as a context manager: leaving it normally ends the stream; leaving it on an exception drops
    what is in flight and writes nothing more (the caller removes the partial output)."""

    def __init__(self, sink: Callable[[bytes], object], *, level: int = 6, chunk: int = CHUNK,
                 workers: int | None = None, mtime: int = 0) -> None:
        if not 0 <= level <= 9:
            raise ValueError(f"gzip level {level} is not 0-9")
        if chunk < WINDOW:
            raise ValueError(f"chunk of {chunk} bytes is smaller than the deflate window")
        self._sink = sink
        self._level = level
        self._chunk = chunk
        self._workers = workers or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="gzip-deflate")
        self._pending: deque[Future[bytes]] = deque()
        self._buffer = bytearray()
        self._dictionary = b""
        self._crc = 0
        self._length = 0
        self._closed = False
        # header: magic, CM=deflate, no flags, MTIME, XFL (2 = best, 4 = fastest, else 0), OS
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        self._sink(b"\x1f\x8b\x08\x00" + struct.pack("<I", mtime & 0xFFFFFFFF) + bytes([xfl, OS_UNIX]))
        self.written = 10

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ValueError("write to a closed gzip stream")
        self._buffer += data
        while len(self._buffer) >= self._chunk:
            piece = bytes(self._buffer[:self._chunk])
            del self._buffer[:self._chunk]
            self._submit(piece, last=False)

    def _submit(self, piece: bytes, *, last: bool) -> None:
        self._crc = zlib.crc32(piece, self._crc)
        self._length += len(piece)
        self._pending.append(self._pool.submit(deflate_chunk, piece, self._dictionary, self._level, last))
        self._dictionary = piece[-WINDOW:]
        while len(self._pending) > 2 * self._workers:
            self._emit(self._pending.popleft().result())

    def _emit(self, data: bytes) -> None:
        self._sink(data)
        self.written += len(data)

    def close(self) -> None:
        """Deflate what is left, write every chunk in order and the trailer."""
        if self._closed:
            return
        try:
            self._submit(bytes(self._buffer), last=True)
            self._buffer = bytearray()
            while self._pending:
                self._emit(self._pending.popleft().result())
            self._emit(struct.pack("<II", self._crc & 0xFFFFFFFF, self._length & 0xFFFFFFFF))
        finally:
            self._closed = True
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Drop what is in flight; nothing more is written."""
        self._closed = True
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> ParallelGzip:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
