"""The VHD footer, written and read by vmferry, after Microsoft's *Virtual Hard Disk Image Format
Specification* (version 1.0, "Hard Disk Footer Format" and appendix "CHS Calculation").

A fixed VHD is the disk's bytes followed by one 512-byte footer (big-endian fields):

====== ===== ==========================================================================
offset bytes field
====== ===== ==========================================================================
0      8     cookie ``conectix``
8      4     features (bit 1, "reserved", is always set: 0x00000002)
12     4     file format version 0x00010000
16     8     data offset: 0xFFFFFFFFFFFFFFFF for a fixed disk (no dynamic header)
24     4     time stamp: seconds since 2000-01-01 00:00:00 UTC
28     4     creator application (four characters)
32     4     creator version (major.minor as two 16-bit halves)
36     4     creator host OS: ``Wi2k`` (0x5769326B) or ``Mac `` (0x4D616320)
40     8     original size (bytes)
48     8     current size (bytes)
56     4     disk geometry: cylinders (16 bits), heads (8), sectors per track (8)
60     4     disk type: 2 fixed, 3 dynamic, 4 differencing
64     4     checksum: one's complement of the sum of every footer byte, this field taken as 0
68     16    unique id (a UUID)
84     1     saved state (0)
85     427   reserved (zeros)
====== ===== ==========================================================================

:func:`chs_geometry` is the specification's CHS calculation (the geometry never claims more sectors
than the disk has; at most 65535 x 16 x 255). Azure reads the host OS field ("Wi2k" is what Microsoft's
tools write) and requires the current size to be a whole number of MiB: :func:`round_size`.
"""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass

from vmferry.errors import DiskError

SECTOR = 512
MIB = 1 << 20
COOKIE = b"conectix"
FEATURES = 0x00000002
VERSION = 0x00010000
FIXED_DATA_OFFSET = 0xFFFFFFFFFFFFFFFF
DISK_FIXED, DISK_DYNAMIC, DISK_DIFFERENCING = 2, 3, 4
CREATOR_APP = b"vmfy"
CREATOR_VERSION = 0x00010000
HOST_WINDOWS = b"Wi2k"
EPOCH_2000 = 946684800             # 2000-01-01T00:00:00Z in Unix time
MAX_CHS_SECTORS = 65535 * 16 * 255
MAX_VHD_SIZE = 2040 << 30          # what Hyper-V and Azure take in a VHD
FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII16sB427s")
assert FOOTER.size == SECTOR


@dataclass(frozen=True)
class VhdFooter:
    cookie: bytes
    features: int
    version: int
    data_offset: int
    timestamp: int
    creator_app: bytes
    creator_version: int
    creator_os: bytes
    original_size: int
    current_size: int
    cylinders: int
    heads: int
    sectors: int
    disk_type: int
    checksum: int
    uid: uuid.UUID
    saved_state: int

    @property
    def geometry(self) -> tuple[int, int, int]:
        return self.cylinders, self.heads, self.sectors


def chs_geometry(size: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) of a disk of ``size`` bytes, by the specification's
    algorithm (appendix "CHS Calculation")."""
    total = min(size // SECTOR, MAX_CHS_SECTORS)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


def round_size(size: int, align: int = SECTOR) -> int:
    """``size`` rounded up to a multiple of ``align`` (a power of two, at least a sector)."""
    if align < SECTOR or align & (align - 1):
        raise DiskError(f"a VHD size alignment of {align} bytes is not a power of two of at least a sector")
    return -(-size // align) * align


def checksum(footer: bytes) -> int:
    """One's complement of the byte sum of ``footer`` with its checksum field (bytes 64-67) taken as 0."""
    return ~(sum(footer[:64]) + sum(footer[68:SECTOR])) & 0xFFFFFFFF


def build_footer(size: int, *, disk_type: int = DISK_FIXED, timestamp: float | None = None,
                 uid: uuid.UUID | None = None, data_offset: int = FIXED_DATA_OFFSET,
                 creator: bytes = CREATOR_APP) -> bytes:
    """The 512-byte footer of a disk of ``size`` bytes (a whole number of sectors); ``creator`` is the
    four-character creator application."""
    if size <= 0 or size % SECTOR:
        raise DiskError(f"a VHD holds whole sectors: {size} bytes is not a positive multiple of {SECTOR}")
    if size > MAX_VHD_SIZE:
        raise DiskError(f"a VHD holds at most {MAX_VHD_SIZE} bytes, not {size}")
    stamp = int(time.time() if timestamp is None else timestamp) - EPOCH_2000
    cyl, heads, spt = chs_geometry(size)
    uid = uid or uuid.uuid4()
    if len(creator) != 4:
        raise DiskError(f"a VHD creator application is four bytes, not {creator!r}")
    fields = [COOKIE, FEATURES, VERSION, data_offset, max(stamp, 0) & 0xFFFFFFFF, creator, CREATOR_VERSION,
              HOST_WINDOWS, size, size, cyl, heads, spt, disk_type, 0, uid.bytes, 0, bytes(427)]
    raw = FOOTER.pack(*fields)
    fields[14] = checksum(raw)
    return FOOTER.pack(*fields)


def parse_footer(data: bytes, *, where: str | None = None) -> VhdFooter:
    """Read a footer; :class:`DiskError` when the cookie or the checksum is wrong."""
    if len(data) != SECTOR:
        raise DiskError(f"a VHD footer is {SECTOR} bytes, not {len(data)}", path=where)
    values = list(FOOTER.unpack(data)[:-1])
    values[15] = uuid.UUID(bytes=values[15])
    f = VhdFooter(*values)
    if f.cookie != COOKIE:
        raise DiskError("no VHD footer (cookie 'conectix' missing)", path=where)
    if f.checksum != checksum(data):
        raise DiskError(f"the VHD footer checksum is {f.checksum:#010x}, the bytes sum to {checksum(data):#010x}",
                        path=where)
    return f


def fixed_footer_problems(footer: VhdFooter, file_size: int, *, align: int = SECTOR) -> list[str]:
    """What is wrong with ``footer`` as the footer of a fixed VHD file of ``file_size`` bytes that must
    hold a whole number of ``align`` bytes (Azure: 1 MiB); empty when nothing."""
    out = []
    if footer.disk_type != DISK_FIXED:
        out.append(f"disk type {footer.disk_type}, not 2 (fixed)")
    if footer.data_offset != FIXED_DATA_OFFSET:
        out.append(f"data offset {footer.data_offset:#x}, not 0xFFFFFFFFFFFFFFFF")
    if footer.version != VERSION:
        out.append(f"format version {footer.version:#010x}, not 0x00010000")
    if not footer.features & FEATURES:
        out.append("the reserved feature bit (0x2) is not set")
    if footer.current_size + SECTOR != file_size:
        out.append(f"current size {footer.current_size} + the footer is not the file size {file_size}")
    if footer.current_size % align:
        out.append(f"current size {footer.current_size} is not a multiple of {align} bytes")
    if footer.geometry != chs_geometry(footer.current_size):
        out.append(f"geometry {footer.geometry} is not the specification's {chs_geometry(footer.current_size)}")
    return out
