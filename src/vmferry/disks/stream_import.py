"""Importing a streamOptimized VMDK that only exists as a stream (gzip-compressed or chunked OVA
members) without writing any intermediate file.

A streamOptimized VMDK with markers can be read front to back, as ESXi does on import: after the
header and the descriptor, every grain comes behind a *grain marker* (its LBA and compressed size);
grain tables, the directory and the footer come behind *metadata markers* and are skipped; a zero
sector ends the stream. :func:`iter_grains` parses that, refusing anything that does not fit the
declared capacity. :func:`stream_import` inflates grains on a thread pool and writes them into the
output image through :mod:`vmferry.disks.nbd` (any qemu format), or, for streamOptimized output,
simply writes the stream itself.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from vmferry.disks import formats, safety
from vmferry.disks.formats import VMDK_HEADER
from vmferry.disks.image_check import check_image
from vmferry.disks.inflate import inflate_grain
from vmferry.disks.vmdk_verify import GrainVerifier
from vmferry.errors import DiskError
from vmferry.progress import Reporter
from vmferry.tools import qemu_img

SECTOR = 512
MAX_GRAIN_SECTORS = 2048


class ByteStream:
    """Exact-size reads over an iterator of byte blocks."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._blocks = iter(blocks)
        self._buf = bytearray()
        self.consumed = 0

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            block = next(self._blocks, None)
            if block is None:
                raise DiskError(f"the disk stream ends early (at byte {self.consumed + len(self._buf)})")
            self._buf += block
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self.consumed += n
        return out

    def drain(self) -> Iterator[bytes]:
        """What is left of the stream (reading it to the end, which runs any digest checks)."""
        if self._buf:
            yield bytes(self._buf)
            self.consumed += len(self._buf)
            self._buf.clear()
        for block in self._blocks:
            self.consumed += len(block)
            yield block

    def skip(self, n: int) -> None:
        while n > 0:
            step = min(n, 4 << 20)
            self.read(step)
            n -= step


def streamable(first_sector: bytes) -> bool:
    """Whether a file starting with ``first_sector`` is a streamOptimized VMDK with markers."""
    if len(first_sector) < SECTOR or first_sector[:4] != b"KDMV":
        return False
    flags = VMDK_HEADER.unpack_from(first_sector)[2]
    return bool(flags & formats.VMDK_FLAG_COMPRESSED and flags & formats.VMDK_FLAG_MARKERS)


@dataclass(frozen=True)
class StreamHeader:
    capacity: int          # bytes
    grain: int             # bytes
    overhead: int          # bytes before the first marker
    head: bytes            # the first sector (for streamOptimized output)


def read_header(stream: ByteStream) -> StreamHeader:
    head = stream.read(SECTOR)
    if head[:4] != b"KDMV":
        raise DiskError("not a VMDK sparse extent")
    (_m, version, flags, capacity, grain, _doff, _dsize, _gtes, _rgd, _gd, overhead, _u, _nl,
     algo) = VMDK_HEADER.unpack_from(head)
    if not flags & formats.VMDK_FLAG_COMPRESSED or not flags & formats.VMDK_FLAG_MARKERS or algo != 1:
        raise DiskError("not a streamOptimized VMDK with markers: it cannot be read as a stream")
    if version not in (1, 2, 3) or grain == 0 or grain & (grain - 1) or grain > MAX_GRAIN_SECTORS:
        raise DiskError(f"impossible VMDK header (version {version}, grain {grain} sectors)")
    if overhead < 1 or overhead > 1 << 20:
        raise DiskError(f"impossible VMDK overhead of {overhead} sectors")
    return StreamHeader(capacity * SECTOR, grain * SECTOR, overhead * SECTOR, head)


