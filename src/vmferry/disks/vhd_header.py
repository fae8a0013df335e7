"""VHD and VHDX header checks, after Microsoft's *Virtual Hard Disk Image Format Specification* (VHD)
and *[MS-VHDX]* (VHDX).

A differencing disk names its parent (VHD: type 4 and parent locators; VHDX: the ``HasParent`` file
parameter and the parent locator metadata item): refused, vmferry converts whole disks. A dynamic
VHD's block allocation table and every block it points at, and a VHDX's region table, BAT and
metadata region and every payload block, must lie inside the file.
"""

from __future__ import annotations

import struct
import uuid

from vmferry.disks.header_io import SECTOR, ImageHeader, Source

VHD_FIXED, VHD_DYNAMIC, VHD_DIFFERENCING = 2, 3, 4
UNUSED = 0xFFFFFFFF
MIB = 1 << 20
VHDX_HEADERS = (64 << 10, 128 << 10)
VHDX_REGIONS = (192 << 10, 256 << 10)
BAT_GUID = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_GUID = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
LOGICAL_SECTOR = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
MAX_REGIONS = 2047
MAX_METADATA_ITEMS = 2047
BAT_PRESENT = (6, 7)       # PAYLOAD_BLOCK_FULLY_PRESENT, PARTIALLY_PRESENT (and SB_BLOCK_PRESENT = 6)


