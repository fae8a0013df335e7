"""Parallel writers of fixed VHD (and raw) images: the guest bytes at their own offsets, zero ranges left
as holes, and for VHD the footer of :mod:`vmferry.disks.vhd_footer` after them.

Two sources, each with I/O passed in (as :mod:`vmferry.disks.vmdk_stream`):

* :func:`write_plain` — guest bytes readable at random (``read(offset, length)``, raw files, fixed VHD,
  uncompressed clusters; see :func:`vmferry.disks.reader.open_raw`): batches of 4 MiB are read and
  written on a thread pool with ``os.pread``/``os.pwrite`` (both release the GIL); a batch the allocation
  map calls zero is not read, a 64 KiB run of zeros is not written;
* :func:`write_from_stream` — a streamOptimized VMDK read front to back (an OVA member, in place): its
  grains (:func:`vmferry.disks.stream_import.iter_grains`) are inflated and written on the pool.

The output keeps the guest's size rounded up to ``align`` (a sector; Azure: 1 MiB, the added tail reads
as zeros). Both return a :class:`WriteResult`; the pending work is bounded (workers x 2 batches) and
cancelled on failure. The caller owns the file (a temporary name renamed into place, :mod:`safety`).
"""

from __future__ import annotations

import mmap
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from vmferry.disks.inflate import Pieces
from vmferry.disks.vhd_footer import SECTOR, build_footer, round_size
from vmferry.errors import DiskError

BATCH = 4 << 20
RUN = 64 << 10
ZERO_RUN = bytes(RUN)
GRAINS_PER_TASK = 32
WINDOW = 8 << 20     # a member read in place is mapped this many bytes at a time
_MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


@dataclass(frozen=True)
class WriteResult:
    file_size: int        # bytes of the output file (the footer included)
    virtual_size: int     # guest size, rounded up to the alignment
    populated: int        # guest bytes written (non-zero)


def _write_runs(fd: int, offset: int, data: bytes | memoryview) -> int:
    """Write the non-zero 64 KiB runs of ``data`` at ``offset``; the bytes written."""
    return write_gathered(fd, data_runs(offset, data))


def data_runs(at: int, data) -> list[tuple[int, memoryview]]:
    """The runs of 64 KiB of ``data`` (bytes, or a stored grain's :class:`~vmferry.disks.inflate.Pieces`,
    meant for offset ``at``) that are not all zeros, as (offset, view): a zero run is not written (it
    stays a hole, or unallocated)."""
    if isinstance(data, Pieces):
        return _piece_runs(at, data)
    view = memoryview(data)
    return [(at + pos, view[pos:pos + RUN]) for pos in range(0, len(view), RUN) if not _zero(view[pos:pos + RUN])]


def _zero(view: memoryview) -> bool:
    """Whether ``view`` (at most :data:`RUN` bytes, not empty) holds only zeros: data that does not start
    or end with a zero byte is told at once; else compared as bytes (a memoryview compares byte by byte,
    ~35x slower)."""
    return not view[0] and not view[-1] and view.tobytes() == ZERO_RUN[:len(view)]


def _piece_runs(at: int, pieces: Pieces) -> list[tuple[int, memoryview]]:
    offsets, pos = [], at
    for piece in pieces:
        offsets.append(pos)
        pos += len(piece)
    if pos - at <= RUN:       # a grain of 64 KiB at most (VMware's): one run
        return [] if all(_zero(p) for p in pieces) else list(zip(offsets, pieces, strict=True))
    out: list[tuple[int, memoryview]] = []
    window: list[tuple[int, memoryview]] = []
    filled = pos = 0
    for piece in pieces:
        i = 0
        while i < len(piece):
            take = min(len(piece) - i, RUN - filled)
            window.append((at + pos, piece[i:i + take]))
            i, pos, filled = i + take, pos + take, filled + take
            if filled == RUN:
                if not all(_zero(v) for _at, v in window):
                    out += window
                window, filled = [], 0
    if not all(_zero(v) for _at, v in window):
        out += window
    return out


IOV_MAX = 512
GATHER = 1 << 20   # bytes per pwritev at most: a 2 MiB-aligned 2 MiB write makes Linux (6.x, ext4 with large
                   # folios) allocate a huge page for it, measured 4-8x the system time of 1 MiB writes