def iter_grains(stream: ByteStream, header: StreamHeader) -> Iterator[tuple[int, bytes]]:
    """``(guest offset, compressed grain)`` in stream order, after the header was read."""
    stream.skip(header.overhead - SECTOR)
    limit = header.grain + header.grain // 8 + 1024   # deflate never grows data by more
    while True:
        marker = stream.read(SECTOR)
        value, size = struct.unpack_from("<QI", marker)
        if size:
            if size > limit:
                raise DiskError(f"a grain marker declares {size} compressed bytes, more than a grain can need")
            if value * SECTOR >= header.capacity or value % (header.grain // SECTOR):
                raise DiskError(f"a grain marker points at sector {value}, outside the disk or not on a grain")
            body = marker[12:]
            rest = 12 + size - SECTOR
            if rest > 0:
                body += stream.read(rest + (-(12 + size) % SECTOR))
            yield value * SECTOR, body[:size]
            continue
        kind, = struct.unpack_from("<I", marker, 12)
        if kind == 0:          # end of stream
            return
        if kind in (1, 2, 3):  # grain table, grain directory, footer: not needed when streaming
            if value > 1 << 24:
                raise DiskError(f"a metadata marker declares {value} sectors")
            stream.skip(value * SECTOR)
            continue
        raise DiskError(f"unknown VMDK marker type {kind}")


def _inflate(offset: int, packed: bytes, grain: int, capacity: int, views: bool = False) -> tuple[int, bytes]:
    """(offset, guest bytes) of one compressed grain (:func:`vmferry.disks.inflate.inflate_grain`)."""
    return inflate_grain(offset, packed, grain, capacity, views)


def stream_import(blocks: Iterable[bytes], out: str, fmt: formats.DiskFormat | str, *, force: bool = False,
                  reporter: Reporter | None = None, workers: int | None = None, needed: int = 0,
                  finish: Callable[[], None] | None = None) -> tuple[int, int]:
    """Write the streamOptimized VMDK arriving as ``blocks`` to ``out`` in ``fmt``.

    ``finish`` runs after the stream was consumed, before the output is renamed into place (the
    manifest check goes there: raising removes the output). ``needed``: the free space to require
    (a stream's data size is unknown in advance; the compressed size is a lower bound). Returns
    (virtual size, populated bytes).
    """
    from vmferry.disks.nbd import nbd_writer

    fmt = formats.get_format(fmt) if isinstance(fmt, str) else fmt
    reporter = reporter or Reporter()
    stream = ByteStream(blocks)
    header = read_header(stream)
    out = safety.check_output_path(out, force=force)
    if fmt.name == "vmdk-flat":
        raise DiskError("monolithicFlat output is not written from a stream; choose raw or another format")
    safety.ensure_free_space(os.path.dirname(out), needed + (1 << 20), what=os.path.basename(out))
    if fmt.name == "vmdk-stream":
        with safety.atomic_output(out, force=force) as tmp:
            verify = GrainVerifier(out)
            try:
                with open(tmp, "wb") as f:
                    f.write(header.head)
                    verify.feed(header.head)
                    for block in stream.drain():
                        f.write(block)
                        verify.feed(block)
                verify.close()   # every grain inflated while written
            finally:
                verify.abandon()
            # never a byte-for-byte copy unverified: grain directory, tables and markers are checked
            # (metadata reads only) before the copy is renamed into place
            check_image(tmp)
            if finish:
                finish()
        return header.capacity, 0
    workers = workers or os.cpu_count() or 2
    populated = 0
    opts = fmt.create_options()
    with safety.atomic_output(out, force=force) as tmp:
        qemu_img.create(tmp, fmt.qemu, header.capacity, opts)
        with nbd_writer(tmp, fmt.qemu) as nbd, ThreadPoolExecutor(workers, "vmdk-inflate") as pool, \
                reporter.step(f"import {os.path.basename(out)}", header.capacity) as step:
            pending: deque = deque()
            last = 0

            def drain() -> None:
                nonlocal populated, last
                offset, data = pending.popleft().result()
                if data.count(0) != len(data):
                    nbd.write(offset, data)
                    populated += len(data)
                if offset > last:
                    step.advance(offset - last)
                    last = offset

            for offset, packed in iter_grains(stream, header):
                pending.append(pool.submit(_inflate, offset, packed, header.grain, header.capacity))
                while len(pending) > workers * 8:
                    drain()
            while pending:
                drain()
            for _ in stream.drain():  # read to the end: the last digest check runs there
                pass
        if finish:
            finish()
    return header.capacity, populated
