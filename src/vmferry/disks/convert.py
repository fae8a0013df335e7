"""Opening and converting disks: the library entry points of :mod:`vmferry.disks`.

:func:`open_disk` detects a disk's format from its bytes (a whole file or a byte range such as an
OVA member), sanity-checks what its header claims and returns an :class:`OpenedDisk`.
:func:`convert_disk` writes it in another format: streamOptimized VMDK with vmferry's parallel
writer whenever the source's bytes can be read directly, anything else through ``qemu-img
convert``. Outputs appear atomically (temporary name, then rename) after a free-space check.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from vmferry.disks import formats, safety
from vmferry.disks.formats import Detected, DiskFormat
from vmferry.disks.header_io import ImageHeader
from vmferry.disks.image_check import check_image
from vmferry.disks.reader import open_raw
from vmferry.disks.vmdk_stream import DEFAULT_LEVEL, write_stream_vmdk
from vmferry.errors import DiskError
from vmferry.progress import Reporter
from vmferry.tools import qemu_img
from vmferry.tools.qemu_img import ImageSpec

MAX_VIRTUAL_SIZE = 64 << 40   # 64 TiB: VMDK's own limit is 62 TiB, VHD's 2 TiB, VHDX's 64 TiB
FORMAT_LIMITS = {"vhd": 2040 << 30, "vhd-fixed": 2040 << 30, "vmdk-stream": 62 << 40,
                 "vmdk-sparse": 62 << 40}
CONVERT_TIMEOUT_PER_GIB = 600  # seconds: a bound so a lying header ends in an error, not a hang


@dataclass(frozen=True)
class OpenedDisk:
    path: str
    offset: int
    size: int | None          # byte range inside ``path`` (None: to the end)
    detected: Detected
    spec: ImageSpec           # how qemu-img opens it
    virtual_size: int
    subformat: str | None = None
    header: ImageHeader | None = None   # what the header check found
    name: str | None = None             # what errors call it (``X.ova:MEMBER``)

    @property
    def format(self) -> str:
        return self.detected.name


@dataclass(frozen=True)
class ConvertResult:
    path: str
    format: str
    virtual_size: int
    file_size: int
    populated: int            # guest bytes stored (OVF populatedSize)


def open_disk(path: str | os.PathLike, offset: int = 0, size: int | None = None, *,
              max_virtual_size: int = MAX_VIRTUAL_SIZE, name: str | None = None,
              references: bool = True, declared: str | None = None, probe: bool = True) -> OpenedDisk:
    """Detect, check and open the disk in ``path`` (or in its byte range ``offset``..``offset+size``).

    The header check (:func:`vmferry.disks.image_check.check_image`) runs first: an image naming a
    file outside its folder, or whose tables point outside the file, is refused before qemu-img opens
    it; qemu-img then gets the checked block graph (:class:`ImageSpec`) and the format explicitly.
    ``name`` is what errors call the image (``X.ova:MEMBER``); the path by default.
    ``references=False``: the image may name no other file (a file vmferry decompressed or joined
    into a temporary folder; a byte range of an archive never may). ``declared``: the ``ovf:format``
    the package gives it; declared an image format yet without a header, it is damaged, not raw.
    ``probe=False``: qemu-img does not open it (``qemu-img info``), for a disk only vmferry's own readers
    read (a streamOptimized VMDK, whose header check walked every marker); its size is the header's.
    """
    path = os.fspath(path)
    shown = name or path
    if not os.path.isfile(path):
        raise DiskError("no such file", path=shown)
    det = formats.detect(path, offset, size, name=shown)
    if declared:
        formats.require_declared_header(det, declared, path=shown)
    if det.name == "gzip":
        raise DiskError("gzip-compressed: `vmferry disk convert X.ova:MEMBER` streams such OVA members; "
                        "other uses need it uncompressed", path=shown)
    if not det.qemu:
        raise DiskError(f"{det.detail or det.name}: not a disk format vmferry converts", path=shown)
    ranged = offset != 0 or size is not None
    if det.detail == "VMDK text descriptor" and ranged:
        raise DiskError("a VMDK text descriptor inside an archive cannot be opened", path=shown)
    header = check_image(path, offset, size, name=shown, detected=det, references=references)
    if header.virtual_size > max_virtual_size:
        raise DiskError(f"the header declares a virtual size of {header.virtual_size} bytes, more than "
                        f"the {max_virtual_size} vmferry accepts", path=shown)
    spec = image_spec(path, offset, size, header, det)
    if not probe:
        return OpenedDisk(path, offset, size, det, spec, header.virtual_size, None, header, shown)
    info = qemu_img.info(spec)
    vsize = header.virtual_size if header.format in ("vhd-fixed", "vmdk-flat") else info.virtual_size
    if vsize > max_virtual_size:
        raise DiskError(f"the image declares a virtual size of {vsize} bytes, more than the "
                        f"{max_virtual_size} vmferry accepts", path=shown)
    return OpenedDisk(path, offset, size, det, spec, vsize, info.subformat, header, shown)


def image_spec(path: str, offset: int, size: int | None, header: ImageHeader,
               det: Detected | None = None) -> ImageSpec:
    """How qemu-img opens a checked image: its checked backing chain and data file, nothing else.

    A fixed VHD is read as the raw bytes before its footer; a monolithicFlat VMDK (one flat extent)
    as the raw range of its extent file, so qemu never reads the descriptor's file names itself.
    """
    ranged = offset != 0 or size is not None
    if header.format == "vhd-fixed":
        return ImageSpec(path, "raw", offset, header.virtual_size)
    flat = [e for e in header.extents if e.kind != "ZERO"]
    if header.extents and len(header.extents) == 1 and len(flat) == 1 and flat[0].kind in ("FLAT", "VMFS"):
        e = flat[0]
        return ImageSpec(e.path, "raw", e.offset * 512, e.sectors * 512)
    backing = None
    if header.backing is not None:
        ref = next(r for r in header.references if r.kind == "backing")
        backing = image_spec(ref.path, 0, None, header.backing)
    data_file = next((r.path for r in header.references if r.kind == "data-file"), None)
    return ImageSpec(path, header.qemu, offset, size if ranged else None, backing, data_file)


def _output_options(fmt: DiskFormat, adapter: str) -> dict[str, str]:
    opts = fmt.create_options()
    if fmt.qemu == "vmdk":
        opts["adapter_type"] = adapter
    return opts


def estimate_output(disk: OpenedDisk, fmt: DiskFormat) -> int:
    """Bytes the output may take: the stored data plus metadata. qemu-img writes zero ranges as
    holes in every format (fixed VHD and raw included), so the data is what counts: what the header
    check counted in the image's tables, else what ``qemu-img map`` finds."""
    if disk.header is not None and disk.header.allocated is not None:
        data = disk.header.allocated
    else:
        data = sum(e.length for e in qemu_img.map_extents(disk.spec) if e.data and not e.zero)
    return data + data // 50 + (1 << 20) + disk.virtual_size // 8192


