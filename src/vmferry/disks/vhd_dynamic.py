"""A parallel writer of dynamic VHD images (what AWS VM Import, Xen and Hyper-V take), after Microsoft's
*Virtual Hard Disk Image Format Specification* (version 1.0: "Dynamic Disk Header Format", "Block
Allocation Table and Data Blocks"), the layout ``qemu-img create -f vpc -o subformat=dynamic`` makes:

====== ============================================================================================
offset what
====== ============================================================================================
0      a copy of the footer (:mod:`vmferry.disks.vhd_footer`; disk type 3, data offset 512)
512    the dynamic disk header (1024 bytes: ``cxsparse``, table offset, entries, block size, checksum;
       no parent: the parent fields and the eight parent locators are zeros)
1536   the block allocation table (BAT): one big-endian uint32 per 2 MiB block, the block's sector in
       the file or 0xFFFFFFFF when the block is not allocated (it reads as zeros); padded to a sector
...    the blocks, each a 512-byte sector bitmap (all ones: every sector of the block is present, the
       parts never written are holes of the file and read as zeros) and the block's 2 MiB of data
end    the footer
====== ============================================================================================

Guest bytes arrive from several threads (:meth:`DynamicVhdWriter.put_many`, a run of grains at a time): the first
non-zero data of a block allocates it (the next free place in the file, under a lock), all-zero data
allocates nothing; the data is written at its place in the block with ``os.pwrite`` (which releases the
GIL), zero runs of 64 KiB inside it left as holes. :meth:`~DynamicVhdWriter.finish` writes the BAT, the
header and both footers. Blocks lie in the file in the order they were first written to, which threads
decide: the BAT says where each is, as the specification allows.

The creator application is ``qem2``: QEMU (and libguestfs and every tool built on it) reads a VHD's size
from the footer's current size only for creators it knows and from the CHS geometry otherwise, which
would cut a disk whose size is not a whole number of cylinders; ``qem2`` is what ``qemu-img convert -O vpc
-o force_size=on`` writes for the same reason, so the image reads the same as the one it replaces.
"""

from __future__ import annotations

import os
import struct
import threading
import uuid
from collections.abc import Callable

from vmferry.disks.vhd_footer import DISK_DYNAMIC, MAX_VHD_SIZE, SECTOR, build_footer
from vmferry.errors import DiskError

BLOCK = 2 << 20                     # 2 MiB blocks, as Hyper-V and qemu write them
HEADER_AT = SECTOR
BAT_AT = 3 * SECTOR
UNUSED = 0xFFFFFFFF
HEADER_VERSION = 0x00010000
CREATOR = b"qem2"
DYNAMIC_HEADER = struct.Struct(">8sQQIIII16sI4s512s192s256s")
assert DYNAMIC_HEADER.size == 1024
BITMAP = b"\xff" * SECTOR             # every sector of an allocated block present


def dynamic_header(entries: int, *, table_offset: int = BAT_AT, block: int = BLOCK) -> bytes:
    """The 1024-byte dynamic disk header of a disk with ``entries`` blocks of ``block`` bytes."""
    fields = [b"cxsparse", 0xFFFFFFFFFFFFFFFF, table_offset, HEADER_VERSION, entries, block, 0, bytes(16), 0,
              bytes(4), bytes(512), bytes(192), bytes(256)]
    raw = DYNAMIC_HEADER.pack(*fields)
    fields[6] = ~(sum(raw[:36]) + sum(raw[40:])) & 0xFFFFFFFF
    return DYNAMIC_HEADER.pack(*fields)


class DynamicVhdWriter:
    """Guest data put from several threads (:meth:`put`), the tables written by :meth:`finish`."""

    def __init__(self, fd: int, virtual_size: int) -> None:
        if virtual_size <= 0 or virtual_size % SECTOR:
            raise DiskError(f"a VHD holds whole sectors: {virtual_size} bytes is not a positive multiple of "
                            f"{SECTOR}")
        if virtual_size > MAX_VHD_SIZE:
            raise DiskError(f"a VHD holds at most {MAX_VHD_SIZE} bytes, not {virtual_size}")
        self.fd, self.size = fd, virtual_size
        self.entries = -(-virtual_size // BLOCK)
        bat_bytes = self.entries * 4
        self.first = BAT_AT + bat_bytes + (-bat_bytes % SECTOR)   # where the first block goes
        self.next = self.first
        self.blocks: dict[int, int] = {}      # block index -> byte offset of its bitmap in the file
        self.lock = threading.Lock()

    def put(self, guest: int, data: bytes | memoryview) -> int:
        """Write the guest bytes ``data`` at ``guest`` (sector-aligned, inside one block of the disk); an
        all-zero run allocates nothing. The bytes written."""
        return self.put_many([(guest, data)])

    def put_many(self, grains: list[tuple[int, bytes | memoryview]]) -> int:
        """:meth:`put` for a run of grains: their non-zero 64 KiB runs written, adjacent ones together
        (:func:`~vmferry.disks.vhd_write.write_gathered`), the blocks they fall in allocated first (one
        taking of the lock)."""
        from vmferry.disks.inflate import nbytes
        from vmferry.disks.vhd_write import data_runs, write_gathered

        runs = []
        for guest, data in grains:
            n = nbytes(data)
            if guest % SECTOR or guest < 0 or guest + n > self.size or guest // BLOCK != (guest + n - 1) // BLOCK:
                raise DiskError(f"{n} bytes at {guest} are not inside one block of the disk")
            runs += data_runs(guest, data)
        if not runs:
            return 0
        new = []
        with self.lock:
            for index in sorted({at // BLOCK for at, _view in runs}):
                if index not in self.blocks:
                    self.blocks[index] = self.next
                    new.append(self.next)
                    self.next += SECTOR + BLOCK
        pieces = [(at, memoryview(BITMAP)) for at in new]
        pieces += [(self.blocks[at // BLOCK] + SECTOR + at % BLOCK, view) for at, view in runs]
        pieces.sort(key=lambda p: p[0])
        return write_gathered(self.fd, pieces) - SECTOR * len(new)

    def finish(self) -> int:
        """Write the BAT, the header and both footers; the file's size."""
        bat = bytearray(b"\xff" * (self.first - BAT_AT))
        for index, at in self.blocks.items():
            struct.pack_into(">I", bat, index * 4, at // SECTOR)
        footer = build_footer(self.size, disk_type=DISK_DYNAMIC, data_offset=HEADER_AT, uid=uuid.uuid4(),
                              creator=CREATOR)
        _pwrite(self.fd, footer + dynamic_header(self.entries) + bytes(bat), 0)
        _pwrite(self.fd, footer, self.next)
        os.ftruncate(self.fd, self.next + SECTOR)
        return self.next + SECTOR


def _pwrite(fd: int, data, offset: int) -> int:
    view, done = memoryview(data), 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
    return done


def write_vhd_from_member(path: str, offset: int, size: int, fd: int, *, workers: int | None = None,
                          progress: Callable[[int], object] | None = None,
                          feed: Callable[[bytes], object] | None = None,
                          name: str | None = None) -> tuple[int, int]:
    """The streamOptimized VMDK at ``[offset, offset+size)`` of ``path`` as a dynamic VHD in the empty file
    ``fd`` (:func:`vmferry.disks.vhd_write.member_grains`: read once, ``feed`` gets every byte, grains
    inflated and written on a pool). (virtual size, guest bytes written)."""
    from vmferry.disks.vhd_write import write_member_with

    return write_member_with(DynamicVhdWriter, path, offset, size, fd, workers=workers, progress=progress, feed=feed,
                             name=name)
