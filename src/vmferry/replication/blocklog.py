"""The block digests of a disk's copy, taken as its bytes pass (read once, hashed once).

``sync_disk`` copies a change set into a point's layer; the seal needs the SHA-256 of every 64 KiB
block of the disk as the guest sees it (:mod:`vmferry.replication.imageio`'s notion). The blocks the copy
wrote are hashed from the very bytes it wrote and appended to ``<vm>.<disk>.blocks`` in the draft:
records of (block index: 8 bytes big-endian, SHA-256: 32 bytes), in copy order, fsync'd before every
heartbeat (with the layer's flush). A resumed copy appends again from its restart piece (the later
record of a block wins; both say the same bytes: a draft's source shows one moment). A torn last record
(a crash in the middle of a write) is ignored: its piece is after the last heartbeat, so it is copied
and logged again. The seal takes the parent's map, applies the log, and re-reads only the blocks the
layer holds that the log does not name (none after a normal copy).
"""

from __future__ import annotations

import os

from vmferry.errors import ReplicationError
from vmferry.replication.imageio import block_hash
from vmferry.replication.model import Extent

RECORD = 8 + 32


def align(extents: list[Extent], block_size: int, size: int) -> list[Extent]:
    """``extents`` widened to whole blocks (the last block ends at ``size``): the copy then hashes whole
    blocks only. A change source reads any range of the disk at its moment, so the extra bytes are
    the disk's own (dirty bitmaps and block hashes are block-aligned already: nothing is widened)."""
    out = []
    for ext in extents:
        if ext.length <= 0:
            continue
        start = ext.offset - ext.offset % block_size
        end = min(size, -(-ext.end // block_size) * block_size)
        out.append(Extent(start, end - start))
    return out


class BlockLog:
    """The append-only digest log of one disk of a draft (see the module's description)."""

    def __init__(self, path: str, block_size: int, size: int) -> None:
        self.path = path
        self.block_size = block_size
        self.size = size
        self._buf = bytearray()
        self._fh = open(path, "ab")   # noqa: SIM115 - closed by close()

    def hash(self, piece: Extent, data: bytes) -> list[bytes]:
        bs = self.block_size
        if piece.offset % bs or (piece.length % bs and piece.end != self.size):
            raise ReplicationError(f"piece {piece.offset}+{piece.length} is not made of whole {bs}-byte blocks")
        view = memoryview(data)   # hashed in place, no copy of each block
        return [block_hash(view[i:i + bs]) for i in range(0, len(view), bs)]

    def add(self, piece: Extent, hashes: list[bytes]) -> None:
        first = piece.offset // self.block_size
        for i, digest in enumerate(hashes):
            self._buf += (first + i).to_bytes(8, "big") + digest

    def flush(self) -> None:
        if self._buf:
            self._fh.write(self._buf)
            self._buf.clear()
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> BlockLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_log(path: str, size: int, block_size: int) -> dict[int, bytes] | None:
    """Block index -> digest from the log at ``path`` (the last record of a block wins); None when there
    is no log (a draft written before logs existed, or copied by other means)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ReplicationError(f"cannot read the block digest log: {exc.strerror}", path=path) from exc
    count = -(-size // block_size)
    out: dict[int, bytes] = {}
    for at in range(0, len(data) - len(data) % RECORD, RECORD):
        index = int.from_bytes(data[at:at + 8], "big")
        if index >= count:
            raise ReplicationError(f"the block digest log names block {index}, the disk has {count}", path=path)
        out[index] = data[at + 8:at + RECORD]
    return out


def zero_hashes(size: int, block_size: int) -> list[bytes]:
    """The block hashes of an all-zero disk of ``size`` bytes (a first point's layer before its copy)."""
    full = block_hash(bytes(block_size))
    count, tail = divmod(size, block_size)
    return [full] * count + ([block_hash(bytes(tail))] if tail else [])