def check_vhd(src: Source) -> ImageHeader:
    """A VHD: the footer (a copy leads a dynamic disk), then for a dynamic disk its header and BAT."""
    if src.length < SECTOR:
        raise src.damaged("the VHD is shorter than its footer")
    # as qemu's vpc driver: the copy at the start when there is one (dynamic disks), else the footer
    footer = src.read(0, SECTOR, "VHD footer copy")
    copy = footer[:8] == b"conectix"
    if not copy:
        footer = src.read(src.length - SECTOR, SECTOR, "VHD footer")
    data_offset, = struct.unpack_from(">Q", footer, 16)
    current, = struct.unpack_from(">Q", footer, 48)
    disk_type, = struct.unpack_from(">I", footer, 60)
    if disk_type == VHD_DIFFERENCING:
        raise src.unsafe("a differencing VHD names a parent disk; vmferry converts whole disks only")
    if disk_type == VHD_FIXED and copy:
        raise src.damaged("the VHD starts with a footer copy but declares a fixed disk")
    if disk_type == VHD_FIXED:
        if current > src.length - SECTOR:
            raise src.damaged(f"the fixed VHD footer declares {current} bytes but only "
                              f"{src.length - SECTOR} are present")
        return ImageHeader("vhd-fixed", "vpc", current, detail="VHD fixed", checks=("footer",))
    if disk_type != VHD_DYNAMIC:
        raise src.damaged(f"the VHD footer declares disk type {disk_type}")
    head = src.read(data_offset, 1024, "VHD dynamic disk header")
    if head[:8] != b"cxsparse":
        raise src.damaged("the VHD dynamic disk header is missing (no cxsparse cookie)")
    table_offset, = struct.unpack_from(">Q", head, 16)
    entries, block = struct.unpack_from(">II", head, 28)
    if block < SECTOR or block & (block - 1) or block > 256 * MIB:
        raise src.damaged(f"the VHD declares a block size of {block} bytes")
    if entries * block < current:
        raise src.damaged(f"the VHD block table has {entries} entries, too few for {current} bytes")
    for i in range(8):
        code, = struct.unpack_from(">I", head, 576 + 24 * i)
        if code:
            raise src.unsafe("the VHD carries a parent locator; vmferry converts whole disks only")
    if head[64:64 + 512].strip(b"\x00"):
        raise src.unsafe("the VHD names a parent disk; vmferry converts whole disks only")
    bat = struct.unpack(f">{entries}I", src.read(table_offset, entries * 4, "VHD block allocation table"))
    bitmap = -(-(block // SECTOR) // 8)
    bitmap += -bitmap % SECTOR
    for i, sector in enumerate(bat):
        if sector != UNUSED:
            src.within(sector * SECTOR, bitmap + block, f"VHD block {i}")
    return ImageHeader("vhd", "vpc", current, detail="VHD dynamic", checks=("footer", "header", "BAT"))


def check_vhdx(src: Source) -> ImageHeader:
    """A VHDX: the current header, a region table, the metadata (size, block size, no parent) and the BAT."""
    headers = []
    for at in VHDX_HEADERS:
        h = src.read(at, 4096, "VHDX header")
        if h[:4] == b"head":
            seq, = struct.unpack_from("<Q", h, 8)
            log_length, log_offset = struct.unpack_from("<IQ", h, 68)
            headers.append((seq, log_length, log_offset, h[48:64]))
    if not headers:
        raise src.damaged("the VHDX has no valid header")
    _seq, log_length, log_offset, log_guid = max(headers)
    if log_guid.strip(b"\x00"):
        raise src.damaged("the VHDX has a log to replay; open it once in Hyper-V (or qemu-img check -r) first")
    if log_length:
        src.within(log_offset, log_length, "VHDX log")
    regions = _regions(src)
    if BAT_GUID not in regions or METADATA_GUID not in regions:
        raise src.damaged("the VHDX region table has no BAT or no metadata region")
    meta_off, meta_len = regions[METADATA_GUID]
    items = _metadata(src, meta_off, meta_len)
    if PARENT_LOCATOR in items:
        raise src.unsafe("the VHDX carries a parent locator (a differencing disk); vmferry converts whole disks only")
    params = _item(src, items, FILE_PARAMETERS, meta_off, 8)
    block, flags = struct.unpack("<II", params)
    if flags & 2:
        raise src.unsafe("a differencing VHDX names a parent disk; vmferry converts whole disks only")
    if block < MIB or block > 256 * MIB or block & (block - 1):
        raise src.damaged(f"the VHDX declares a block size of {block} bytes")
    size, = struct.unpack("<Q", _item(src, items, VIRTUAL_DISK_SIZE, meta_off, 8))
    logical, = struct.unpack("<I", _item(src, items, LOGICAL_SECTOR, meta_off, 4))
    if logical not in (512, 4096) or size > 64 << 40:
        raise src.damaged(f"the VHDX declares {size} bytes in sectors of {logical}")
    chunk_ratio = (1 << 23) * logical // block
    blocks = -(-size // block)
    total = blocks + (blocks - 1) // chunk_ratio if blocks else 0
    bat_off, bat_len = regions[BAT_GUID]
    if total * 8 > bat_len:
        raise src.damaged(f"the VHDX BAT region holds {bat_len // 8} entries, {total} are needed")
    bat = struct.unpack(f"<{total}Q", src.read(bat_off, total * 8, "VHDX BAT"))
    for i, entry in enumerate(bat):
        state, offset = entry & 7, (entry >> 20) << 20
        if state in BAT_PRESENT:
            bitmap = (i + 1) % (chunk_ratio + 1) == 0
            src.within(offset, MIB if bitmap else block, f"VHDX {'sector bitmap' if bitmap else 'block'} {i}")
    return ImageHeader("vhdx", "vhdx", size, detail="VHDX", checks=("header", "regions", "metadata", "BAT"))


def _regions(src: Source) -> dict[uuid.UUID, tuple[int, int]]:
    for at in VHDX_REGIONS:
        table = src.read(at, 64 << 10, "VHDX region table")
        if table[:4] != b"regi":
            continue
        count, = struct.unpack_from("<I", table, 8)
        if count > MAX_REGIONS:
            raise src.damaged(f"the VHDX region table declares {count} entries")
        out = {}
        for i in range(count):
            guid = uuid.UUID(bytes_le=table[16 + 32 * i:32 + 32 * i])
            offset, length, required = struct.unpack_from("<QII", table, 32 + 32 * i)
            if offset % MIB or offset < MIB:
                raise src.damaged(f"VHDX region {guid} at {offset} is not on a MiB boundary")
            src.within(offset, length, f"VHDX region {guid}")
            if required & 1 and guid not in (BAT_GUID, METADATA_GUID):
                raise src.damaged(f"the VHDX requires region {guid}, which vmferry does not know")
            out[guid] = (offset, length)
        return out
    raise src.damaged("the VHDX has no valid region table")


def _metadata(src: Source, offset: int, length: int) -> dict[uuid.UUID, tuple[int, int]]:
    if length < 64 << 10:
        raise src.damaged("the VHDX metadata region is smaller than its table")
    table = src.read(offset, 64 << 10, "VHDX metadata table")
    if table[:8] != b"metadata":
        raise src.damaged("the VHDX metadata table has no signature")
    count, = struct.unpack_from("<H", table, 10)
    if count > MAX_METADATA_ITEMS:
        raise src.damaged(f"the VHDX metadata table declares {count} items")
    items = {}
    for i in range(count):
        base = 32 + 32 * i
        guid = uuid.UUID(bytes_le=table[base:base + 16])
        item_off, item_len = struct.unpack_from("<II", table, base + 16)
        if item_len and (item_off < 64 << 10 or item_off + item_len > length):
            raise src.damaged(f"VHDX metadata item {guid} lies outside the metadata region")
        items[guid] = (item_off, item_len)
    return items


def _item(src: Source, items: dict, guid: uuid.UUID, base: int, size: int) -> bytes:
    if guid not in items or items[guid][1] < size:
        raise src.damaged(f"the VHDX metadata lacks item {guid}")
    return src.read(base + items[guid][0], size, f"VHDX metadata item {guid}")