def convert_disk(disk: OpenedDisk, out: str | os.PathLike, fmt: DiskFormat | str, *, force: bool = False,
                 reporter: Reporter | None = None, adapter: str = "lsilogic", level: int = DEFAULT_LEVEL,
                 workers: int | None = None, finish: Callable[[], None] | None = None,
                 align: int = 512, digest=None) -> ConvertResult:
    """Write ``disk`` to ``out`` in ``fmt``; nothing appears at ``out`` unless it succeeds.

    ``finish`` runs after the output was written, before it is renamed into place (the source's
    manifest check goes there: raising leaves nothing). ``align``: fixed VHD and raw outputs hold the
    guest size rounded up to it (Azure: 1 MiB); other formats keep the size exact. ``digest``: when
    :func:`reads_once` says this conversion reads the source's stored bytes front to back itself, an
    object whose ``update(block)`` gets each of them once, in order, and whose ``finish()`` (called
    before ``finish``) raises when they are not what the manifest says (e.g.
    :class:`vmferry.package.files.InlineDigest`): one reading of the source serves both."""
    fmt = formats.get_format(fmt) if isinstance(fmt, str) else fmt
    if digest is not None and not reads_once(disk, fmt, adapter):
        raise ValueError("this conversion does not read the source front to back: check its digest apart")
    reporter = reporter or Reporter()
    out = safety.check_output_path(out, force=force)
    limit = FORMAT_LIMITS.get(fmt.name)
    if limit and disk.virtual_size > limit:
        raise DiskError(f"{fmt.name} cannot hold {disk.virtual_size} bytes (limit {limit})", path=out)
    needed = estimate_output(disk, fmt)
    safety.ensure_free_space(os.path.dirname(out), needed, what=os.path.basename(out))
    if fmt.name == "vmdk-flat":
        with safety.atomic_files(out, force=force) as tmpdir:
            inner = os.path.join(tmpdir, os.path.basename(out))
            _qemu_convert(disk, inner, fmt, adapter, reporter, needed)
            vsize = _check_size(inner, disk)
            if finish is not None:
                finish()
        return _result(out, fmt, vsize)
    with safety.atomic_output(out, force=force) as tmp:
        populated = None
        written = False      # by vmferry's own writers (else qemu-img converts)
        if fmt.name in PLAIN_WRITERS:
            populated = write_plain_image(disk, tmp, fmt.name == "vhd-fixed", align=align, reporter=reporter,
                                          workers=workers, name=os.path.basename(out),
                                          feed=digest.update if digest is not None else None)
            written = True
        elif fmt.name in GRAIN_WRITERS and reads_once(disk, fmt, adapter):
            populated = _from_stream(disk, tmp, fmt.name, reporter, os.path.basename(out), workers,
                                     feed=digest.update if digest is not None else None)
            written = True
        elif fmt.name == "vmdk-stream" and _verbatim_stream(disk, adapter):
            _verified_copy(disk, tmp, reporter, os.path.basename(out),
                           feed=digest.update if digest is not None else None)
            written = True
        elif fmt.name == "vmdk-stream":
            with open_raw(disk.spec, disk.virtual_size) as reader:
                if reader.plain:
                    with open(tmp, "wb") as f, reporter.step(f"write {os.path.basename(out)}",
                                                             disk.virtual_size) as step:
                        res = write_stream_vmdk(reader.pread, disk.virtual_size, f.write,
                                                is_zero=reader.is_zero, name=os.path.basename(out),
                                                adapter=adapter, level=level, workers=workers,
                                                progress=step.advance)
                    populated, written = res.populated, True
        if not written:
            _qemu_convert(disk, tmp, fmt, adapter, reporter, needed)
        if digest is not None:
            digest.finish()
        vsize = _check_size(tmp, disk, align if fmt.name in PLAIN_WRITERS else 512, own=written)
        if finish is not None:
            finish()
    return _result(out, fmt, vsize, populated)


