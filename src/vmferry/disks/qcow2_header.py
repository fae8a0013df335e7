"""qcow2 (versions 2 and 3) header check, after QEMU's ``docs/interop/qcow2.txt``.

Read before qemu-img sees the image: the backing file name and the external data file name (header
extension ``0x44415441`` and incompatible feature bit 2) are resolved inside the image's folder or
refused; unknown incompatible features, encryption and impossible cluster sizes are refused; the L1
table, every L2 table it points at, every data cluster those point at, the refcount table and the
snapshot table must lie inside the file. The work is linear in the size of the tables (at most one
read of each L2 table), bounded by :data:`~vmferry.disks.header_io.MAX_METADATA`.
"""

from __future__ import annotations

import struct

from vmferry.disks.header_io import ImageHeader, Reference, Source, resolve_reference

HEADER_V2 = struct.Struct(">4sIQIIQIIQQIIQ")     # up to and including snapshots_offset: 72 bytes
HEADER_V3 = struct.Struct(">QQQII")              # incompatible, compatible, autoclear, refcount_order, length
EXT_END, EXT_BACKING_FORMAT, EXT_DATA_FILE = 0x00000000, 0xE2792ACA, 0x44415441
EXT_FEATURES, EXT_BITMAPS, EXT_CRYPTO = 0x6803F857, 0x23852875, 0x0537BE77
INCOMPAT_DIRTY, INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE = 1, 2, 4
INCOMPAT_COMPRESSION, INCOMPAT_EXTL2 = 8, 16
KNOWN_INCOMPAT = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2
OFFSET_MASK = 0x00FFFFFFFFFFFE00                  # L1 and standard L2 entries: bits 9-55
COMPRESSED = 1 << 62
MAX_L1_BYTES = 32 << 20                            # QEMU's QCOW_MAX_L1_SIZE
MAX_SNAPSHOTS = 65536
MAX_NAME = 1023                                    # QEMU refuses longer backing file names
MAX_EXTENSIONS = 64
BACKING_FORMATS = {"qcow2": "qcow2", "raw": "raw", "vmdk": "vmdk", "vpc": "vpc", "vhdx": "vhdx"}


def check_qcow2(src: Source, *, data_file_ok: bool = True) -> ImageHeader:
    head = src.read(0, HEADER_V2.size, "qcow2 header")
    (_magic, version, backing_offset, backing_size, cluster_bits, size, crypt, l1_size, l1_offset,
     refcount_offset, refcount_clusters, nb_snapshots, snapshots_offset) = HEADER_V2.unpack(head)
    if version not in (2, 3):
        raise src.damaged(f"qcow2 version {version} is not 2 or 3")
    if not 9 <= cluster_bits <= 21:
        raise src.damaged(f"qcow2 cluster_bits {cluster_bits} is outside 9..21")
    cluster = 1 << cluster_bits
    incompat, header_length, extl2 = 0, 72, False
    if version == 3:
        incompat, _compat, _autoclear, refcount_order, header_length = HEADER_V3.unpack(
            src.read(72, HEADER_V3.size, "qcow2 version 3 header"))
        if header_length < 104 or header_length > cluster or header_length % 8:
            raise src.damaged(f"qcow2 header_length {header_length} is impossible")
        if refcount_order > 6:
            raise src.damaged(f"qcow2 refcount_order {refcount_order} is above 6")
        unknown = incompat & ~KNOWN_INCOMPAT
        if unknown:
            raise src.damaged(f"qcow2 incompatible feature bits {unknown:#x} are unknown")
        if incompat & INCOMPAT_CORRUPT:
            raise src.damaged("the qcow2 header marks the image corrupt")
        extl2 = bool(incompat & INCOMPAT_EXTL2)
    if crypt != 0:
        raise src.unsafe("the qcow2 image is encrypted; decrypt it with its key first")
    refs: list[Reference] = []
    extensions = _extensions(src, header_length, cluster, backing_offset)
    if EXT_CRYPTO in extensions:
        raise src.unsafe("the qcow2 image carries an encryption header; decrypt it with its key first")
    data_name = extensions.get(EXT_DATA_FILE)
    if incompat & INCOMPAT_DATA_FILE:
        if data_name is None:
            raise src.unsafe("the qcow2 image keeps its data in an external data file it does not name")
        name = _text(src, data_name, "data file name")
        if not data_file_ok:
            raise src.unsafe(f"names the data file '{name}', which vmferry does not read")
        refs.append(Reference("data-file", name, resolve_reference(src, name, "data file"), "raw"))
    elif data_name is not None:
        raise src.damaged("the qcow2 image names a data file without the external data file feature bit")
    if backing_offset:
        if not 0 < backing_size <= MAX_NAME:
            raise src.damaged(f"qcow2 backing file name of {backing_size} bytes")
        name = _text(src, src.read(backing_offset, backing_size, "backing file name"), "backing file name")
        declared = extensions.get(EXT_BACKING_FORMAT)
        fmt = _text(src, declared, "backing format") if declared is not None else ""
        if declared is not None and fmt not in BACKING_FORMATS:
            raise src.unsafe(f"declares the backing format '{fmt[:40]}', which vmferry does not read")
        refs.append(Reference("backing", name, resolve_reference(src, name, "backing file"), fmt))
    _check_tables(src, cluster, cluster_bits, size, l1_size, l1_offset, refcount_offset, refcount_clusters,
                  nb_snapshots, snapshots_offset, extl2, external_data=bool(incompat & INCOMPAT_DATA_FILE))
    return ImageHeader("qcow2", "qcow2", size, tuple(refs), detail=f"qcow2 version {version}",
                       checks=("header", "references", "L1", "L2", "refcount table"))


