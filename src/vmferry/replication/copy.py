"""The resumable extent copy behind ``sync_disk``: a change set read from a change source, written into
the point's qcow2 overlay.

The change set (the source's extents, sorted and merged) is cut into chunks of at most ``chunk`` bytes
in one deterministic order, so "bytes done" names one position in it whatever process computes it.
Chunks are read by one thread and written by the caller's (a queue of at most :data:`QUEUE_DEPTH`
chunks between them); a chunk that reads as zeros is written as a zero range (a qcow2 overlay records
zero clusters, no data). Progress goes to ``heartbeat(bytes_done)`` at most every ``heartbeat_every``
seconds and at the end, always after a flush of the target, so a reported position is on disk.
``resume_at`` (a position a heartbeat reported) skips the chunks wholly before it: a restarted copy
reads and writes at most the remainder plus one chunk. Writing the same bytes again is harmless, so a
copy is idempotent as long as its source shows the same moment (a running backup job does).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vmferry.errors import ReplicationError, VmferryError
from vmferry.replication.model import ChangeSource, Extent
from vmferry.tools import nbd

CHUNK = 4 << 20          # bytes per read/write: the resume granularity
QUEUE_DEPTH = 4          # chunks read ahead of the writer
HEARTBEAT_EVERY = 1.0    # seconds between heartbeats (each one flushes the target first)


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


def copy_extents(source: ChangeSource, target: nbd.Export, *, extents: list[Extent] | None = None,
                 chunk: int = CHUNK, resume_at: int = 0, heartbeat: Callable[[int], None] | None = None,
                 heartbeat_every: float = HEARTBEAT_EVERY) -> CopyResult:
    """Copy the change set of ``source`` (its ``extents()`` unless given) into ``target`` at the same
    offsets, from ``resume_at``; see the module's description."""
    wanted = source.extents() if extents is None else extents
    pieces = chunks(wanted, chunk)
    total = sum(p.length for p in pieces)
    first, done = start_index(pieces, max(0, resume_at))
    resumed_at = done
    todo: queue.Queue = queue.Queue(QUEUE_DEPTH)
    stop = threading.Event()

    def reader() -> None:
        try:
            for piece in pieces[first:]:
                if stop.is_set():
                    return
                data = source.read(piece.offset, piece.length)
                if len(data) != piece.length:
                    raise ReplicationError(f"short read from the source: {len(data)} of {piece.length} bytes "
                                           f"at {piece.offset}")
                todo.put((piece, data))
            todo.put(None)
        except BaseException as exc:   # handed to the writer, which raises it
            todo.put(exc)

    thread = threading.Thread(target=reader, name="vmferry-copy-reader", daemon=True)
    thread.start()
    read = written = zeros = 0
    zero_buf = bytes(chunk)
    last_beat = time.monotonic()
    try:
        while True:
            item = todo.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                if isinstance(item, VmferryError):
                    raise item
                raise ReplicationError(f"reading the source failed: {item}") from item
            piece, data = item
            read += piece.length
            if data == zero_buf[:piece.length]:
                target.zero(piece.offset, piece.length)
                zeros += piece.length
            else:
                target.pwrite(piece.offset, data)
            written += piece.length
            done += piece.length
            if heartbeat is not None and time.monotonic() - last_beat >= heartbeat_every:
                target.flush()
                heartbeat(done)
                last_beat = time.monotonic()
        target.flush()
        if heartbeat is not None:
            heartbeat(done)
    finally:
        stop.set()
        while thread.is_alive():   # unblock a reader waiting on a full queue
            try:
                todo.get_nowait()
            except queue.Empty:
                thread.join(0.05)
    return CopyResult(total, read, written, zeros, len(merge(wanted)), resumed_at)


def copy_into_image(source: ChangeSource, image: str | os.PathLike, *, fmt: str = "qcow2",
                    **kwargs) -> CopyResult:
    """:func:`copy_extents` into the image file ``image`` (a point's qcow2 overlay: its backing chain is
    read, never written), served by a private qemu-nbd for the time of the copy."""
    with nbd.serve_image(image, fmt) as target:
        return copy_extents(source, target, **kwargs)
