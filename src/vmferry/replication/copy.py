"""The resumable extent copy behind ``sync_disk``: a change set read from a change source, written into
the point's qcow2 overlay.

The change set (the source's extents, sorted and merged) is cut into chunks of at most ``chunk`` bytes
in one deterministic order, so "bytes done" names one position in it whatever process computes it.
Chunks are moved (read, then written) by a pool of :data:`WORKERS` threads, at most
``WORKERS x QUEUE_DEPTH`` in flight, and settled in order by the caller's thread; a chunk that reads as
zeros is written as a zero range (a qcow2 overlay records zero clusters, no data). Progress goes to ``heartbeat(bytes_done)`` at most every ``heartbeat_every``
seconds and at the end, always after a flush of the target, so a reported position is on disk.
``max_rate`` (bytes per second, 0: none) limits how fast the change set is read from the source, as a
replication bandwidth limit does (pieces start no earlier than their share of the rate allows; while
the copy waits, heartbeats keep saying where it is).
``resume_at`` (a position a heartbeat reported) skips the chunks wholly before it: a restarted copy
reads and writes at most the remainder plus one chunk. Writing the same bytes again is harmless, so a
copy is idempotent as long as its source shows the same moment (a running backup job does).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from vmferry.disks.qcow2_layer import CLUSTER, LayerWriter
from vmferry.errors import ReplicationError, VmferryError
from vmferry.replication.model import ChangeSource, Extent
from vmferry.tools import nbd
from vmferry.tools.qemu_img import ImageSpec

CHUNK = 4 << 20          # bytes per read/write: the resume granularity
WORKERS = 8              # pieces in flight at once (reads and writes; NBD servers take concurrent requests)
QUEUE_DEPTH = 2          # pieces queued per worker
HEARTBEAT_EVERY = 1.0    # seconds between heartbeats (each one flushes the target first)
MIN_RATE = 64 * 1024     # the lowest bandwidth limit taken (bytes per second)


@dataclass(frozen=True)
class CopyResult:
    total: int            # bytes of the whole change set
    bytes_read: int       # bytes this call read from the source
    bytes_written: int    # bytes this call wrote (data and zero ranges)
    zero_bytes: int       # of which written as zero ranges
    extents: int          # extents of the change set
    resumed_at: int       # position the copy started from (a chunk boundary <= resume_at)


def merge(extents: list[Extent]) -> list[Extent]:
    """``extents`` (any order, may touch or overlap) as sorted, disjoint, non-touching runs."""
    merged: list[Extent] = []
    for ext in sorted((e for e in extents if e.length > 0), key=lambda e: e.offset):
        if merged and ext.offset <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Extent(last.offset, max(last.end, ext.end) - last.offset)
        else:
            merged.append(ext)
    return merged


def chunks(extents: list[Extent], chunk: int = CHUNK) -> list[Extent]:
    """``extents`` merged (:func:`merge`) and cut into pieces of at most ``chunk`` bytes: the copy's one
    deterministic order."""
    if chunk <= 0:
        raise ReplicationError(f"chunk size must be positive, not {chunk}")
    out = []
    for ext in merge(extents):
        pos = ext.offset
        while pos < ext.end:
            n = min(chunk, ext.end - pos)
            out.append(Extent(pos, n))
            pos += n
    return out


def start_index(pieces: list[Extent], resume_at: int) -> tuple[int, int]:
    """The first piece to copy when ``resume_at`` bytes are done, and the position it starts at."""
    done = 0
    for i, piece in enumerate(pieces):
        if done + piece.length > resume_at:
            return i, done
        done += piece.length
    return len(pieces), done


def copy_extents(source: ChangeSource, target: nbd.Export | LayerWriter, *, extents: list[Extent] | None = None,
                 chunk: int = CHUNK, resume_at: int = 0, heartbeat: Callable[[int], None] | None = None,
                 heartbeat_every: float = HEARTBEAT_EVERY, workers: int = WORKERS,
                 max_rate: int = 0, digests: BlockDigests | None = None) -> CopyResult:
    """Copy the change set of ``source`` (its ``extents()`` unless given) into ``target`` at the same
    offsets, from ``resume_at``, at most ``max_rate`` bytes per second (0: as fast as it goes); see the
    module's description. ``source.read`` is called from several threads at once (an NBD export takes
    concurrent requests). With ``digests``, every piece's bytes are hashed per ``digests.block_size``
    block as they pass (read once: the seal needs no second read) and handed to ``digests.add`` in
    order; ``digests.flush()`` runs with the target's flush before each heartbeat, so what a heartbeat
    reports has its digests on disk too. Pieces must then start on a block boundary."""
    check_rate(max_rate)
    wanted = source.extents() if extents is None else extents
    pieces = chunks(wanted, chunk)
    total = sum(p.length for p in pieces)
    first, done = start_index(pieces, max(0, resume_at))
    resumed_at = done
    zero_buf = bytes(chunk)

    def move(piece: Extent) -> bool:
        """Read one piece and write it; whether it was written as a zero range, and its block hashes."""
        data = source.read(piece.offset, piece.length)
        if len(data) != piece.length:
            raise ReplicationError(f"short read from the source: {len(data)} of {piece.length} bytes "
                                   f"at {piece.offset}")
        hashes = digests.hash(piece, data) if digests is not None else None
        if zero_buf.startswith(data):   # all zeros (a memcmp, no slice of zero_buf copied)
            target.zero(piece.offset, piece.length)
            return True, hashes
        target.pwrite(piece.offset, data)
        return False, hashes

    depth = QUEUE_DEPTH * max(1, workers)
    count = {"read": 0, "zeros": 0, "done": done, "beat": time.monotonic()}
    pending: deque = deque()

    def settle() -> None:
        """Account for the oldest piece in flight once it is written; heartbeat when due."""
        piece, future = pending.popleft()
        zeros, hashes = future.result()
        if digests is not None:
            digests.add(piece, hashes)
        if zeros:
            count["zeros"] += piece.length
        count["read"] += piece.length
        count["done"] += piece.length
        beat_if_due()

    def beat_if_due() -> None:
        if heartbeat is not None and time.monotonic() - count["beat"] >= heartbeat_every:
            target.flush()   # what a heartbeat reports is on disk
            if digests is not None:
                digests.flush()
            heartbeat(count["done"])
            count["beat"] = time.monotonic()

    started = time.monotonic()
    scheduled = 0   # bytes of this call's pieces started so far (what the rate limit counts)

    def pace() -> None:
        """Wait until the bytes started so far are within the rate; settle finished pieces meanwhile."""
        if not max_rate:
            return
        allowed_at = started + scheduled / max_rate
        while (left := allowed_at - time.monotonic()) > 0:
            while pending and pending[0][1].done():
                settle()
            beat_if_due()
            time.sleep(min(left, max(0.01, heartbeat_every / 2)))

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vmferry-copy") as pool:
        try:
            for piece in pieces[first:]:
                pace()
                scheduled += piece.length
                pending.append((piece, pool.submit(move, piece)))
                while pending and (len(pending) >= depth or pending[0][1].done()):
                    settle()
            while pending:
                settle()
        finally:
            for _piece, future in pending:   # on failure: nothing more starts
                future.cancel()
    target.flush()
    if digests is not None:
        digests.flush()
    if heartbeat is not None:
        heartbeat(count["done"])
    return CopyResult(total, count["read"], count["read"], count["zeros"], len(merge(wanted)), resumed_at)


class BlockDigests(Protocol):
    """Where :func:`copy_extents` puts the block hashes of the bytes it copies."""

    block_size: int

    def hash(self, piece: Extent, data: bytes) -> list[bytes]: ...   # in a copy thread
    def add(self, piece: Extent, hashes: list[bytes]) -> None: ...   # in order, in the caller's thread
    def flush(self) -> None: ...


def check_rate(max_rate: int) -> None:
    if isinstance(max_rate, bool) or not isinstance(max_rate, int) or (max_rate and max_rate < MIN_RATE):
        raise ReplicationError(f"a bandwidth limit of {max_rate!r} bytes/s is not possible (0 for none, "
                               f"else at least {MIN_RATE})")


def copy_into_image(source: ChangeSource, image: str | os.PathLike | ImageSpec, *, fmt: str = "qcow2",
                    extents: list[Extent] | None = None, **kwargs) -> CopyResult:
    """:func:`copy_extents` into ``image`` (a point's qcow2 overlay: its backing chain is read, never
    written), served by a private qemu-nbd for the time of the copy (not started at all when nothing
    changed). ``image`` is an :class:`~vmferry.tools.qemu_img.ImageSpec` naming the chain, or the path of
    an image vmferry just created (format ``fmt``)."""
    wanted = source.extents() if extents is None else extents
    if not merge(wanted):
        heartbeat = kwargs.get("heartbeat")
        if heartbeat is not None:
            heartbeat(0)
        return CopyResult(0, 0, 0, 0, 0, 0)
    direct = _direct_writer(image, fmt, chunks(wanted, kwargs.get("chunk", CHUNK)))
    if direct is not None:
        with direct:
            return copy_extents(source, direct, extents=wanted, **kwargs)
    with nbd.serve_image(image, fmt) as target:
        return copy_extents(source, target, extents=wanted, **kwargs)


def _direct_writer(image: str | os.PathLike | ImageSpec, fmt: str, pieces: list[Extent]) -> LayerWriter | None:
    """A writer of the top layer in this process (:mod:`vmferry.disks.qcow2_layer`) when every piece is
    whole clusters of a plain qcow2 layer (then no byte of the backing chain is needed: it is only
    checked to exist); None: the copy goes through ``qemu-nbd``."""
    if isinstance(image, ImageSpec):
        if image.fmt != "qcow2" or image.is_range() or image.data_file:
            return None
        path = image.path
        below = image.backing
        while below is not None:
            if not os.path.exists(below.path):
                raise ReplicationError(f"the layer below, {below.path}, does not exist", path=path)
            below = below.backing
    else:
        if fmt != "qcow2":
            return None
        path = os.fspath(image)
    if any(p.offset % CLUSTER or p.length % CLUSTER for p in pieces[:-1]) or pieces[-1].offset % CLUSTER:
        return None
    try:
        writer = LayerWriter.open(path)
    except OSError as exc:
        raise ReplicationError(f"cannot open the layer: {exc.strerror}", path=path) from exc
    except VmferryError as exc:
        raise ReplicationError(str(exc), path=path) from exc
    if writer is not None and pieces[-1].length % CLUSTER and pieces[-1].end != writer.size:
        writer.close()
        return None
    return writer