def write_gathered(fd: int, pieces: list[tuple[int, memoryview]]) -> int:
    """Write the (file offset, bytes) ``pieces`` (in ascending offsets), the adjacent ones with one
    ``os.pwritev`` (a system call, the GIL released once, for a run of grains, at most :data:`GATHER`
    bytes); the bytes written."""
    written, i = 0, 0
    while i < len(pieces):
        at, first = pieces[i]
        views, end, i = [first], at + len(first), i + 1
        while (i < len(pieces) and pieces[i][0] == end and len(views) < IOV_MAX
               and end + len(pieces[i][1]) - at <= GATHER):
            views.append(pieces[i][1])
            end += len(pieces[i][1])
            i += 1
        done = os.pwritev(fd, views, at) if len(views) > 1 else 0
        if done < end - at:      # one piece, or a short write: the rest as one buffer
            rest = memoryview(b"".join(views) if len(views) > 1 else views[0])
            done += _pwrite(fd, rest[done:], at + done)
        written += done
    return written


def _pwrite(fd: int, data: memoryview, offset: int) -> int:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)
    return done


def _finish(fd: int, virtual_size: int, align: int, vhd: bool) -> tuple[int, int]:
    size = round_size(virtual_size, align)
    os.ftruncate(fd, size)
    if vhd:
        _pwrite(fd, memoryview(build_footer(size)), size)
    return size + (SECTOR if vhd else 0), size


def _drive(tasks: Iterator[Callable[[], tuple[int, int]]], workers: int, progress) -> int:
    """Run ``tasks`` (each returns (bytes written, guest bytes done)) on a pool with at most
    ``workers * 2`` pending; progress is reported from this thread. The bytes written in all."""
    total = 0
    pending: deque[Future] = deque()

    def collect() -> None:
        nonlocal total
        written, done = pending.popleft().result()
        total += written
        if progress:
            progress(done)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vhd-write") as pool:
        try:
            for task in tasks:
                pending.append(pool.submit(task))
                while len(pending) > workers * 2:
                    collect()
            while pending:
                collect()
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    return total


def write_plain(read: Callable[[int, int], bytes], virtual_size: int, fd: int, *,
                is_zero: Callable[[int, int], bool] | None = None, align: int = SECTOR, vhd: bool = True,
                workers: int | None = None, progress: Callable[[int], object] | None = None) -> WriteResult:
    """Write the guest bytes ``read(offset, length)`` of a disk of ``virtual_size`` bytes into the empty
    file ``fd``: a fixed VHD (``vhd``) or raw bytes."""
    if virtual_size <= 0:
        raise DiskError("a disk needs a positive size")
    round_size(virtual_size, align)   # refuse a bad alignment before writing anything
    workers = workers or os.cpu_count() or 2

    def batch(offset: int, length: int) -> Callable[[], tuple[int, int]]:
        def run() -> tuple[int, int]:
            if is_zero is not None and is_zero(offset, length):
                return 0, length
            data = read(offset, length)
            if len(data) != length:
                raise DiskError(f"the source gave {len(data)} bytes at {offset}, {length} were asked for")
            return _write_runs(fd, offset, data), length
        return run

    tasks = (batch(off, min(BATCH, virtual_size - off)) for off in range(0, virtual_size, BATCH))
    populated = _drive(tasks, workers, progress)
    file_size, size = _finish(fd, virtual_size, align, vhd)
    return WriteResult(file_size, size, populated)


def write_from_stream(blocks: Iterable[bytes], fd: int, *, align: int = SECTOR, vhd: bool = True,
                      workers: int | None = None, progress: Callable[[int], object] | None = None) -> WriteResult:
    """Write the streamOptimized VMDK arriving as ``blocks`` (read front to back) into the empty file ``fd``
    as a fixed VHD (``vhd``) or raw bytes; its grains are inflated on the pool."""
    from vmferry.disks.stream_import import ByteStream, _inflate, iter_grains, read_header

    stream = ByteStream(blocks)
    header = read_header(stream)
    if header.capacity <= 0:
        raise DiskError("the VMDK declares an empty disk")
    round_size(header.capacity, align)
    workers = workers or os.cpu_count() or 2

    def group(grains: list[tuple[int, bytes]], done: int) -> Callable[[], tuple[int, int]]:
        def run() -> tuple[int, int]:
            inflated = [_inflate(offset, packed, header.grain, header.capacity) for offset, packed in grains]
            return write_gathered(fd, [r for at, data in inflated for r in data_runs(at, data)]), done
        return run

    def tasks() -> Iterator[Callable[[], tuple[int, int]]]:
        grains: list[tuple[int, bytes]] = []
        reached = 0   # guest bytes up to the end of the last grain handed out (grains come in order)
        for item in iter_grains(stream, header):
            grains.append(item)
            if len(grains) == GRAINS_PER_TASK:
                end = max(reached, min(item[0] + header.grain, header.capacity))
                yield group(grains, end - reached)
                grains, reached = [], end
        end = header.capacity
        yield group(grains, end - reached)

    populated = _drive(tasks(), workers, progress)
    for _ in stream.drain():   # read to the end: a digest check of the caller's stream runs there
        pass
    file_size, size = _finish(fd, header.capacity, align, vhd)
    return WriteResult(file_size, size, populated)


