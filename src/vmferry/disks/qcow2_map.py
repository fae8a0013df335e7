"""Which guest ranges one qcow2 file holds itself (its backing chain not read), from its L1 and L2
tables (QEMU's ``docs/interop/qcow2.txt``): what ``qemu-img map --output=json`` reports with ``"depth":
0, "present": true`` (clusters with data, compressed clusters, and clusters marked as reading zeros),
read in this process instead of a ``qemu-img`` run.

Only the plain layout is read: version 2 or 3, no external data file, standard (not extended) L2
entries, no incompatible feature vmferry does not know. Anything else gives ``None``, and the caller asks
``qemu-img map``. The work is one read of the L1 table and one of each L2 table it names.
"""

from __future__ import annotations

import os
import struct

from vmferry.disks.qcow2_header import (
    HEADER_V2,
    HEADER_V3,
    INCOMPAT_COMPRESSION,
    INCOMPAT_DIRTY,
    MAX_L1_BYTES,
    OFFSET_MASK,
)

COPIED = 1 << 63          # L1/L2 flag: reference count exactly one (says nothing about allocation)
COMPRESSED = 1 << 62      # L2 flag: a compressed cluster (its descriptor is not a plain offset)
ZERO_FLAG = 1             # v3 L2 flag: the cluster reads as zeros whatever its offset holds
READABLE_INCOMPAT = INCOMPAT_DIRTY | INCOMPAT_COMPRESSION


def held_ranges(path: str | os.PathLike) -> list[tuple[int, int]] | None:
    """(guest offset, length) runs, in order, of the clusters the qcow2 file at ``path`` holds itself;
    None when its layout is not the plain one this reads (see the module's description)."""
    with open(path, "rb") as fh:
        table = _table(fh.fileno(), os.fstat(fh.fileno()).st_size)
    if table is None:
        return None
    cluster, size, entries = table
    runs: list[tuple[int, int]] = []
    for guest, _entry in entries:
        start = guest * cluster
        length = min(cluster, size - start)
        if runs and runs[-1][0] + runs[-1][1] == start:
            runs[-1] = (runs[-1][0], runs[-1][1] + length)
        else:
            runs.append((start, length))
    return runs


def held_clusters(path: str | os.PathLike) -> tuple[int, set[int]] | None:
    """(cluster size, the guest clusters the file holds itself: data, zeros or compressed); None when its
    layout is not the plain one this reads."""
    with open(path, "rb") as fh:
        table = _table(fh.fileno(), os.fstat(fh.fileno()).st_size)
    if table is None:
        return None
    return table[0], {guest for guest, _entry in table[2]}


def data_clusters(path: str | os.PathLike) -> tuple[int, dict[int, int]] | None:
    """(cluster size, {host cluster index: guest cluster index}) of the clusters whose bytes the file
    holds as they are (data clusters: neither compressed nor marked as reading zeros); None when its
    layout is not the plain one this reads."""
    with open(path, "rb") as fh:
        table = _table(fh.fileno(), os.fstat(fh.fileno()).st_size)
    if table is None:
        return None
    cluster, _size, entries = table
    return cluster, {(e & OFFSET_MASK) // cluster: guest for guest, e in entries
                     if e & OFFSET_MASK and not e & (COMPRESSED | ZERO_FLAG)}


def _table(fd: int, file_size: int) -> tuple[int, int, list[tuple[int, int]]] | None:
    """(cluster size, virtual size, [(guest cluster, L2 entry)] of the clusters the file holds, in order)."""
    head = os.pread(fd, HEADER_V2.size + HEADER_V3.size, 0)
    if len(head) < HEADER_V2.size:
        return None
    (magic, version, _bo, _bs, cluster_bits, size, crypt, l1_size, l1_offset, *_rest) = HEADER_V2.unpack_from(head)
    if magic != b"QFI\xfb" or version not in (2, 3) or not 9 <= cluster_bits <= 21 or crypt:
        return None
    if version == 3:
        if len(head) < HEADER_V2.size + HEADER_V3.size:
            return None
        incompat = HEADER_V3.unpack_from(head, HEADER_V2.size)[0]
        if incompat & ~READABLE_INCOMPAT:
            return None   # external data file, extended L2, corrupt, or unknown: qemu-img knows better
    cluster = 1 << cluster_bits
    per_l2 = cluster // 8
    clusters = -(-size // cluster)
    if l1_size * 8 > MAX_L1_BYTES or l1_size < -(-clusters // per_l2):
        return None
    if l1_size and (l1_offset % cluster or l1_offset + l1_size * 8 > file_size):
        return None
    raw = os.pread(fd, l1_size * 8, l1_offset) if l1_size else b""
    if len(raw) != l1_size * 8:
        return None
    held: list[tuple[int, int]] = []
    for index, entry in enumerate(struct.unpack(f">{l1_size}Q", raw)):
        l2_offset = entry & OFFSET_MASK
        first = index * per_l2
        if not l2_offset or first >= clusters:
            continue
        if l2_offset % cluster or l2_offset + cluster > file_size:
            return None
        table = os.pread(fd, cluster, l2_offset)
        if len(table) != cluster:
            return None
        count = min(per_l2, clusters - first)
        entries = struct.unpack_from(f">{count}Q", table)
        held += [(first + i, l2) for i, l2 in enumerate(entries) if l2 & ~COPIED]   # others: the backing's
    return cluster, size, held
