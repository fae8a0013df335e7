"""One sparse file in a GNU tar archive of the ``oldgnu`` format, streamed (Compute Engine's image format:
``disk.raw`` in a gzip'd tar that ``tar --format=oldgnu -Sczf`` would write).

    from vmferry.disks.gnutar import data_extents, write_sparse_member
    extents = data_extents(fd, size)                 # where the file holds data (SEEK_DATA/SEEK_HOLE)
    write_sparse_member("disk.raw", size, extents, pread, write)   # header, sparse map, data, end of archive

The layout is GNU tar's own (GNU tar manual, "GNU tar and POSIX tar": the ``oldgnu`` header; "Storing
Sparse Files": the old GNU sparse format): a 512-byte header of type ``S`` whose ``size`` field counts the
bytes stored and ``realsize`` the file's length, a map of (offset, length) data regions (four in the
header, 21 in each extension block, ``isextended`` chaining them), then the data regions one after the
other, padded to 512 bytes; the archive ends with two zero blocks and is padded to a 10240-byte record.
A file that ends in a hole gets a last region of length 0 at its end, as GNU tar writes it, so that the
length is restored on extraction. Numbers too large for 11 octal digits use GNU's base-256 form.

I/O is passed in (``pread(offset, length)``, ``write(bytes)``): the caller decides where bytes come from
and go to (a gzip stream for Compute Engine).
"""

from __future__ import annotations

import os
from collections.abc import Callable

BLOCK = 512
RECORD = 20 * BLOCK
HEADER_SPARSE = 4          # sparse entries in the header
EXTENSION_SPARSE = 21      # sparse entries in an extension block
OLDGNU_MAGIC = b"ustar  \0"
CHUNK = 1 << 20


def _number(value: int, width: int) -> bytes:
    """A numeric field: octal digits and a NUL, or GNU's base-256 form when too large."""
    if value < 0:
        raise ValueError(f"negative tar field {value}")
    if value < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, value)
    if value >= 256 ** (width - 1):
        raise ValueError(f"{value} does not fit a {width}-byte tar field")
    return bytes([0x80]) + value.to_bytes(width - 1, "big")


def _sparse_entries(entries: list[tuple[int, int]], count: int) -> bytes:
    out = b"".join(_number(off, 12) + _number(length, 12) for off, length in entries)
    return out.ljust(count * 24, b"\0")


def sparse_map(size: int, extents: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The map GNU tar stores: the data regions in order, merged when adjacent, and a region of length 0
    at the end when the file ends in a hole (or holds no data at all)."""
    out: list[tuple[int, int]] = []
    for off, length in sorted(extents):
        if length <= 0:
            continue
        if off < 0 or off + length > size:
            raise ValueError(f"data region {off}+{length} outside a file of {size} bytes")
        if out and out[-1][0] + out[-1][1] >= off:
            start = out[-1][0]
            out[-1] = (start, max(out[-1][0] + out[-1][1], off + length) - start)
        else:
            out.append((off, length))
    if not out or out[-1][0] + out[-1][1] < size:
        out.append((size, 0))
    return out


def header(name: str, size: int, regions: list[tuple[int, int]], *, mtime: int = 0, mode: int = 0o644) -> bytes:
    """The header and extension blocks of a sparse member ``name`` of ``size`` bytes whose data
    ``regions`` (:func:`sparse_map`) are stored."""
    encoded = name.encode()
    if len(encoded) > 99 or "/" in name:
        raise ValueError(f"member name {name!r}: a plain name of at most 99 bytes")
    stored = sum(length for _, length in regions)
    first, rest = regions[:HEADER_SPARSE], regions[HEADER_SPARSE:]
    block = bytearray(BLOCK)
    block[0:len(encoded)] = encoded
    block[100:108] = _number(mode, 8)
    block[108:116] = _number(0, 8)
    block[116:124] = _number(0, 8)
    block[124:136] = _number(stored, 12)
    block[136:148] = _number(mtime, 12)
    block[156:157] = b"S"
    block[257:265] = OLDGNU_MAGIC
    block[265:269] = b"root"
    block[297:301] = b"root"
    block[386:482] = _sparse_entries(first, HEADER_SPARSE)
    block[482] = 1 if rest else 0
    block[483:495] = _number(size, 12)
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    out = [bytes(block)]
    while rest:
        chunk, rest = rest[:EXTENSION_SPARSE], rest[EXTENSION_SPARSE:]
        ext = bytearray(BLOCK)
        ext[0:504] = _sparse_entries(chunk, EXTENSION_SPARSE)
        ext[504] = 1 if rest else 0
        out.append(bytes(ext))
    return b"".join(out)


def data_extents(fd: int, size: int) -> list[tuple[int, int]]:
    """(offset, length) of the regions of the open file ``fd`` that hold data, by SEEK_DATA/SEEK_HOLE;
    the whole file when the file system cannot say."""
    out = []
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:   # ENXIO: no data after pos
                if exc.errno == 6:
                    break
                raise
            if start >= size:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            out.append((start, end - start))
            pos = end
    except OSError:
        return [(0, size)] if size else []
    return out


def write_sparse_member(name: str, size: int, extents: list[tuple[int, int]],
                        pread: Callable[[int, int], bytes], write: Callable[[bytes], object], *,
                        mtime: int = 0, progress: Callable[[int], object] | None = None) -> int:
    """Write a whole archive holding the sparse member ``name``; returns the archive's length."""
    regions = sparse_map(size, extents)
    head = header(name, size, regions, mtime=mtime)
    write(head)
    total = len(head)
    for off, length in regions:
        left, pos = length, off
        while left > 0:
            block = pread(pos, min(CHUNK, left))
            if not block:
                raise OSError(f"short read at {pos} of {name}")
            write(block)
            pos += len(block)
            left -= len(block)
            total += len(block)
            if progress is not None:
                progress(len(block))
    pad = -total % BLOCK
    end = pad + 2 * BLOCK
    end += -(total + end) % RECORD
    write(b"\0" * end)
    return total + end
