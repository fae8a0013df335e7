"""The check every disk image passes before qemu-img, libguestfs or vmferry's own readers see it.

:func:`check_image` detects the format by content (:func:`vmferry.disks.formats.detect`, the one
place that does), then parses the header with that format's bounded, linear checker:

========================  ===============================================================
qcow2 v2/v3               :mod:`vmferry.disks.qcow2_header`
VMDK sparse / stream      :mod:`vmferry.disks.vmdk_header` (:func:`check_sparse`)
VMDK text descriptor      :mod:`vmferry.disks.vmdk_header` (:func:`check_descriptor`)
VHD, VHDX                 :mod:`vmferry.disks.vhd_header`
VDI                       :func:`_check_vdi` below
raw, ISO                  nothing to check: they name no file
========================  ===============================================================

Every file an image names (a qcow2 backing or data file, a VMDK extent) must be a regular file
inside the image's own folder, reached without a symbolic link and named without ``..``, an absolute
path, ``json:`` or a protocol; a backing file is checked in turn (at most :data:`MAX_CHAIN` deep).
Parent disks of VMDK, VHD, VHDX and VDI are refused. A refusal is :class:`~vmferry.errors.UnsafeImage`
(a reference) or :class:`~vmferry.errors.DamagedImage` (a table outside the file), one line naming
the image and the problem. The result, an :class:`~vmferry.disks.header_io.ImageHeader`, is what
:func:`vmferry.disks.convert.open_disk` builds qemu-img's explicit block graph from.
"""

from __future__ import annotations

import os
import struct
from dataclasses import replace

from vmferry.disks import formats
from vmferry.disks.header_io import ImageHeader, Source, open_source
from vmferry.disks.qcow2_header import check_qcow2
from vmferry.disks.vhd_header import check_vhd, check_vhdx
from vmferry.disks.vmdk_header import check_descriptor, check_sparse
from vmferry.errors import DamagedImage

MAX_CHAIN = 8


def check_image(path: str | os.PathLike, offset: int = 0, size: int | None = None, *,
                name: str | None = None, detected: formats.Detected | None = None,
                references: bool = True, _depth: int = 0) -> ImageHeader:
    """Check the image in ``path`` (or its byte range) and describe it; raise on anything unsafe.

    ``references=False`` when the image may name no other file (see :func:`open_source`)."""
    path = os.fspath(path)
    shown = name or path
    if _depth > MAX_CHAIN:
        raise DamagedImage(f"the chain of backing files is deeper than {MAX_CHAIN}", path=shown)
    det = detected or formats.detect(path, offset, size, name=shown)
    with open_source(path, offset, size, name=shown, references=references) as src:
        header = _check(src, det, path)
    for ref in header.references:
        if ref.kind != "backing":
            continue
        if ref.format == "raw":
            backing = ImageHeader("raw", "raw", os.path.getsize(ref.path))
        else:
            backing = check_image(ref.path, name=f"{shown} (backing file {ref.name})", _depth=_depth + 1)
            if ref.format and backing.qemu != ref.format:
                raise DamagedImage(f"the backing file '{ref.name}' is declared {ref.format} but holds "
                                   f"{backing.format}", path=shown)
        header = replace(header, backing=backing)
    return header


def _check(src: Source, det: formats.Detected, path: str) -> ImageHeader:
    if det.name == "qcow2":
        return check_qcow2(src)
    if det.name in ("vmdk-sparse", "vmdk-stream", "vmdk-flat"):
        if det.detail == "VMDK text descriptor":
            return check_descriptor(src, _sparse_extent)
        return check_sparse(src)
    if det.name in ("vhd", "vhd-fixed"):
        return check_vhd(src)
    if det.name == "vhdx":
        return check_vhdx(src)
    if det.name == "vdi":
        return _check_vdi(src)
    return ImageHeader(det.name, det.qemu, det.virtual_size or src.length, detail=det.detail)


def _sparse_extent(path: str, name: str) -> ImageHeader:
    """A sparse extent of a descriptor: a ``KDMV`` file checked on its own (never a descriptor)."""
    with open_source(path, name=name) as src:
        if src.length < 512 or src.read(0, 4, "VMDK header") != b"KDMV":
            raise src.damaged("the sparse extent is not a VMDK sparse extent")
        return check_sparse(src)


VDI_SIGNATURE = 0xBEDA107F
VDI_DYNAMIC, VDI_FIXED = 1, 2
VDI_FREE = (0xFFFFFFFF, 0xFFFFFFFE)


def _check_vdi(src: Source) -> ImageHeader:
    """VirtualBox VDI 1.1 (as qemu's vdi driver reads it): no undo/differencing images, the block map
    and every allocated block inside the file."""
    head = src.read(0, 0x1C8, "VDI header")
    signature, version = struct.unpack_from("<II", head, 0x40)
    if signature != VDI_SIGNATURE or version >> 16 != 1:
        raise src.damaged(f"VDI version {version:#x} is not 1.x")
    image_type, = struct.unpack_from("<I", head, 0x4C)
    if image_type not in (VDI_DYNAMIC, VDI_FIXED):
        raise src.unsafe(f"VDI image type {image_type} (undo or differencing) names a parent disk")
    blocks_at, data_at = struct.unpack_from("<II", head, 0x154)
    disk_size, = struct.unpack_from("<Q", head, 0x170)
    block, _extra, n_blocks = struct.unpack_from("<III", head, 0x178)
    if block == 0 or block & (block - 1) or block > 256 << 20 or n_blocks * block < disk_size:
        raise src.damaged(f"VDI declares {n_blocks} blocks of {block} bytes for {disk_size} bytes")
    table = struct.unpack(f"<{n_blocks}I", src.read(blocks_at, n_blocks * 4, "VDI block map"))
    for i, entry in enumerate(table):
        if entry not in VDI_FREE:
            src.within(data_at + entry * block, block, f"VDI block {i}")
    return ImageHeader("vdi", "vdi", disk_size, detail="VDI", checks=("header", "block map"))
