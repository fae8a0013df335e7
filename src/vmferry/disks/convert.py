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
              max_virtual_size: int = MAX_VIRTUAL_SIZE) -> OpenedDisk:
    """Detect and open the disk in ``path`` (or in its byte range ``offset``..``offset+size``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DiskError("no such file", path=path)
    det = formats.detect(path, offset, size)
    if det.name == "gzip":
        raise DiskError("gzip-compressed: `vmferry disk convert X.ova:MEMBER` streams such OVA members; "
                        "other uses need it uncompressed", path=path)
    if not det.qemu:
        raise DiskError(f"{det.detail or det.name}: not a disk format vmferry converts", path=path)
    ranged = offset != 0 or size is not None
    if det.name == "vhd-fixed":
        spec = ImageSpec(path, "raw", offset, det.data_size)
    elif det.name == "vmdk-flat" or (det.name == "vmdk-sparse" and det.detail == "VMDK text descriptor"):
        if ranged:
            raise DiskError("a VMDK text descriptor inside an archive cannot be opened", path=path)
        spec = ImageSpec(path, "vmdk")
    else:
        spec = ImageSpec(path, det.qemu, offset, size if ranged else None)
    if det.virtual_size is not None and det.virtual_size > max_virtual_size:
        raise DiskError(f"the header declares a virtual size of {det.virtual_size} bytes, more than "
                        f"the {max_virtual_size} vmferry accepts", path=path)
    info = qemu_img.info(spec)
    vsize = det.virtual_size if det.name == "vhd-fixed" else info.virtual_size
    if det.name == "vmdk-flat":
        spec = _flat_extent(path, info, vsize)
    if vsize > max_virtual_size:
        raise DiskError(f"the image declares a virtual size of {vsize} bytes, more than the "
                        f"{max_virtual_size} vmferry accepts", path=path)
    return OpenedDisk(path, offset, size, det, spec, vsize, info.subformat)


def _flat_extent(path: str, info: qemu_img.ImageInfo, vsize: int) -> ImageSpec:
    """A monolithicFlat VMDK is its descriptor plus one plain extent: read the extent as raw."""
    extents = info.format_specific.get("data", {}).get("extents", [])
    if len(extents) != 1 or not extents[0].get("filename"):
        raise DiskError("monolithicFlat VMDK with other than one extent", path=path)
    extent = os.path.join(os.path.dirname(path), extents[0]["filename"])
    if not os.path.isfile(extent) or os.path.getsize(extent) < vsize:
        raise DiskError(f"the flat extent {extent} is missing or shorter than {vsize} bytes", path=path)
    return ImageSpec(extent, "raw", 0, vsize)


def _output_options(fmt: DiskFormat, adapter: str) -> dict[str, str]:
    opts = fmt.create_options()
    if fmt.qemu == "vmdk":
        opts["adapter_type"] = adapter
    return opts


def estimate_output(disk: OpenedDisk, fmt: DiskFormat) -> int:
    """Bytes the output may take: the stored data plus metadata. qemu-img writes zero ranges as
    holes in every format (fixed VHD and raw included), so the data is what counts."""
    data = sum(e.length for e in qemu_img.map_extents(disk.spec) if e.data and not e.zero)
    return data + data // 50 + (1 << 20) + disk.virtual_size // 8192


def convert_disk(disk: OpenedDisk, out: str | os.PathLike, fmt: DiskFormat | str, *, force: bool = False,
                 reporter: Reporter | None = None, adapter: str = "lsilogic", level: int = DEFAULT_LEVEL,
                 workers: int | None = None) -> ConvertResult:
    """Write ``disk`` to ``out`` in ``fmt``; nothing appears at ``out`` unless it succeeds."""
    fmt = formats.get_format(fmt) if isinstance(fmt, str) else fmt
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
        return _result(out, fmt, vsize)
    with safety.atomic_output(out, force=force) as tmp:
        populated = None
        if fmt.name == "vmdk-stream":
            with open_raw(disk.spec, disk.virtual_size) as reader:
                if reader.plain:
                    with open(tmp, "wb") as f, reporter.step(f"write {os.path.basename(out)}",
                                                             disk.virtual_size) as step:
                        res = write_stream_vmdk(reader.pread, disk.virtual_size, f.write,
                                                is_zero=reader.is_zero, name=os.path.basename(out),
                                                adapter=adapter, level=level, workers=workers,
                                                progress=step.advance)
                    populated = res.populated
        if populated is None:
            _qemu_convert(disk, tmp, fmt, adapter, reporter, needed)
        vsize = _check_size(tmp, disk)
    return _result(out, fmt, vsize, populated)


def _check_size(path: str, disk: OpenedDisk) -> int:
    """The output must have the source's virtual size (rounded up to a sector for raw sources of an
    odd number of bytes, which sector-based formats cannot express)."""
    got = open_disk(path).virtual_size
    if not 0 <= got - disk.virtual_size < 512:
        raise DiskError(f"the output's virtual size is {got} bytes, not {disk.virtual_size}", path=disk.path)
    return got


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