def write_from_member(path: str, offset: int, size: int, fd: int, *, align: int = SECTOR, vhd: bool = True,
                      workers: int | None = None, progress: Callable[[int], object] | None = None,
                      feed: Callable[[bytes], object] | None = None, name: str | None = None) -> WriteResult:
    """As :func:`write_from_stream`, for a streamOptimized VMDK lying plainly in ``path`` at
    ``[offset, offset+size)`` (an OVA member): :func:`member_grains` reads it front to back once (``feed``
    sees every byte, in order: the manifest digest is computed on the bytes the conversion reads, not on
    a second reading), the pool inflates and writes the grains at their guest offsets."""
    def put(grains: list[tuple[int, bytes]]) -> int:
        return write_gathered(fd, [run for guest, data in grains for run in data_runs(guest, data)])

    capacity, populated = member_grains(path, offset, size, put, workers=workers, progress=progress, feed=feed,
                                        check=lambda cap: round_size(cap, align), name=name)
    file_size, vsize = _finish(fd, capacity, align, vhd)
    return WriteResult(file_size, vsize, populated)


def member_grains(path: str, offset: int, size: int, put: Callable[[list[tuple[int, bytes]]], int], *,
                  workers: int | None = None, progress: Callable[[int], object] | None = None,
                  feed: Callable[[bytes], object] | None = None,
                  check: Callable[[int], object] | None = None, name: str | None = None) -> tuple[int, int]:
    """Every grain of the streamOptimized VMDK at ``[offset, offset+size)`` of ``path``, inflated on a pool
    and given to ``put([(guest_offset, data), ...])`` a run of grains at a time, in stream order (on the
    pool's threads; it returns the bytes it wrote). This
    thread reads the member once, front to back (:class:`_Sequential`; ``feed`` gets every byte), walks
    the markers and hands runs of grains out. The same checks as the stream reader: every grain inside
    the disk and on a grain boundary, no grain larger than deflate can make, metadata markers skipped,
    the end-of-stream marker required. ``check(capacity)`` runs on the header before any grain. Errors
    name the image ``name`` (``X.ova:MEMBER``; ``path`` by default). (capacity, bytes written)."""
    import struct

    from vmferry.disks.stream_import import ByteStream, _inflate, read_header

    shown = name or path
    src = os.open(path, os.O_RDONLY)
    try:
        reader = _Sequential(src, offset, offset + size, feed, shown)
        header = read_header(ByteStream([bytes(reader.get(offset, SECTOR))]))
        if header.capacity <= 0:
            raise DiskError("the VMDK declares an empty disk", path=shown)
        if check is not None:
            check(header.capacity)
        limit = header.grain + header.grain // 8 + 1024
        workers = workers or os.cpu_count() or 2

        def group(grains: list[tuple[int, memoryview]], done: int):
            def run() -> tuple[int, int]:
                # a stored grain's data is written from where it lies in the member's mapping (Pieces:
                # nothing copied, no memory allocated per grain); put writes it before the task ends
                inflated = [_inflate(lba * SECTOR, packed, header.grain, header.capacity, True)
                            for lba, packed in grains]
                return (put(inflated) if inflated else 0), done
            return run

        def tasks() -> Iterator[Callable[[], tuple[int, int]]]:
            pos = offset + header.overhead
            grains: list[tuple[int, memoryview]] = []
            reached = 0
            while True:
                marker = reader.get(pos, 16)
                value, length = struct.unpack_from("<QI", marker)
                if length:
                    if length > limit:
                        raise DiskError(f"a grain marker declares {length} compressed bytes, more than a grain "
                                        "can need", path=shown)
                    if value * SECTOR >= header.capacity or value % (header.grain // SECTOR):
                        raise DiskError(f"a grain marker points at sector {value}, outside the disk or not on a "
                                        "grain", path=shown)
                    record = 12 + length + (-(12 + length) % SECTOR)
                    if pos + record > offset + size:
                        raise DiskError("the VMDK ends inside a grain", path=shown)
                    grains.append((value, reader.get(pos + 12, length)))
                    pos += record
                    if len(grains) == GRAINS_PER_TASK:
                        now = max(reached, min((value * SECTOR) + header.grain, header.capacity))
                        yield group(grains, now - reached)
                        grains, reached = [], now
                    continue
                if grains:   # a metadata marker ends the run of grains handed out together
                    yield group(grains, 0)
                    grains = []
                kind, = struct.unpack_from("<I", marker, 12)
                reader.get(pos, SECTOR)   # a metadata marker is a whole sector (raises when the member ends in it)
                if kind == 0:
                    break
                if kind not in (1, 2, 3) or value > 1 << 24:
                    raise DiskError(f"unknown VMDK marker type {kind} or size {value}", path=shown)
                pos += SECTOR + value * SECTOR
            yield group([], header.capacity - reached)

        try:
            populated = _drive(tasks(), workers, progress)
        except DiskError as exc:
            if exc.path:
                raise
            raise DiskError(exc.message, path=shown) from exc   # a grain inflated on the pool
        reader.drain()   # the footer and anything after the end-of-stream marker: fed too
    finally:
        os.close(src)
    return header.capacity, populated


class _Sequential:
    """``[offset, end)`` of ``fd`` read front to back, each byte once, through read-only mappings of
    :data:`WINDOW` bytes (no copy: the views handed out, to ``feed`` and to :meth:`get`'s callers, are of
    the page cache; a mapping lives as long as a view of it). ``feed`` gets every window's bytes once, in
    order; :meth:`get` returns a view of a range at or after the last one asked for (a range across two
    windows is joined into a copy of its own)."""

    def __init__(self, fd: int, offset: int, end: int, feed, path: str) -> None:
        if os.fstat(fd).st_size < end:
            raise DiskError(f"the file ends before byte {end}, the end of the member", path=path)
        self.fd, self.end, self.feed, self.path = fd, end, feed, path
        self.base = offset - offset % mmap.ALLOCATIONGRANULARITY   # the current window's first byte
        self.view: memoryview | None = None
        self.start = self.stop = offset                             # the bytes of the window in range

    def _next(self) -> None:
        if self.stop >= self.end:
            raise DiskError(f"the VMDK ends inside a record (at byte {self.stop})", path=self.path)
        base = self.stop - self.stop % mmap.ALLOCATIONGRANULARITY
        length = min(self.end, base + WINDOW) - base
        mm = mmap.mmap(self.fd, length, flags=_MAP_FLAGS, prot=mmap.PROT_READ, offset=base)
        self.view = memoryview(mm)
        self.base, self.start, self.stop = base, self.stop, base + length
        if self.feed is not None:
            self.feed(self.view[self.start - base:])

    def get(self, at: int, n: int) -> memoryview:
        stop = at + n
        if stop > self.end:
            raise DiskError(f"the VMDK ends inside a record (at byte {at})", path=self.path)
        while at >= self.stop:
            self._next()
        if stop <= self.stop:
            return self.view[at - self.base:stop - self.base]
        pieces = [bytes(self.view[at - self.base:])]
        while self.stop < stop:
            self._next()
            pieces.append(bytes(self.view[:min(stop, self.stop) - self.base]))
        return memoryview(b"".join(pieces))

    def drain(self) -> None:
        while self.stop < self.end:
            self._next()


def file_blocks(path: str, offset: int, size: int, block: int = 1 << 20) -> Iterator[bytes]:
    """The bytes ``[offset, offset+size)`` of ``path`` in blocks (an OVA member read in place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        end = offset + size
        while offset < end:
            data = os.pread(fd, min(block, end - offset), offset)
            if not data:
                raise DiskError(f"the file ends at byte {offset}, before its declared end {end}", path=path)
            offset += len(data)
            yield data
    finally:
        os.close(fd)


def write_member_with(make_writer: Callable[[int, int], object], path: str, offset: int, size: int, fd: int, *,
                      workers: int | None = None, progress: Callable[[int], object] | None = None,
                      feed: Callable[[bytes], object] | None = None,
                      name: str | None = None) -> tuple[int, int]:
    """The streamOptimized VMDK at ``[offset, offset+size)`` of ``path`` written into the empty file ``fd``
    by ``make_writer(fd, capacity)`` (an object with ``put_many(grains)`` and ``finish()``), through
    :func:`member_grains`: read once, ``feed`` gets every byte. (virtual size, guest bytes written)."""
    box: dict = {}

    def start(capacity: int) -> None:
        box["w"] = make_writer(fd, capacity)

    capacity, populated = member_grains(path, offset, size, lambda grains: box["w"].put_many(grains),
                                        workers=workers, progress=progress, feed=feed, check=start, name=name)
    box["w"].finish()
    return capacity, populated

