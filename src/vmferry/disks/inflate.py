"""Inflating one compressed grain of a streamOptimized VMDK (a zlib stream, RFC 1950/1951), bounded.

Two ways, same result, same checks:

* a grain stored as it is (deflate *stored* blocks only, what VMware's and vmferry's writers make of
  incompressible data, :mod:`vmferry.disks.vmdk_stream`) is taken apart here: the zlib header, each stored
  block's ``LEN``/``NLEN`` (which must be each other's complement), the Adler-32 of the data checked
  against the stream's trailer. No inflater runs: the data is the blocks' bytes joined;
* any other grain is inflated by a zlib inflater, bounded to the grain's size.

Adler-32 and inflating come from ISA-L (the optional ``isal`` package, extra ``vmferry[disks]``) when it
is installed, several times faster than the system zlib on the same streams (Adler-32 about 5x), else
from :mod:`zlib`. A grain that is not a valid zlib stream, ends early, whose checksum is wrong or that inflates to
more than a grain is refused with :class:`~vmferry.errors.DiskError` either way.
"""

from __future__ import annotations

import struct
import zlib

from vmferry.errors import DiskError

_BLOCK = struct.Struct("<BHH")     # a stored block's header byte, LEN, NLEN

try:   # pragma: no cover - which one depends on the installation
    from isal import isal_zlib as _fast
except ImportError:   # pragma: no cover
    _fast = None

_lib = _fast or zlib
_errors = (zlib.error,) + ((_fast.error,) if _fast is not None else ())


class Pieces(tuple):
    """A stored grain's bytes as the consecutive views of its stored blocks, where they lie (a member's
    mapping): nothing copied; :func:`nbytes` is their length, :func:`vmferry.disks.vhd_write.data_runs`
    and the writers take them as they take bytes."""


def nbytes(data) -> int:
    """The length of a grain's ``data`` (bytes, a view or :class:`Pieces`)."""
    return sum(len(p) for p in data) if isinstance(data, Pieces) else len(data)


def _stored_blocks(packed, limit: int, views: bool = False) -> bytes | Pieces | None:
    """The data of a zlib stream made only of stored blocks (joined into new bytes, or as :class:`Pieces`
    with ``views``); None when it has another kind of block (then an inflater reads it). Raises when the
    stream is damaged or holds more than ``limit`` bytes."""
    n = len(packed)
    if n < 2 + 5 + 4:
        return None
    cmf, flg = packed[0], packed[1]
    if cmf & 0x0F != 8 or (cmf << 8 | flg) % 31 or flg & 0x20:
        return None     # not a plain deflate stream: the inflater says what is wrong
    pieces = []
    total, pos = 0, 2
    view = memoryview(packed)
    while True:
        if pos + 5 > n:
            raise zlib.error("the stream ends inside a block header")
        head, length, nlen = _BLOCK.unpack_from(packed, pos)
        if head & 0x06:     # BTYPE is not 00 (stored): a Huffman-coded block
            return None
        if length ^ nlen != 0xFFFF:
            raise zlib.error("invalid stored block lengths")
        pos += 5
        if pos + length > n:
            raise zlib.error("the stream ends inside a stored block")
        total += length
        if total > limit:
            raise OverflowError
        if length:
            pieces.append(view[pos:pos + length])
        pos += length
        if head & 1:        # BFINAL
            break
    if pos + 4 > n:
        raise zlib.error("the stream ends before its Adler-32")
    check = 1
    for piece in pieces:
        check = _lib.adler32(piece, check)
    if check != int.from_bytes(packed[pos:pos + 4], "big"):
        raise zlib.error("incorrect data check")
    return Pieces(pieces) if views else b"".join(pieces)


def _cut(data, n: int):
    """The first ``n`` bytes of ``data`` (bytes or :class:`Pieces`)."""
    if not isinstance(data, Pieces):
        return data[:n]
    out, left = [], n
    for piece in data:
        if left <= 0:
            break
        out.append(piece[:left])
        left -= len(piece)
    return Pieces(out)


def inflate_grain(offset: int, packed, grain: int, capacity: int,
                  views: bool = False) -> tuple[int, bytes | Pieces]:
    """The guest bytes of the compressed grain ``packed`` at guest byte ``offset``: at most ``grain`` bytes,
    cut at the disk's ``capacity``. (offset, data). ``views``: a stored grain's data is returned as
    :class:`Pieces` of ``packed`` (valid as long as ``packed`` is), not copied — for a writer that writes
    them before it lets ``packed`` go."""
    try:
        data = _stored_blocks(packed, grain, views)
        if data is None:
            d = _lib.decompressobj()
            data = d.decompress(packed, grain)
            if d.unconsumed_tail:
                raise OverflowError
            if not d.eof:     # every byte given, no end of stream: cut short (as qemu's reader refuses it)
                raise zlib.error("the stream ends early")
    except OverflowError:
        raise DiskError(f"the grain at byte {offset} inflates to more than a grain") from None
    except _errors as exc:
        raise DiskError(f"the grain at byte {offset} is corrupt: {exc}") from exc
    return offset, _cut(data, max(0, capacity - offset))
