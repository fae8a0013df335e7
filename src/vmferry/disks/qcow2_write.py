"""A parallel qcow2 writer for streamOptimized VMDK sources read in place (an OVA member): what
OpenStack, Proxmox and KVM import, written without qemu-img so that the grains inflate on a thread pool
and the member is read once (its manifest digest computed on the same reading).

The image follows QEMU's ``docs/interop/qcow2.txt``, version 3 (``compat=1.1``), as ``qemu-img create -f
qcow2`` makes it: 64 KiB clusters, 16-bit refcounts, no feature bits, no extension. A VMDK grain of
64 KiB is one cluster: each grain that holds data gets the next free cluster (cluster 0 is the header),
all-zero grains and grains the VMDK leaves out stay unallocated (read as zeros). When every grain is
written, the L2 tables, the L1 table, the refcount blocks and the refcount table follow the data, each
cluster with a reference count of one; the header is written last.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable

from vmferry.errors import DiskError

CLUSTER_BITS = 16
CLUSTER = 1 << CLUSTER_BITS
L2_ENTRIES = CLUSTER // 8
REFCOUNT_ORDER = 4                       # 16-bit reference counts
REFS_PER_BLOCK = CLUSTER * 8 // (1 << REFCOUNT_ORDER)
COPIED = 1 << 63                         # L1/L2 entries of clusters with a reference count of exactly one
HEADER = struct.Struct(">4sIQIIQIIQQIIQQQQII")   # version 3 header, 104 bytes


def _clusters(n: int) -> int:
    return -(-n // CLUSTER)


class Qcow2Writer:
    """Clusters put from several threads (:meth:`put`), the metadata written by :meth:`finish`."""

    def __init__(self, fd: int, virtual_size: int) -> None:
        if virtual_size <= 0:
            raise DiskError("a disk needs a positive size")
        self.fd, self.size = fd, virtual_size
        self.map: dict[int, int] = {}        # guest cluster -> host cluster
        self.next = 1                        # cluster 0: the header
        self.lock = threading.Lock()

    def put(self, guest: int, data: bytes | memoryview) -> int:
        """Write the guest bytes ``data`` at ``guest`` (one cluster at most, starting on a cluster); an
        all-zero one is left unallocated. The bytes written."""
        return self.put_many([(guest, data)])

    def put_many(self, grains: list[tuple[int, bytes | memoryview]]) -> int:
        """:meth:`put` for a run of clusters: those holding data get consecutive host clusters (one
        taking of the lock) and are written together (:func:`~vmferry.disks.vhd_write.write_gathered`)."""
        from vmferry.disks.inflate import nbytes
        from vmferry.disks.vhd_write import data_runs, write_gathered

        keep = []
        for guest, data in grains:
            n = nbytes(data)
            if guest % CLUSTER or n > CLUSTER or guest + n > self.size:
                raise DiskError(f"{n} bytes at {guest} are not one cluster of the disk")
            runs = data_runs(0, data)      # one run at most: a cluster is 64 KiB
            if runs:
                keep.append((guest, runs))
        if not keep:
            return 0
        with self.lock:
            first = self.next
            self.next += len(keep)
            for i, (guest, _runs) in enumerate(keep):
                self.map[guest // CLUSTER] = first + i
        return write_gathered(self.fd, [((first + i) * CLUSTER + at, view)
                                        for i, (_guest, runs) in enumerate(keep) for at, view in runs])

    def finish(self, backing: str | None = None, backing_format: str = "qcow2") -> int:
        """Write the tables and the header; the file's size. ``backing`` (a file name, relative to the
        image's folder or absolute) makes the image an overlay of that image of ``backing_format``:
        the name and a backing-format header extension are written in the header cluster, as ``qemu-img
        create -b NAME -F FORMAT`` writes them."""
        tail = _header_tail(backing, backing_format)
        fd = self.fd
        l1_size = -(-_clusters(self.size) // L2_ENTRIES)
        tables = sorted({g // L2_ENTRIES for g in self.map})
        at = self.next
        l2_at = {index: at + i for i, index in enumerate(tables)}
        at += len(tables)
        l1_at, at = at, at + _clusters(l1_size * 8)
        blocks = table = 0
        while True:     # the refcount structures count themselves
            total = at + blocks + table
            need_blocks = -(-total // REFS_PER_BLOCK)
            need_table = _clusters(need_blocks * 8)
            if (need_blocks, need_table) == (blocks, table):
                break
            blocks, table = need_blocks, need_table
        rb_at, rt_at = at, at + blocks
        total = rt_at + table
        for index in tables:
            entries = bytearray(CLUSTER)
            base = index * L2_ENTRIES
            for g in range(base, min(base + L2_ENTRIES, _clusters(self.size))):
                host = self.map.get(g)
                if host is not None:
                    struct.pack_into(">Q", entries, (g - base) * 8, host * CLUSTER | COPIED)
            os.pwrite(fd, entries, l2_at[index] * CLUSTER)
        l1 = bytearray(_clusters(l1_size * 8) * CLUSTER)
        for index, cluster in l2_at.items():
            struct.pack_into(">Q", l1, index * 8, cluster * CLUSTER | COPIED)
        os.pwrite(fd, l1, l1_at * CLUSTER)
        for b in range(blocks):
            first, last = b * REFS_PER_BLOCK, min(total, (b + 1) * REFS_PER_BLOCK)
            counts = struct.pack(f">{last - first}H", *([1] * (last - first)))
            os.pwrite(fd, counts.ljust(CLUSTER, b"\0"), (rb_at + b) * CLUSTER)
        os.pwrite(fd, b"".join(struct.pack(">Q", (rb_at + b) * CLUSTER) for b in range(blocks)).ljust(
            table * CLUSTER, b"\0"), rt_at * CLUSTER)
        os.ftruncate(fd, total * CLUSTER)
        name_at = HEADER.size + len(tail) - (len(os.fsencode(backing)) if backing else 0)
        head = HEADER.pack(b"QFI\xfb", 3, name_at if backing else 0, len(os.fsencode(backing)) if backing else 0,
                           CLUSTER_BITS, self.size, 0, l1_size, l1_at * CLUSTER, rt_at * CLUSTER, table, 0, 0, 0, 0,
                           0, REFCOUNT_ORDER, HEADER.size)
        os.pwrite(fd, head + tail, 0)     # the header, its extensions and their end, the backing name
        return total * CLUSTER


EXT_END, EXT_BACKING_FORMAT = 0, 0xE2792ACA
MAX_BACKING_NAME = 1023                  # QEMU refuses longer backing file names


def _header_tail(backing: str | None, backing_format: str) -> bytes:
    """What follows the 104-byte header in cluster 0: the backing-format extension (when there is a
    backing file), the end of the extensions, the backing file name."""
    if backing is None:
        return bytes(8)
    name, fmt = os.fsencode(backing), backing_format.encode()
    if not 0 < len(name) <= MAX_BACKING_NAME or b"\0" in name:
        raise DiskError(f"backing file name {backing!r} is not possible in a qcow2 header")
    if not fmt or len(fmt) > 16 or not fmt.isalnum():
        raise DiskError(f"backing format {backing_format!r} is not possible in a qcow2 header")
    ext = struct.pack(">II", EXT_BACKING_FORMAT, len(fmt)) + fmt.ljust(-(-len(fmt) // 8) * 8, b"\0")
    return ext + bytes(8) + name


def create_image(path: str | os.PathLike, virtual_size: int, *, backing: str | None = None,
                 backing_format: str = "qcow2") -> None:
    """A new, empty qcow2 image at ``path`` (which must not exist; size a multiple of 512 bytes): what ``qemu-img create -f qcow2 -o
    cluster_size=65536 [-b BACKING -F FORMAT] PATH SIZE`` makes, 64 KiB clusters, version 3, written in
    this process. With ``backing`` every cluster reads from the backing image until written. Like
    ``qemu-img create`` it does not fsync: whoever writes the image flushes it."""
    if virtual_size <= 0 or virtual_size % 512:
        raise DiskError(f"a qcow2 image of {virtual_size} bytes is not possible (a positive multiple of 512)")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        Qcow2Writer(fd, virtual_size).finish(backing, backing_format)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def write_qcow2_from_member(path: str, offset: int, size: int, fd: int, *, workers: int | None = None,
                            progress: Callable[[int], object] | None = None,
                            feed: Callable[[bytes], object] | None = None,
                            name: str | None = None) -> tuple[int, int]:
    """The streamOptimized VMDK (64 KiB grains) at ``[offset, offset+size)`` of ``path`` as a qcow2
    image in the empty file ``fd`` (see :func:`vmferry.disks.vhd_write.member_grains`: read once,
    ``feed`` gets every byte). (virtual size, guest bytes written)."""
    from vmferry.disks.vhd_write import write_member_with

    return write_member_with(Qcow2Writer, path, offset, size, fd, workers=workers, progress=progress, feed=feed,
                             name=name)