def _text(src: Source, raw: bytes, what: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise src.damaged(f"the qcow2 {what} is not UTF-8") from None
    if "\x00" in text:
        raise src.unsafe(f"the qcow2 {what} holds a NUL byte")
    return text


def _extensions(src: Source, start: int, cluster: int, backing_offset: int) -> dict[int, bytes]:
    """Header extensions (type -> data) between the header and the end of the first cluster."""
    end = min(cluster, src.length)
    if backing_offset and backing_offset < end:
        end = backing_offset
    found: dict[int, bytes] = {}
    at = start
    for _ in range(MAX_EXTENSIONS):
        if at + 8 > end:
            raise src.damaged("the qcow2 header extensions run past the first cluster")
        kind, length = struct.unpack(">II", src.read(at, 8, "qcow2 header extension"))
        if kind == EXT_END:
            return found
        if at + 8 + length > end:
            raise src.damaged(f"qcow2 header extension {kind:#x} runs past the first cluster")
        if kind in found:
            raise src.damaged(f"qcow2 header extension {kind:#x} appears twice")
        found[kind] = src.read(at + 8, length, "qcow2 header extension")
        at += 8 + length + (-length % 8)
    raise src.damaged(f"more than {MAX_EXTENSIONS} qcow2 header extensions")


def _check_tables(src: Source, cluster: int, cluster_bits: int, size: int, l1_size: int, l1_offset: int,
                  refcount_offset: int, refcount_clusters: int, nb_snapshots: int, snapshots_offset: int,
                  extl2: bool, *, external_data: bool) -> None:
    entry = 16 if extl2 else 8
    per_l2 = cluster // entry
    needed = -(-size // (cluster * per_l2)) if size else 0
    if l1_size < needed:
        raise src.damaged(f"the qcow2 L1 table has {l1_size} entries, {needed} are needed for {size} bytes")
    if l1_size * 8 > MAX_L1_BYTES:
        raise src.damaged(f"the qcow2 L1 table of {l1_size} entries is larger than QEMU allows")
    if l1_size and l1_offset % cluster:
        raise src.damaged(f"the qcow2 L1 table offset {l1_offset} is not on a cluster boundary")
    if refcount_offset % cluster or refcount_offset == 0:
        raise src.damaged(f"the qcow2 refcount table offset {refcount_offset} is impossible")
    src.within(refcount_offset, refcount_clusters * cluster, "qcow2 refcount table")
    if nb_snapshots > MAX_SNAPSHOTS:
        raise src.damaged(f"the qcow2 image declares {nb_snapshots} snapshots")
    if nb_snapshots:
        src.within(snapshots_offset, 40 * nb_snapshots, "qcow2 snapshot table")
    l1 = struct.unpack(f">{l1_size}Q", src.read(l1_offset, l1_size * 8, "qcow2 L1 table")) if l1_size else ()
    seen: set[int] = set()
    # a compressed cluster's descriptor: host offset in the low (62 - (cluster_bits - 8)) bits
    csize_shift = 62 - (cluster_bits - 8)
    coffset_mask = (1 << csize_shift) - 1
    for index, value in enumerate(l1):
        l2_offset = value & OFFSET_MASK
        if not l2_offset:
            continue
        if l2_offset % cluster:
            raise src.damaged(f"qcow2 L1 entry {index} points at {l2_offset}, not on a cluster boundary")
        if l2_offset in seen:
            raise src.damaged(f"qcow2 L1 entry {index} points at an L2 table already in use")
        seen.add(l2_offset)
        table = src.read(l2_offset, cluster, f"qcow2 L2 table of L1 entry {index}")
        words = struct.unpack(f">{cluster // 8}Q", table)[::entry // 8]
        for j, l2e in enumerate(words):
            if l2e & COMPRESSED:
                host = l2e & coffset_mask
                if external_data:
                    raise src.damaged("a qcow2 image with an external data file holds compressed clusters")
                if host >= src.length:
                    raise src.damaged(f"qcow2 compressed cluster {index}/{j} starts at {host}, past the end "
                                      f"of the file")
                continue
            host = l2e & OFFSET_MASK
            if host and not external_data:
                if host % cluster:
                    raise src.damaged(f"qcow2 data cluster {index}/{j} at {host} is not on a cluster boundary")
                # the cluster starts inside the file (qemu writes the last one partly with subclusters,
                # and reads zeros past the end of the file)
                src.within(host, 1, f"qcow2 data cluster {index}/{j}")
