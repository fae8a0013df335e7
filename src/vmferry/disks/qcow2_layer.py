"""Writing whole clusters into a qcow2 layer in this process: the copy into a recovery point's layer
without a ``qemu-nbd`` (no process, no socket, each byte copied once into the page cache).

A :class:`LayerWriter` takes the plain layout only — version 3, 64 KiB clusters, 16-bit reference
counts, no incompatible or autoclear feature, no snapshot, no compressed cluster — which is what
:func:`vmferry.disks.qcow2_write.create_image` and ``qemu-img create`` make and what QEMU keeps writing
into; :meth:`LayerWriter.open` says None for anything else (the caller then writes through QEMU).

Writes are whole clusters (or the disk's last, partial one): a new cluster never needs bytes of the
backing image. A data cluster the layer does not hold yet gets the next free cluster at the end of the
file; one it holds is written in place. :meth:`zero` marks clusters as reading zeros (the v3 zero flag;
a cluster already held keeps its place). Data goes to the file at once; the tables (L2, L1, reference
counts) are kept in memory and written by :meth:`flush`, which then fsyncs the file: after a flush the
file is a whole, consistent qcow2 image holding every write made before it.

Resuming after a crash: :meth:`open` rebuilds its state from the L1/L2 tables on disk and recomputes
every reference count from what the tables name (clusters written after the last flush and named by no
table are free space again, never "leaked"). A caller that rewrites everything it wrote after its last
flush (the resumable copy does: it restarts at the piece of its last heartbeat) gets the same image it
would have got without the crash.
"""

from __future__ import annotations

import os
import struct
import threading

from vmferry.disks.qcow2_header import HEADER_V2, HEADER_V3, OFFSET_MASK
from vmferry.errors import DiskError

CLUSTER_BITS = 16
CLUSTER = 1 << CLUSTER_BITS
L2_ENTRIES = CLUSTER // 8
REFS_PER_BLOCK = CLUSTER // 2            # 16-bit reference counts
COPIED = 1 << 63                         # reference count exactly one
COMPRESSED = 1 << 62
ZERO_FLAG = 1                            # v3 L2 entry: the cluster reads as zeros
MAX_TABLE_BYTES = 32 << 20               # QEMU's limit of the L1 and refcount tables