def reads_once(disk: OpenedDisk, fmt: DiskFormat | str, adapter: str = "lsilogic") -> bool:
    """Whether :func:`convert_disk` reads the source's stored bytes itself, front to back, each once
    (a streamOptimized VMDK written as a fixed VHD or raw image, or copied as it is): then the source's
    digest is computed on those bytes (``digest=``) instead of by a second reading."""
    from vmferry.disks.stream_import import streamable

    fmt = formats.get_format(fmt) if isinstance(fmt, str) else fmt
    head = _first_sector(disk) if disk.format == "vmdk-stream" else b""
    if not head or not streamable(head):
        return False
    if fmt.name == "qcow2":   # one 64 KiB grain is one qcow2 cluster (vmferry.disks.qcow2_write)
        return int.from_bytes(head[20:28], "little") * 512 == 1 << 16
    if fmt.name == "vhd":     # a grain (at most 1 MiB) lies inside one 2 MiB block (vmferry.disks.vhd_dynamic)
        return True
    return fmt.name in PLAIN_WRITERS or (fmt.name == "vmdk-stream" and _verbatim_stream(disk, adapter))


def _from_stream(disk: OpenedDisk, tmp: str, fmt: str, reporter: Reporter, name: str, workers: int | None,
                 feed=None) -> int:
    """The streamOptimized ``disk`` written as qcow2 or dynamic VHD by vmferry's parallel writers
    (:mod:`vmferry.disks.qcow2_write`, :mod:`vmferry.disks.vhd_dynamic`); the guest bytes written."""
    from vmferry.disks.qcow2_write import write_qcow2_from_member
    from vmferry.disks.vhd_dynamic import write_vhd_from_member

    write = {"qcow2": write_qcow2_from_member, "vhd": write_vhd_from_member}[fmt]
    size = disk.size if disk.size is not None else os.path.getsize(disk.path) - disk.offset
    with reporter.step(f"write {name}", disk.virtual_size) as step, open(tmp, "r+b") as f:
        _vsize, populated = write(disk.path, disk.offset, size, f.fileno(), workers=workers,
                                  progress=step.advance, feed=feed, name=disk.name or disk.path)
    return populated


