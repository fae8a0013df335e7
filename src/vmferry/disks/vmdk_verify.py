"""Verifying a streamOptimized VMDK's grains while its bytes are copied (no second pass).

:func:`vmferry.disks.vmdk_header.check_sparse` checks the structure (grain directory, tables and
markers) before a streamOptimized VMDK is copied byte for byte; what it does not read is the deflate
data of each grain. :class:`GrainVerifier` is fed the same blocks the copy writes (``feed``), walks
the markers as a streaming reader does and inflates every grain on a small thread pool (zlib releases
the GIL): a grain that does not inflate, inflates to more than a grain, or a marker that does not fit
the disk raises :class:`~vmferry.errors.DamagedImage` and the copy is abandoned. Memory stays bounded:
at most one partial marker plus ``workers × 4`` grains in flight.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from vmferry.disks.formats import VMDK_FLAG_COMPRESSED, VMDK_FLAG_MARKERS, VMDK_HEADER
from vmferry.errors import DamagedImage

SECTOR = 512
MARKER = struct.Struct("<QII")


def _inflate(lba: int, packed: bytes, grain: int) -> int | str:
    d = zlib.decompressobj()
    try:
        data = d.decompress(packed, grain)
    except zlib.error as exc:
        return f"the grain at sector {lba} does not inflate: {exc}"
    if d.unconsumed_tail:
        return f"the grain at sector {lba} inflates to more than a grain"
    return len(data)


class GrainVerifier:
    """Feed it a streamOptimized VMDK front to back; :meth:`close` raises if anything was wrong."""

    def __init__(self, name: str, *, workers: int | None = None) -> None:
        self.name = name
        self._buf = bytearray()
        self._pos = 0            # stream offset of self._buf[0]
        self._next = 0           # stream offset of the next thing to parse
        self._header_done = False
        self._ended = False
        self._grain = self._capacity = 0
        self._limit = 0
        self._workers = workers or min(4, os.cpu_count() or 2)
        self._pool = ThreadPoolExecutor(self._workers, "vmdk-verify")
        self._pending: deque[Future] = deque()

    def _damaged(self, message: str) -> DamagedImage:
        return DamagedImage(message, path=self.name)

    def feed(self, block: bytes | memoryview) -> None:
        if self._ended:
            return
        self._buf += block
        self._parse()
        # drop what was parsed (once per block, not per grain)
        drop = min(self._next - self._pos, len(self._buf))
        if drop > 0:
            del self._buf[:drop]
            self._pos += drop

    def _view(self, offset: int, n: int) -> bytes | None:
        start = offset - self._pos
        if start < 0 or start + n > len(self._buf):
            return None
        return bytes(self._buf[start:start + n])

    def _parse(self) -> None:
        if not self._header_done:
            head = self._view(0, SECTOR)
            if head is None:
                return
            (magic, _v, flags, capacity, grain, *_rest) = VMDK_HEADER.unpack_from(head)
            overhead = _rest[5]
            if magic != b"KDMV" or not flags & VMDK_FLAG_COMPRESSED or not flags & VMDK_FLAG_MARKERS:
                raise self._damaged("not a streamOptimized VMDK with markers")
            self._grain, self._capacity = grain * SECTOR, capacity
            self._limit = self._grain + self._grain // 8 + 1024
            self._next = overhead * SECTOR
            self._header_done = True
        while not self._ended:
            if self._next - self._pos >= len(self._buf):
                return
            marker = self._view(self._next, MARKER.size)
            if marker is None:
                return
            value, size, kind = MARKER.unpack(marker)
            if size:
                if size > self._limit or value >= self._capacity or value % (self._grain // SECTOR):
                    raise self._damaged(f"the grain marker at byte {self._next} does not fit the disk")
                body = self._view(self._next + 12, size)
                if body is None:
                    return
                self._pending.append(self._pool.submit(_inflate, value, body, self._grain))
                while len(self._pending) > self._workers * 4:
                    self._check(self._pending.popleft())
                self._next += 12 + size + (-(12 + size) % SECTOR)
            elif kind == 0:
                self._ended = True
            elif kind in (1, 2, 3):
                self._next += SECTOR + value * SECTOR
            else:
                raise self._damaged(f"unknown VMDK marker type {kind} at byte {self._next}")

    def _check(self, future: Future) -> None:
        result = future.result()
        if isinstance(result, str):
            raise self._damaged(result)

    def close(self) -> None:
        """Wait for the last grains; raise if any was corrupt or the stream ended inside a grain."""
        try:
            while self._pending:
                self._check(self._pending.popleft())
            if not self._header_done:
                raise self._damaged("the VMDK stream ends inside its header")
            if not self._ended and self._next != self._pos + len(self._buf):
                raise self._damaged(f"the VMDK stream ends inside the marker or grain at byte {self._next}")
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def abandon(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
