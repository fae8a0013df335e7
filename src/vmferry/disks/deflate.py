"""Deflate helpers shared by the compressing writers (streamOptimized VMDK grains, gzip streams).

* :func:`best_deflate`: the fastest zlib-format (RFC 1950) compressor for a level: ISA-L for levels
  1-3 when the optional ``isal`` package (extra ``vmferry[fast]``) is installed, else zlib.
* :func:`worth_deflating`: whether a block is worth a full deflate, judged on two small samples (its
  start and its middle) deflated first; when those do not shrink by 3 %, the block is taken as
  incompressible (already-compressed files, encrypted or random data) and the writers store it as
  deflate level 0 (stored blocks, still a valid stream), a memory copy instead of a deflate that would
  save nothing.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

Deflate = Callable[[bytes, int], bytes]
PROBE = 2048
SHRINK = 0.97


def best_deflate(level: int) -> Deflate:
    """The fastest zlib-format compressor available for ``level``."""
    if 1 <= level <= 3:
        try:
            from isal import isal_zlib
        except ImportError:
            return zlib.compress
        return isal_zlib.compress
    return zlib.compress


def worth_deflating(block: bytes | memoryview, level: int, deflate: Deflate = zlib.compress) -> bool:
    """Whether deflating ``block`` at ``level`` is worth it, judged on two ``PROBE``-byte samples."""
    if level == 0 or not block:
        return False
    half = len(block) // 2
    sample = bytes(block[:PROBE]) + bytes(block[half:half + PROBE])
    return len(deflate(sample, level)) < len(sample) * SHRINK
