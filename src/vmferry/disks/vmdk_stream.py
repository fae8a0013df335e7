"""A parallel writer of VMware streamOptimized VMDK (sparse extent version 3).

Layout, per VMware's *Virtual Disk Format 5.0* (section "Stream-Optimized Compressed Sparse
Extents"):

* sector 0: the sparse extent header with ``gdOffset = GD_AT_END`` (the real one is in the footer);
* sector 1: the embedded text descriptor (``createType="streamOptimized"``), padded to
  ``overHead`` sectors;
* compressed grains, each a *grain marker* (``lba`` uint64, ``size`` uint32) followed by the zlib
  stream, padded to a sector; all-zero grains are not written at all;
* after the grains of each 512-entry range, a *grain table marker* and the grain table;
* a *grain directory marker* and the grain directory, a *footer marker* and a copy of the header
  that points at the directory, and an *end-of-stream marker* (a zero sector).

Grains are read and deflated on a thread pool (``os.pread`` and ``zlib.compress`` release the
GIL); the main thread writes them in order. The deflate level defaults to 1 (``--level``): it is
several times faster than level 6 and costs a few percent of size on typical guest data. When the
optional ``isal`` package (Intel ISA-L, extra ``vmferry[fast]``) is installed, levels 1-3 use its
zlib-compatible deflate, about four times faster than zlib on this machine; the output is the
same format (RFC 1950 streams) either way.
Incompressible grains (already-compressed files, encrypted or random data) are stored as deflate
level 0 (``disks.deflate.worth_deflating``: two 2 KiB samples deflated first), still a valid zlib
stream, which costs a memory copy instead of a full deflate that would save nothing.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from vmferry.disks.deflate import Deflate, best_deflate, worth_deflating
from vmferry.disks.formats import VMDK_HEADER
from vmferry.errors import DiskError

SECTOR = 512
GRAIN_SECTORS = 128                 # 64 KiB grains, as VMware writes them
GRAIN = GRAIN_SECTORS * SECTOR
GTES_PER_GT = 512
DESCRIPTOR_SECTORS = 20
OVERHEAD_SECTORS = 128
FLAGS = 1 | (1 << 16) | (1 << 17)   # newline test, compressed grains, markers
GD_AT_END = 0xFFFFFFFFFFFFFFFF
MARKER_EOS, MARKER_GT, MARKER_GD, MARKER_FOOTER = 0, 1, 2, 3
BATCH_GRAINS = 64                   # 4 MiB of guest data per task
MAX_SECTOR = 0xFFFFFFFF             # grain-table entries are 32-bit sector numbers
ZERO_GRAIN = bytes(GRAIN)
DEFAULT_LEVEL = 1


@dataclass(frozen=True)
class StreamResult:
    size: int            # bytes written (the .vmdk file size)
    capacity: int        # virtual size in bytes (rounded up to a sector)
    populated: int       # guest bytes actually stored (non-zero grains)


def _header(capacity_sectors: int, gd_offset: int) -> bytes:
    return VMDK_HEADER.pack(b"KDMV", 3, FLAGS, capacity_sectors, GRAIN_SECTORS, 1, DESCRIPTOR_SECTORS,
                            GTES_PER_GT, 0, gd_offset, OVERHEAD_SECTORS, 0, b"\n \r\n", 1).ljust(SECTOR, b"\0")


def _metadata_marker(num_sectors: int, kind: int) -> bytes:
    return struct.pack("<QII", num_sectors, 0, kind).ljust(SECTOR, b"\0")


def descriptor(capacity_sectors: int, *, name: str = "disk.vmdk", adapter: str = "lsilogic",
               cid: int | None = None) -> bytes:
    """The embedded text descriptor of a streamOptimized disk."""
    cid = int.from_bytes(os.urandom(4), "little") if cid is None else cid
    cylinders = min(max(capacity_sectors // (255 * 63), 1), 65535)
    lines = [
        "# Disk DescriptorFile", "version=1", 'encoding="UTF-8"', f"CID={cid:08x}", "parentCID=ffffffff",
        'createType="streamOptimized"', "", "# Extent description",
        f'RW {capacity_sectors} SPARSE "{name}"', "", "# The Disk Data Base", "#DDB", "",
        'ddb.virtualHWVersion = "4"', f'ddb.adapterType = "{adapter}"',
        f'ddb.geometry.cylinders = "{cylinders}"', 'ddb.geometry.heads = "255"',
        'ddb.geometry.sectors = "63"', f'ddb.longContentID = "{os.urandom(16).hex()}"', "",
    ]
    text = "\n".join(lines).encode()
    if len(text) > DESCRIPTOR_SECTORS * SECTOR:
        raise DiskError("VMDK descriptor too long")
    return text.ljust(DESCRIPTOR_SECTORS * SECTOR, b"\0")


def _compress_batch(read: Callable[[int, int], bytes], first_grain: int, count: int, level: int,
                    size: int, deflate: Deflate = zlib.compress) -> list[tuple[int, bytes]]:
    """Read ``count`` grains from ``first_grain`` and return ``(grain, record)`` for non-zero ones."""
    start = first_grain * GRAIN
    data = read(start, min(count * GRAIN, size - start))
    out = []
    view = memoryview(data)
    for i in range(count):
        grain = view[i * GRAIN:(i + 1) * GRAIN]
        if not grain or grain == ZERO_GRAIN[:len(grain)]:
            continue
        raw = bytes(grain).ljust(GRAIN, b"\0")  # the last grain is padded to a full grain
        packed = deflate(raw, level) if worth_deflating(raw, level, deflate) else zlib.compress(raw, 0)
        record = struct.pack("<QI", (first_grain + i) * GRAIN_SECTORS, len(packed)) + packed
        record += b"\0" * (-len(record) % SECTOR)
        out.append((first_grain + i, record))
    return out


def write_stream_vmdk(read: Callable[[int, int], bytes], virtual_size: int,
                      write: Callable[[bytes], object], *,
                      is_zero: Callable[[int, int], bool] | None = None, name: str = "disk.vmdk",
                      adapter: str = "lsilogic", level: int = DEFAULT_LEVEL, workers: int | None = None,
                      progress: Callable[[int], object] | None = None,
                      deflate: Deflate | None = None) -> StreamResult:
    """Write a streamOptimized VMDK of the guest bytes ``read(offset, length)`` to ``write``.

    ``is_zero(offset, length)`` (from the allocation map) lets whole batches be skipped without
    reading. ``progress(n)`` is called with the guest bytes done since the last call. ``deflate``
    (default :func:`best_deflate`) must produce zlib streams.
    """
    if not 0 <= level <= 9:
        raise DiskError(f"deflate level {level} is not between 0 and 9")
    deflate = deflate or best_deflate(level)
    if virtual_size <= 0:
        raise DiskError("a disk needs a positive size")
    capacity = -(-virtual_size // SECTOR)
    grains = -(-capacity // GRAIN_SECTORS)
    num_gts = -(-grains // GTES_PER_GT)
    gd_sectors = -(-num_gts * 4 // SECTOR)
    pos = 0  # in bytes, relative to the start of the vmdk

    def emit(data: bytes) -> None:
        nonlocal pos
        write(data)
        pos += len(data)

    emit(_header(capacity, GD_AT_END))
    emit(descriptor(capacity, name=name, adapter=adapter))
    emit(b"\0" * ((OVERHEAD_SECTORS - 1 - DESCRIPTOR_SECTORS) * SECTOR))

    gd = [0] * num_gts
    table: list[int] = [0] * GTES_PER_GT
    current_gt = 0
    table_used = False
    populated = 0

    def flush_table() -> None:
        nonlocal table, table_used
        if table_used:
            emit(_metadata_marker(GTES_PER_GT * 4 // SECTOR, MARKER_GT))
            gd[current_gt] = pos // SECTOR
            emit(struct.pack(f"<{GTES_PER_GT}I", *table))
        table = [0] * GTES_PER_GT
        table_used = False

    workers = workers or os.cpu_count() or 2
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vmdk-deflate") as pool:
        def drain_one() -> None:
            nonlocal current_gt, table_used, populated
            first, count, future = pending.popleft()
            for grain, record in future.result():
                gt = grain // GTES_PER_GT
                while gt != current_gt:
                    flush_table()
                    current_gt += 1
                sector = pos // SECTOR
                if sector > MAX_SECTOR:
                    raise DiskError("streamOptimized VMDK larger than 2 TiB of compressed data")
                table[grain % GTES_PER_GT] = sector
                table_used = True
                populated += min(GRAIN, capacity * SECTOR - grain * GRAIN)
                emit(record)
            if progress:
                progress(min(count * GRAIN, virtual_size - first * GRAIN))

        try:
            for first in range(0, grains, BATCH_GRAINS):
                count = min(BATCH_GRAINS, grains - first)
                if is_zero is not None and is_zero(first * GRAIN, count * GRAIN):
                    pending.append((first, count, _done([])))
                else:
                    pending.append((first, count, pool.submit(_compress_batch, read, first, count, level,
                                                              virtual_size, deflate)))
                while len(pending) > workers * 2:
                    drain_one()
            while pending:
                drain_one()
        except BaseException:
            for _first, _count, future in pending:
                future.cancel()
            raise
    while current_gt < num_gts:
        flush_table()
        current_gt += 1
    emit(_metadata_marker(gd_sectors, MARKER_GD))
    gd_offset = pos // SECTOR
    emit(struct.pack(f"<{num_gts}I", *gd).ljust(gd_sectors * SECTOR, b"\0"))
    emit(_metadata_marker(1, MARKER_FOOTER))
    emit(_header(capacity, gd_offset))
    emit(_metadata_marker(0, MARKER_EOS))
    return StreamResult(pos, capacity * SECTOR, populated)


class _done:
    """A finished future holding ``value`` (for batches the map says are all zeros)."""

    def __init__(self, value) -> None:
        self._value = value

    def result(self):
        return self._value

    def cancel(self) -> bool:
        return False