def _check_size(path: str, disk: OpenedDisk, align: int = 512, own: bool = False) -> int:
    """The output must have the source's virtual size (rounded up to a sector for raw sources of an
    odd number of bytes, which sector-based formats cannot express; to ``align`` when asked). An output
    of vmferry's own writers (``own``) is read back by the header check, its tables walked (qemu-img
    need not start for it); another by :func:`open_disk`."""
    got = check_image(path, references=False).virtual_size if own else open_disk(path).virtual_size
    if not 0 <= got - disk.virtual_size < max(align, 512):
        raise DiskError(f"the output's virtual size is {got} bytes, not {disk.virtual_size}", path=disk.path)
    return got


PLAIN_WRITERS = ("vhd-fixed", "raw")
GRAIN_WRITERS = ("qcow2", "vhd")   # written from a streamOptimized VMDK's grains (:func:`_from_stream`)


def _verbatim_stream(disk: OpenedDisk, adapter: str) -> bool:
    """A streamOptimized VMDK source that is already what the output would be (sparse extent version 3
    with markers, VMware's export format, the same adapter type): it is copied byte for byte, every grain
    verified."""
    from vmferry.disks.stream_import import streamable

    if disk.format != "vmdk-stream":
        return False
    head = _first_sector(disk)
    if not streamable(head) or int.from_bytes(head[4:8], "little") != 3:
        return False
    desc_sector, desc_sectors = int.from_bytes(head[28:36], "little"), int.from_bytes(head[36:44], "little")
    if not 0 < desc_sectors <= 64:
        return False
    with open(disk.path, "rb") as f:
        text = os.pread(f.fileno(), desc_sectors * 512, disk.offset + desc_sector * 512)
    return f'ddb.adapterType = "{adapter}"'.encode() in text


def _verified_copy(disk: OpenedDisk, tmp: str, reporter: Reporter, name: str, feed=None) -> None:
    """Copy the streamOptimized ``disk`` into ``tmp``, inflating every grain on the way
    (:class:`~vmferry.disks.vmdk_verify.GrainVerifier`), then check its directory and tables."""
    from vmferry.disks.vhd_write import file_blocks
    from vmferry.disks.vmdk_verify import GrainVerifier

    size = disk.size if disk.size is not None else os.path.getsize(disk.path) - disk.offset
    verify = GrainVerifier(disk.name or disk.path)
    try:
        with open(tmp, "wb") as f, reporter.step(f"copy {name}", size) as step:
            for block in file_blocks(disk.path, disk.offset, size, 4 << 20):
                f.write(block)
                verify.feed(block)
                if feed is not None:
                    feed(block)
                step.advance(len(block))
        verify.close()
    finally:
        verify.abandon()
    check_image(tmp)


