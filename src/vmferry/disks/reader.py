"""Reading a disk's guest-visible bytes without converting it first.

:func:`open_raw` asks ``qemu-img map`` where each virtual range lies. Zero ranges are never read;
ranges stored plainly (raw, fixed VHD, uncompressed qcow2/VHD/VHDX clusters) are read straight
from the file with ``pread`` (which releases the GIL, so worker threads read in parallel). A
source with compressed clusters (streamOptimized VMDK, compressed qcow2) cannot be read this way:
``plain`` is then false and the caller lets qemu-img convert it.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass

from vmferry.errors import DiskError
from vmferry.tools import qemu_img
from vmferry.tools.qemu_img import Extent, ImageSpec


@dataclass
class RawReader:
    """Guest bytes of ``spec`` as a random-access reader; use as a context manager."""

    spec: ImageSpec
    virtual_size: int
    extents: list[Extent]
    single_file: bool = True   # the map's offsets point into spec.path (no separate extent files)
    fd: int = -1

    def __post_init__(self) -> None:
        self._starts = [e.start for e in self.extents]

    @property
    def plain(self) -> bool:
        """True when every data range can be read straight from the file."""
        return self.single_file and all(e.offset is not None and e.depth == 0
                                        for e in self.extents if e.data and not e.zero)

    @property
    def data_bytes(self) -> int:
        return sum(e.length for e in self.extents if e.data and not e.zero)

    def __enter__(self) -> RawReader:
        try:
            self.fd = os.open(self.spec.path, os.O_RDONLY)
        except OSError as exc:
            raise DiskError(f"cannot open: {exc.strerror}", path=self.spec.path) from exc
        return self

    def __exit__(self, *exc) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def is_zero(self, start: int, length: int) -> bool:
        """True when the map says ``[start, start+length)`` reads as zeros."""
        end = start + length
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while i < len(self.extents) and self.extents[i].start < end:
            e = self.extents[i]
            if e.start + e.length > start and e.data and not e.zero:
                return False
            i += 1
        return True

    def pread(self, start: int, length: int) -> bytes:
        """The guest bytes of ``[start, start+length)``; zero-filled past the end and in holes."""
        length = max(0, min(length, self.virtual_size - start))
        out = bytearray(length)
        end = start + length
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while i < len(self.extents) and self.extents[i].start < end:
            e = self.extents[i]
            i += 1
            lo, hi = max(start, e.start), min(end, e.start + e.length)
            if hi <= lo or not e.data or e.zero:
                continue
            if e.offset is None or e.depth or not self.single_file:
                raise DiskError("these clusters cannot be read directly", path=self.spec.path)
            host = e.offset + (lo - e.start)
            chunk = os.pread(self.fd, hi - lo, host)
            if len(chunk) != hi - lo:
                raise DiskError(f"the image is truncated: {hi - lo} bytes expected at {host}",
                                path=self.spec.path)
            out[lo - start:hi - start] = chunk
        return bytes(out)


def open_raw(spec: ImageSpec, virtual_size: int) -> RawReader:
    """Map ``spec`` (a file or an OVA member range) for direct reading.

    ``qemu-img map`` reports host offsets relative to the BDS below the top driver: for a raw
    range that is the file itself (the raw layer adds its ``offset``), for any other format it is
    the raw range layer, so ``spec.offset`` is added here.
    """
    extents = qemu_img.map_extents(spec)
    # an external data file holds the data: the map's offsets point into it, not into spec.path
    single = spec.data_file is None
    if single and spec.fmt == "vmdk":  # a text descriptor keeps its data in other files
        with open(spec.path, "rb") as f:
            single = os.pread(f.fileno(), 4, spec.offset) == b"KDMV"
    if spec.fmt != "raw" and spec.offset:
        extents = [Extent(e.start, e.length, e.data, e.zero,
                          None if e.offset is None else e.offset + spec.offset) for e in extents]
    return RawReader(spec, virtual_size, extents, single)