class LayerWriter:
    """Whole-cluster writes into one plain qcow2 file (see the module's description). Thread-safe."""

    def __init__(self, fd: int, path: str, size: int, l1_offset: int, l1: list[int], rt_offset: int,
                 rt_clusters: int, refblocks: list[int], l2: dict[int, list[int]], used: set[int],
                 end: int) -> None:
        self._fd, self.path, self.size = fd, path, size
        self._l1_offset, self._l1 = l1_offset, l1
        self._rt_offset, self._rt_clusters, self._refblocks = rt_offset, rt_clusters, refblocks
        self._l2 = l2                    # L1 index -> the L2 table's entries (those held in memory)
        self._dirty_l2: set[int] = set()
        self._l1_dirty = False
        self._used = used                # every cluster some table names (header and tables included)
        self._end = end                  # first cluster after everything in use or ever written
        self._lock = threading.Lock()
        self._counted: set[int] | None = None   # clusters the refcount blocks on disk count, once flushed

    # -- opening --------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> LayerWriter | None:
        """A writer over the qcow2 file ``path``, or None when its layout is not the plain one."""
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        try:
            writer = cls._read(fd, os.fspath(path))
        except BaseException:
            os.close(fd)
            raise
        if writer is None:
            os.close(fd)
        return writer

    @classmethod
    def _read(cls, fd: int, path: str) -> LayerWriter | None:
        file_size = os.fstat(fd).st_size
        head = os.pread(fd, HEADER_V2.size + HEADER_V3.size, 0)
        if len(head) < HEADER_V2.size + HEADER_V3.size:
            return None
        (magic, version, _bo, _bs, cluster_bits, size, crypt, l1_size, l1_offset, rt_offset, rt_clusters,
         nb_snapshots, _so) = HEADER_V2.unpack_from(head)
        incompat, _compat, autoclear, refcount_order, _hl = HEADER_V3.unpack_from(head, HEADER_V2.size)
        if (magic, version, cluster_bits, crypt, nb_snapshots, incompat, autoclear, refcount_order) != (
                b"QFI\xfb", 3, CLUSTER_BITS, 0, 0, 0, 0, 4):
            return None
        clusters = -(-size // CLUSTER)
        if not size or l1_size < -(-clusters // L2_ENTRIES) or l1_size * 8 > MAX_TABLE_BYTES:
            return None
        if not rt_clusters or rt_clusters * CLUSTER > MAX_TABLE_BYTES:
            return None
        for offset, length in ((l1_offset, l1_size * 8), (rt_offset, rt_clusters * CLUSTER)):
            if offset % CLUSTER or offset + length > file_size:
                raise DiskError(f"the qcow2 layer {path} is damaged (a table lies outside the file)")
        used = {0}
        used.update(_span(l1_offset, l1_size * 8))
        used.update(_span(rt_offset, rt_clusters * CLUSTER))
        l1 = list(struct.unpack(f">{l1_size}Q", os.pread(fd, l1_size * 8, l1_offset)))
        refblocks = [e for e in struct.unpack(f">{rt_clusters * CLUSTER // 8}Q",
                                              os.pread(fd, rt_clusters * CLUSTER, rt_offset))]
        while refblocks and not refblocks[-1]:
            refblocks.pop()
        for block in refblocks:
            if block and (block % CLUSTER or block + CLUSTER > file_size):
                raise DiskError(f"the qcow2 layer {path} is damaged (a refcount block lies outside the file)")
        used.update(b // CLUSTER for b in refblocks if b)
        l2: dict[int, list[int]] = {}
        for index, entry in enumerate(l1):
            table = entry & OFFSET_MASK
            if not table:
                continue
            if table % CLUSTER or table + CLUSTER > file_size or index * L2_ENTRIES >= clusters:
                raise DiskError(f"the qcow2 layer {path} is damaged (L1 entry {index})")
            used.add(table // CLUSTER)
            entries = list(struct.unpack(f">{L2_ENTRIES}Q", os.pread(fd, CLUSTER, table)))
            for value in entries:
                if value & COMPRESSED:
                    return None      # compressed clusters: QEMU's to write around
                data = value & OFFSET_MASK
                if data:
                    if data % CLUSTER:
                        raise DiskError(f"the qcow2 layer {path} is damaged (an L2 entry is not on a cluster)")
                    used.add(data // CLUSTER)
            l2[index] = entries
        end = max(-(-file_size // CLUSTER), max(used) + 1)
        return cls(fd, path, size, l1_offset, l1, rt_offset, rt_clusters, refblocks, l2, used, end)

    # -- writing --------------------------------------------------------------------------------------
    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length <= 0 or offset % CLUSTER or offset + length > self.size or (
                length % CLUSTER and offset + length != self.size):
            raise DiskError(f"a write of {length} bytes at {offset} is not whole clusters of the layer {self.path} "
                            f"({self.size} bytes)")

    def _entries(self, guest_cluster: int) -> list[int]:
        """The L2 table of ``guest_cluster`` (a new one at the end of the file if need be). Locked."""
        index = guest_cluster // L2_ENTRIES
        table = self._l2.get(index)
        if table is None:
            table = self._l2[index] = [0] * L2_ENTRIES
            host = self._allocate()
            self._l1[index] = host * CLUSTER | COPIED
            self._l1_dirty = True
        self._dirty_l2.add(index)
        return table

    def _allocate(self) -> int:
        host = self._end
        self._end += 1
        self._used.add(host)
        return host

    def pwrite(self, offset: int, data: bytes | memoryview) -> None:
        """Write ``data`` (whole clusters) at guest ``offset``."""
        self._check(offset, len(data))
        view = memoryview(data)
        for at in range(0, len(view), CLUSTER):
            guest = (offset + at) // CLUSTER
            with self._lock:
                table = self._entries(guest)
                entry = table[guest % L2_ENTRIES]
                host = (entry & OFFSET_MASK) // CLUSTER or self._allocate()
                table[guest % L2_ENTRIES] = host * CLUSTER | COPIED
            piece = view[at:at + CLUSTER]
            done = 0
            while done < len(piece):
                done += os.pwrite(self._fd, piece[done:], host * CLUSTER + done)

    def zero(self, offset: int, length: int) -> None:
        """Make whole clusters at guest ``offset`` read as zeros (not as the backing image's bytes)."""
        self._check(offset, length)
        with self._lock:
            for guest in range(offset // CLUSTER, -(-(offset + length) // CLUSTER)):
                table = self._entries(guest)
                entry = table[guest % L2_ENTRIES]
                held = entry & OFFSET_MASK
                table[guest % L2_ENTRIES] = (held | COPIED | ZERO_FLAG) if held else ZERO_FLAG

    def flush(self) -> None:
        """Write the tables and the reference counts, then fsync: the file is whole from here on."""
        with self._lock:
            for index in sorted(self._dirty_l2):
                host = self._l1[index] & OFFSET_MASK
                _write(self._fd, struct.pack(f">{L2_ENTRIES}Q", *self._l2[index]), host)
            self._dirty_l2.clear()
            if self._l1_dirty:
                _write(self._fd, struct.pack(f">{len(self._l1)}Q", *self._l1), self._l1_offset)
                self._l1_dirty = False
            if self._counted != self._used:
                self._write_refcounts()
                self._counted = set(self._used)
        os.fsync(self._fd)

    def _write_refcounts(self) -> None:
        """Every cluster in use counted once (refcount blocks added at the end as the file grows; they
        count themselves). Locked."""
        while True:
            need = -(-(max(self._used) + 1) // REFS_PER_BLOCK)
            if need <= len(self._refblocks) and all(self._refblocks[:need]):
                break
            if need > self._rt_clusters * CLUSTER // 8:
                raise DiskError(f"the qcow2 layer {self.path} outgrew its refcount table")
            while len(self._refblocks) < need:
                self._refblocks.append(0)
            for i in range(need):
                if not self._refblocks[i]:
                    self._refblocks[i] = self._allocate() * CLUSTER
        counts = bytearray(len(self._refblocks) * CLUSTER)
        for cluster in self._used:
            struct.pack_into(">H", counts, cluster * 2, 1)
        for i, block in enumerate(self._refblocks):
            _write(self._fd, counts[i * CLUSTER:(i + 1) * CLUSTER], block)
        table = struct.pack(f">{len(self._refblocks)}Q", *self._refblocks)
        _write(self._fd, table.ljust(self._rt_clusters * CLUSTER, b"\0"), self._rt_offset)

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> LayerWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _span(offset: int, length: int) -> range:
    return range(offset // CLUSTER, -(-(offset + length) // CLUSTER))


def _write(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    view, done = memoryview(data), 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