def _first_sector(disk: OpenedDisk) -> bytes:
    with open(disk.path, "rb") as f:
        return os.pread(f.fileno(), 512, disk.offset)


def write_plain_image(disk: OpenedDisk, tmp: str, vhd: bool, *, align: int, reporter: Reporter,
                      workers: int | None, name: str, feed=None) -> int:
    """Write ``disk`` into the new file ``tmp`` as a fixed VHD (``vhd``) or raw bytes with vmferry's
    parallel writers (:mod:`vmferry.disks.vhd_write`): straight from its bytes when they can be read in
    place, from its grains when it is a streamOptimized VMDK, else through ``qemu-img convert`` to raw
    (then the footer). The guest bytes written."""
    from vmferry.disks import vhd_write
    from vmferry.disks.stream_import import streamable
    from vmferry.disks.vhd_footer import round_size

    with reporter.step(f"write {name}", disk.virtual_size) as step, open(tmp, "r+b") as f:
        fd = f.fileno()
        if disk.format == "vmdk-stream" and streamable(_first_sector(disk)):
            size = disk.size if disk.size is not None else os.path.getsize(disk.path) - disk.offset
            return vhd_write.write_from_member(disk.path, disk.offset, size, fd, align=align, vhd=vhd,
                                               workers=workers, progress=step.advance, feed=feed,
                                               name=disk.name or disk.path).populated
        with open_raw(disk.spec, disk.virtual_size) as reader:
            if reader.plain:
                return vhd_write.write_plain(reader.pread, disk.virtual_size, fd, is_zero=reader.is_zero,
                                             align=align, vhd=vhd, workers=workers, progress=step.advance).populated
    qemu_img.convert(disk.spec, tmp, "raw", {}, timeout=max(300, CONVERT_TIMEOUT_PER_GIB * (disk.virtual_size >> 30)))
    with open(tmp, "r+b") as f:
        size = round_size(disk.virtual_size, align)
        os.ftruncate(f.fileno(), size)
        if vhd:
            from vmferry.disks.vhd_footer import build_footer

            os.pwrite(f.fileno(), build_footer(size), size)
    return sum(e.length for e in qemu_img.map_extents(ImageSpec(tmp, "raw", 0, size)) if e.data and not e.zero)


def _result(out: str, fmt: DiskFormat, vsize: int, populated: int | None = None) -> ConvertResult:
    if populated is None:
        populated = sum(e.length for e in qemu_img.map_extents(ImageSpec(out, fmt.qemu))
                        if e.data and not e.zero)
    return ConvertResult(out, fmt.name, vsize, os.path.getsize(out), populated)


def _qemu_convert(disk: OpenedDisk, tmp: str, fmt: DiskFormat, adapter: str, reporter: Reporter,
                  expected: int) -> None:
    timeout = max(300, CONVERT_TIMEOUT_PER_GIB * (expected >> 30))
    with reporter.step(f"convert {os.path.basename(tmp)}", expected) as step:
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_size, args=(tmp, step.advance, stop), daemon=True)
        watcher.start()
        try:
            qemu_img.convert(disk.spec, tmp, fmt.qemu, _output_options(fmt, adapter), timeout=timeout)
        finally:
            stop.set()
            watcher.join()


def _watch_size(path: str, advance: Callable[[int], object], stop: threading.Event) -> None:
    """Report the growth of ``path`` (allocated bytes) while qemu-img writes it."""
    seen = 0
    while not stop.wait(0.2):
        try:
            now = os.stat(path).st_blocks * 512
        except FileNotFoundError:
            continue
        if now > seen:
            advance(now - seen)
            seen = now
