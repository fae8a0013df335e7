"""VMDK header checks, after VMware's *Virtual Disk Format 5.0*: hosted sparse extents (monolithicSparse,
streamOptimized) and text descriptors (monolithicFlat, twoGbMaxExtent*, ...).

* A sparse extent's grain directory, every grain table and every grain must lie inside the file;
  the directory must have the entries the capacity needs. A streamOptimized extent (compressed
  grains with markers) is also walked front to back as a streaming reader (ESXi's import) reads it:
  every marker must be a grain marker inside the disk, a metadata marker or the end-of-stream marker,
  and every grain table entry must point at a grain marker carrying that entry's own LBA. Nothing
  is inflated here; the work is one small read per grain.
* A text descriptor's extents must be relative file names inside the descriptor's folder
  (:func:`~vmferry.disks.header_io.resolve_reference`); device extents (VMFSRDM, VMFSRAW) and
  VMFS-sparse/SE-sparse extents are refused; a flat extent must hold the sectors it declares, a sparse
  extent is checked as above.
* A parent disk (``parentFileNameHint``, which qemu reads from the first 10 KiB of any VMDK) is refused:
  vmferry converts whole disks, not delta links.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from vmferry.disks.formats import GD_AT_END, VMDK_FLAG_COMPRESSED, VMDK_FLAG_MARKERS, VMDK_HEADER
from vmferry.disks.header_io import SECTOR, ImageHeader, Source, VmdkExtent, resolve_reference

MAX_DESCRIPTOR = 1 << 20
MAX_EXTENTS = 1024
QEMU_DESC_WINDOW = 20 * SECTOR            # qemu's DESC_SIZE: where it looks for parentFileNameHint
PARENT_HINT = b"parentFileNameHint"
MARKER = struct.Struct("<QII")            # value (LBA or sectors), size, type (when size == 0)
MARKER_EOS, MARKER_GT, MARKER_GD, MARKER_FOOTER = 0, 1, 2, 3
FLAG_REDUNDANT, FLAG_ZERO_GTE = 1 << 1, 1 << 2
FLAT_KINDS = {"FLAT", "VMFS"}
REFUSED_KINDS = {"VMFSRDM": "a raw device mapping", "VMFSRAW": "a raw device",
                 "VMFSSPARSE": "a VMFS sparse (delta) extent", "SESPARSE": "an SE sparse extent"}

OpenExtent = Callable[[str, str], ImageHeader]   # (path, name) -> checked sparse extent


def check_sparse(src: Source) -> ImageHeader:
    """A hosted sparse extent (``KDMV``): monolithicSparse, or streamOptimized when compressed."""
    head = src.read(0, SECTOR, "VMDK header")
    (_magic, version, flags, capacity, grain, desc_offset, desc_size, gtes, rgd_offset, gd_offset,
     overhead, _unclean, _nl, algo) = VMDK_HEADER.unpack_from(head)
    if version not in (1, 2, 3):
        raise src.damaged(f"VMDK header declares unknown version {version}")
    if grain == 0 or grain & (grain - 1) or grain > 2048:
        raise src.damaged(f"VMDK header declares an impossible grain size of {grain} sectors")
    if gtes == 0 or gtes > 512:
        raise src.damaged(f"VMDK header declares {gtes} entries per grain table (at most 512)")
    if capacity > (64 << 40) // SECTOR:
        raise src.damaged(f"VMDK header declares a virtual size of {capacity * SECTOR} bytes, more than "
                          "VMDK can hold")
    compressed = bool(flags & VMDK_FLAG_COMPRESSED)
    if compressed and algo != 1:
        raise src.damaged(f"VMDK header declares compression algorithm {algo}, not deflate")
    _check_embedded_descriptor(src, desc_offset, desc_size)
    if gd_offset == GD_AT_END:
        if not (compressed and flags & VMDK_FLAG_MARKERS):
            raise src.damaged("the VMDK grain directory is declared at the end, but the disk has no markers")
        footer = _footer(src)
        gd_offset, gtes_footer, grain_footer, capacity_footer = footer
        if (gtes_footer, grain_footer, capacity_footer) != (gtes, grain, capacity):
            raise src.damaged("the VMDK footer disagrees with the header")
    elif compressed and flags & VMDK_FLAG_MARKERS:
        # the header names the directory, yet a footer that says otherwise is damage too: another
        # reader (VMware's, an older qemu) may follow the footer
        footer = _footer(src, required=False)
        if footer is not None and footer != (gd_offset, gtes, grain, capacity):
            raise src.damaged("the VMDK footer disagrees with the header")
    n_gd = -(-capacity // (gtes * grain)) if capacity else 0
    grains = _grain_table_entries(src, gd_offset, n_gd, gtes, grain, "grain directory")
    if flags & FLAG_REDUNDANT and not compressed and rgd_offset:
        _grain_table_entries(src, rgd_offset, n_gd, gtes, grain, "redundant grain directory")
    zero_gte = bool(flags & FLAG_ZERO_GTE)
    if compressed and flags & VMDK_FLAG_MARKERS:
        stream = _walk_markers(src, overhead, capacity, grain)
        for lba, sector in grains:
            if sector == 1 and zero_gte:
                continue
            if stream.get(sector) != lba:
                raise src.damaged(f"the VMDK grain table entry for sector {lba} points at sector {sector}, "
                                  "where no grain marker for it is")
        kind, detail = "vmdk-stream", f"VMDK streamOptimized version {version}"
    else:
        limit = grain * SECTOR + grain * SECTOR // 8 + 1024
        for lba, sector in grains:
            if sector == 1 and zero_gte:
                continue
            if lba >= capacity:
                continue    # entries past the capacity in the last table are never read
            if compressed:
                value, size, _ = MARKER.unpack(src.read(sector * SECTOR, MARKER.size, "VMDK grain"))
                if size == 0 or size > limit:
                    raise src.damaged(f"the compressed VMDK grain at sector {sector} declares {size} bytes")
                src.within(sector * SECTOR, 12 + size, "compressed VMDK grain")
            else:
                src.within(sector * SECTOR, grain * SECTOR, f"VMDK grain of sector {lba}")
        kind = "vmdk-stream" if compressed else "vmdk-sparse"
        detail = f"VMDK sparse extent version {version}" + (", compressed" if compressed else "")
    stored = sum(1 for lba, sector in grains if lba < capacity and not (sector == 1 and zero_gte))
    return ImageHeader(kind, "vmdk", capacity * SECTOR, detail=detail,
                       checks=("header", "descriptor", "grain directory", "grain tables")
                       + (("markers",) if compressed and flags & VMDK_FLAG_MARKERS else ()),
                       allocated=min(stored * grain * SECTOR, capacity * SECTOR))


def _check_embedded_descriptor(src: Source, desc_offset: int, desc_size: int) -> None:
    window = src.read(SECTOR, min(QEMU_DESC_WINDOW, max(src.length - SECTOR, 0)), "VMDK descriptor")
    if PARENT_HINT in window:
        raise src.unsafe("the VMDK names a parent disk (parentFileNameHint); vmferry converts whole disks only")
    if desc_offset or desc_size:
        if desc_size * SECTOR > MAX_DESCRIPTOR:
            raise src.damaged(f"the embedded VMDK descriptor of {desc_size} sectors is larger than 1 MiB")
        text = src.read(desc_offset * SECTOR, desc_size * SECTOR, "embedded VMDK descriptor")
        if PARENT_HINT in text:
            raise src.unsafe("the VMDK names a parent disk (parentFileNameHint); vmferry converts whole "
                             "disks only")


def _footer(src: Source, *, required: bool = True) -> tuple[int, int, int, int] | None:
    """(gd_offset, gtes, grain, capacity) from a streamOptimized footer (the header copy before the
    end-of-stream marker), as qemu reads it: footer marker, footer, end-of-stream marker. Without
    ``required``, None when the stream does not end that way (qemu 7.2 may leave the footer out)."""
    if src.length < 3 * SECTOR or src.length % SECTOR:
        if not required:
            return None
        raise src.damaged("the streamOptimized VMDK is not a whole number of sectors with a footer")
    tail = src.read(src.length - 3 * SECTOR, 3 * SECTOR, "VMDK footer")
    value, size, kind = MARKER.unpack_from(tail, 0)
    eos = MARKER.unpack_from(tail, 2 * SECTOR)
    if size != 0 or kind != MARKER_FOOTER or eos != (0, 0, MARKER_EOS) or tail[SECTOR:SECTOR + 4] != b"KDMV":
        if not required:
            return None
        raise src.damaged("the streamOptimized VMDK does not end with a footer and an end-of-stream marker")
    f = VMDK_HEADER.unpack_from(tail, SECTOR)
    if f[9] == GD_AT_END:
        raise src.damaged("the VMDK footer does not say where the grain directory is")
    return f[9], f[7], f[4], f[3]


def _grain_table_entries(src: Source, gd_offset: int, n_gd: int, gtes: int, grain: int,
                         what: str) -> list[tuple[int, int]]:
    """(guest sector, host sector) of every allocated grain, all tables read once and bounds-checked."""
    gd = struct.unpack(f"<{n_gd}I", src.read(gd_offset * SECTOR, n_gd * 4, f"VMDK {what}")) if n_gd else ()
    seen: set[int] = set()
    out: list[tuple[int, int]] = []
    for i, gt_sector in enumerate(gd):
        if gt_sector == 0:
            continue
        if gt_sector in seen:
            raise src.damaged(f"two entries of the VMDK {what} point at the grain table at sector {gt_sector}")
        seen.add(gt_sector)
        table = struct.unpack(f"<{gtes}I", src.read(gt_sector * SECTOR, gtes * 4, f"VMDK grain table {i}"))
        for j, sector in enumerate(table):
            if sector:
                out.append(((i * gtes + j) * grain, sector))
    return out


def _walk_markers(src: Source, overhead: int, capacity: int, grain: int) -> dict[int, int]:
    """Host sector of each grain marker -> its LBA, walking the stream front to back."""
    at = overhead * SECTOR
    limit = grain * SECTOR + grain * SECTOR // 8 + 1024
    found: dict[int, int] = {}
    while True:
        if at == src.length:      # qemu 7.2 ends some streams without an end-of-stream marker
            return found
        value, size, kind = MARKER.unpack(src.read(at, MARKER.size, "VMDK marker"))
        if size:
            if size > limit:
                raise src.damaged(f"the VMDK grain marker at byte {at} declares {size} compressed bytes")
            if value >= capacity or value % grain:
                raise src.damaged(f"the VMDK grain marker at byte {at} points at sector {value}, outside the "
                                  "disk or not on a grain")
            src.within(at, 12 + size, "VMDK grain")
            found[at // SECTOR] = value
            at += 12 + size + (-(12 + size) % SECTOR)
            continue
        if kind == MARKER_EOS:   # (qemu pads its streams with zero sectors after it)
            return found
        if kind not in (MARKER_GT, MARKER_GD, MARKER_FOOTER):
            raise src.damaged(f"unknown VMDK marker type {kind} at byte {at}")
        at += SECTOR + value * SECTOR
        src.within(at, 0, "VMDK metadata")


# -- text descriptors ---------------------------------------------------------------------------------

def check_descriptor(src: Source, open_extent: OpenExtent) -> ImageHeader:
    """A VMDK text descriptor: its extents resolved in its folder (never outside) and checked."""
    if src.length > MAX_DESCRIPTOR:
        raise src.damaged("the VMDK descriptor is larger than 1 MiB")
    text = src.read(0, src.length, "VMDK descriptor")
    if PARENT_HINT in text:
        raise src.unsafe("the VMDK names a parent disk (parentFileNameHint); vmferry converts whole disks only")
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise src.damaged("the VMDK descriptor is not UTF-8 text") from None
    extents: list[VmdkExtent] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line.startswith(("RW ", "RDONLY ", "NOACCESS ")):
            continue
        if len(extents) >= MAX_EXTENTS:
            raise src.damaged(f"the VMDK descriptor has more than {MAX_EXTENTS} extents")
        extents.append(_extent(src, line, number, open_extent))
    if not extents:
        raise src.damaged("the VMDK descriptor has no extent")
    sectors = sum(e.sectors for e in extents)
    flat = all(e.kind in FLAT_KINDS or e.kind == "ZERO" for e in extents)
    return ImageHeader("vmdk-flat" if flat else "vmdk-sparse", "vmdk", sectors * SECTOR,
                       extents=tuple(extents), detail="VMDK text descriptor",
                       checks=("descriptor", "extents"))


def _extent(src: Source, line: str, number: int, open_extent: OpenExtent) -> VmdkExtent:
    name = None
    if '"' in line:
        first, last = line.index('"'), line.rindex('"')
        if first == last:
            raise src.damaged(f"VMDK descriptor line {number}: unterminated file name")
        name, fields, rest = line[first + 1:last], line[:first].split(), line[last + 1:].split()
    else:
        fields, rest = line.split(), []
    if len(fields) != 3 or not fields[1].isdigit() or len(fields[1]) > 20:
        raise src.damaged(f"VMDK descriptor line {number} is not an extent line")
    access, sectors, kind = fields[0], int(fields[1]), fields[2].upper()
    if kind in REFUSED_KINDS:
        raise src.unsafe(f"VMDK descriptor line {number} names {REFUSED_KINDS[kind]}, which vmferry does not read")
    if kind == "ZERO":
        return VmdkExtent(access, sectors, kind, None)
    if kind not in FLAT_KINDS and kind != "SPARSE":
        raise src.damaged(f"VMDK descriptor line {number}: unknown extent type {fields[2][:20]!r}")
    if name is None:
        raise src.damaged(f"VMDK descriptor line {number}: the extent has no file name")
    path = resolve_reference(src, name, "extent")
    offset = 0
    if rest:
        if len(rest) != 1 or not rest[0].isdigit() or len(rest[0]) > 20 or kind not in FLAT_KINDS:
            raise src.damaged(f"VMDK descriptor line {number}: unexpected text after the file name")
        offset = int(rest[0])
    if kind in FLAT_KINDS:
        have = os.path.getsize(path)
        if (offset + sectors) * SECTOR > have:
            raise src.damaged(f"the flat extent '{name}' holds {have} bytes, fewer than the "
                              f"{(offset + sectors) * SECTOR} its descriptor line {number} declares")
    else:
        inner = open_extent(path, f"{src.name} (extent {name})")
        if inner.format not in ("vmdk-sparse", "vmdk-stream") or inner.virtual_size < sectors * SECTOR:
            raise src.damaged(f"the sparse extent '{name}' is not a VMDK sparse extent of {sectors} sectors")
    return VmdkExtent(access, sectors, kind, path, offset)
