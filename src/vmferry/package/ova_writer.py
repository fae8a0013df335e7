"""One-pass OVA writer: descriptor first, disks streamed while hashed, manifest last.

:func:`pack_ova` writes a tar (ustar; GNU base-256 sizes beyond 8 GiB) in a single pass:

1. the descriptor member is *reserved*: its header and ``reserve`` bytes are written from a first
   rendering of the descriptor (sizes unknown yet);
2. each file is streamed into the archive while its SHA256 is computed; disks marked for it are
   converted to streamOptimized VMDK on the way by :mod:`vmferry.disks.vmdk_stream`. A member's
   size is unknown until it is written, so its tar header is written last, in place;
3. the descriptor is rendered again from what was written (sizes, capacities, populated sizes),
   padded with trailing whitespace to the reserved length (XML allows it after the root element),
   and written over the reserved bytes;
4. the SHA256 manifest (``SHA256(name)= hex``) comes last, as OVF 2.0 allows.

The archive is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vmferry.disks import safety
from vmferry.disks.convert import OpenedDisk, estimate_output
from vmferry.disks.formats import FORMATS
from vmferry.disks.reader import open_raw
from vmferry.disks.vmdk_stream import DEFAULT_LEVEL, write_stream_vmdk
from vmferry.disks.vmdk_verify import GrainVerifier
from vmferry.errors import DiskError, PackageError, UsageError
from vmferry.progress import Reporter
from vmferry.tools import qemu_img

BLOCK = 512
RECORD = 20 * BLOCK
USTAR_MAX = 8 ** 11 - 1
COPY_CHUNK = 4 << 20


@dataclass(frozen=True)
class PackSource:
    """One file to put in the OVA under ``name``.

    ``disk`` set and ``stream_vmdk`` true: the disk is written as streamOptimized VMDK by vmferry's
    writer when its bytes can be read directly (:attr:`RawReader.plain`), copied as it is when it
    already is streamOptimized, else converted by qemu-img beside the archive first. ``disk`` set
    alone: its bytes (the byte range ``disk.offset``/``disk.size`` of ``disk.path``, e.g. an OVA
    member) are copied. Otherwise the file ``path`` is copied.
    """

    name: str
    path: str
    disk: OpenedDisk | None = None
    stream_vmdk: bool = False
    adapter: str = "lsilogic"


@dataclass(frozen=True)
class WrittenFile:
    name: str
    size: int
    sha256: str
    capacity: int | None = None        # virtual size of a disk, bytes
    populated: int | None = None       # guest bytes stored
    format_uri: str | None = None      # ovf:format of what was written (None: unchanged)


@dataclass(frozen=True)
class PackResult:
    path: str
    size: int
    files: dict[str, WrittenFile]
    findings: list = field(default_factory=list)   # e.g. VMF-DISK-020 from the caller


class _Sink:
    """Writes to the archive, hashing and counting what passes."""

    def __init__(self, f) -> None:
        self.f = f
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.hash.update(data)
        self.count += len(data)


def tar_header(name: str, size: int, mtime: int | None = None) -> bytes:
    """A 512-byte tar header for a regular file (ustar, or GNU base-256 for sizes above 8 GiB)."""
    if len(name.encode()) > 99 or "/" in name or name in ("", ".", ".."):
        raise UsageError(f"OVA member name {name!r} must be a plain file name under 100 bytes")
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = int(time.time()) if mtime is None else mtime
    info.type = tarfile.REGTYPE
    info.uname = info.gname = "someone"
    fmt = tarfile.USTAR_FORMAT if size <= USTAR_MAX else tarfile.GNU_FORMAT
    buf = info.tobuf(fmt, "utf-8", "strict")
    if len(buf) != BLOCK:
        raise UsageError(f"OVA member name {name!r} needs extended tar headers")
    return buf


def _pad(n: int) -> bytes:
    return b"\0" * (-n % BLOCK)


def pad_descriptor(xml: bytes, length: int) -> bytes:
    """``xml`` followed by whitespace up to ``length`` bytes (XML allows trailing whitespace)."""
    if len(xml) > length:
        raise PackageError(f"the descriptor grew to {len(xml)} bytes, more than the {length} reserved")
    return xml + b" " * (length - len(xml) - 1) + b"\n" if len(xml) < length else xml


def pack_ova(out: str | os.PathLike, descriptor_name: str,
             descriptor_render: Callable[[dict[str, WrittenFile]], bytes], files: list[PackSource], *,
             force: bool = False, reporter: Reporter | None = None, level: int = DEFAULT_LEVEL,
             workers: int | None = None, manifest: bool = True,
             finish: Callable[[], None] | None = None) -> PackResult:
    """Write the OVA ``out`` in one pass; see the module documentation. ``finish`` runs when every
    member was written, before the archive is renamed into place (the sources' manifest checks go
    there: raising leaves nothing)."""
    reporter = reporter or Reporter()
    names = [descriptor_name, *(f.name for f in files)]
    if len(set(names)) != len(names):
        raise UsageError("two files of the package would have the same name in the OVA")
    first = descriptor_render({})
    reserve = len(first) + max(4096, len(first) // 4)
    needed = reserve + 3 * BLOCK * (len(files) + 2) + RECORD
    for src in files:
        if src.stream_vmdk and src.disk is not None and src.disk.format != "vmdk-stream":
            needed += estimate_output(src.disk, FORMATS["vmdk-stream"])
        elif src.disk is not None and src.disk.size is not None:
            needed += src.disk.size
        else:
            needed += os.path.getsize(src.path)
    out = safety.check_output_path(out, force=force)
    safety.ensure_free_space(os.path.dirname(out), needed, what=os.path.basename(out))
    written: dict[str, WrittenFile] = {}
    with safety.atomic_output(out, force=force) as tmp, open(tmp, "wb") as f:
        mtime = int(time.time())
        f.write(tar_header(descriptor_name, reserve, mtime))
        desc_at = f.tell()
        f.write(pad_descriptor(first, reserve) + _pad(reserve))
        for src in files:
            written[src.name] = _write_member(f, src, mtime, reporter, level, workers)
        xml = pad_descriptor(descriptor_render(dict(written)), reserve)
        f.seek(desc_at)
        f.write(xml)
        f.seek(0, os.SEEK_END)
        digest = hashlib.sha256(xml).hexdigest()
        if manifest:
            lines = [f"SHA256({descriptor_name})= {digest}\n"]
            lines += [f"SHA256({w.name})= {w.sha256}\n" for w in written.values()]
            mf = "".join(lines).encode()
            mf_name = os.path.splitext(descriptor_name)[0] + ".mf"
            f.write(tar_header(mf_name, len(mf), mtime) + mf + _pad(len(mf)))
        f.write(b"\0" * (2 * BLOCK))
        f.write(b"\0" * (-f.tell() % RECORD))
        size = f.tell()
        if finish is not None:
            finish()
    written = {descriptor_name: WrittenFile(descriptor_name, reserve, digest), **written}
    return PackResult(out, size, written)


def _copy(path: str, offset: int, total: int, sink: _Sink, reporter: Reporter, label: str,
          verify=None) -> None:
    """Copy bytes into the archive; ``verify`` (a :class:`~vmferry.disks.vmdk_verify.GrainVerifier`)
    is fed the same chunks and closed at the end, so a damaged grain stops the archive."""
    try:
        with open(path, "rb") as inp, reporter.step(f"pack {label}", total) as step:
            inp.seek(offset)
            left = total
            while left:
                chunk = inp.read(min(COPY_CHUNK, left))
                if not chunk:
                    raise DiskError(f"{label}: the source ended {left} bytes early", path=path)
                sink.write(chunk)
                if verify is not None:
                    verify.feed(chunk)
                step.advance(len(chunk))
                left -= len(chunk)
        if verify is not None:
            verify.close()
    finally:
        if verify is not None:
            verify.abandon()


def _populated(disk: OpenedDisk) -> int:
    return sum(e.length for e in qemu_img.map_extents(disk.spec) if e.data and not e.zero)


@contextlib.contextmanager
def _converted_beside(archive, disk: OpenedDisk, reporter: Reporter):
    """A streamOptimized copy of ``disk`` made by qemu-img next to the archive being written."""
    from vmferry.disks.convert import convert_disk

    parent = os.path.dirname(os.path.abspath(archive.name))
    fd, tmp = tempfile.mkstemp(prefix=f".disk{safety.TEMP_MARK}", dir=parent)
    os.close(fd)
    try:
        result = convert_disk(disk, tmp, "vmdk-stream", force=True, reporter=reporter)
        yield tmp, result.populated
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _write_member(f, src: PackSource, mtime: int, reporter: Reporter, level: int,
                  workers: int | None) -> WrittenFile:
    header_at = f.tell()
    f.write(b"\0" * BLOCK)  # the header, rewritten once the size is known
    sink = _Sink(f)
    capacity = populated = uri = None
    if src.stream_vmdk and src.disk is None:
        raise UsageError(f"{src.name}: streamOptimized conversion needs an opened disk")
    disk = src.disk
    if src.stream_vmdk and disk.format != "vmdk-stream":
        with open_raw(disk.spec, disk.virtual_size) as reader:
            if reader.plain:
                with reporter.step(f"pack {src.name}", disk.virtual_size) as step:
                    res = write_stream_vmdk(reader.pread, disk.virtual_size, sink.write, is_zero=reader.is_zero,
                                            name=src.name, adapter=src.adapter, level=level, workers=workers,
                                            progress=step.advance)
                capacity, populated = disk.virtual_size, res.populated
            else:  # compressed clusters: qemu-img writes a streamOptimized copy beside the archive
                with _converted_beside(f, disk, reporter) as (tmp, populated):
                    _copy(tmp, 0, os.path.getsize(tmp), sink, reporter, src.name)
                capacity = disk.virtual_size
        uri = FORMATS["vmdk-stream"].ovf_uri
    elif disk is not None:
        # a disk copied as it is, possibly a byte range of an archive (an OVA member)
        total = disk.size if disk.size is not None else os.path.getsize(disk.path) - disk.offset
        # a streamOptimized VMDK copied byte for byte: its structure was checked when it was opened,
        # its grains are inflated while copied
        verify = GrainVerifier(disk.name or disk.path) if disk.format == "vmdk-stream" else None
        _copy(disk.path, disk.offset, total, sink, reporter, src.name, verify)
        capacity = disk.virtual_size
        if disk.format == "vmdk-stream":
            populated = _populated(disk)
            uri = FORMATS["vmdk-stream"].ovf_uri if src.stream_vmdk else None
    else:
        _copy(src.path, 0, os.path.getsize(src.path), sink, reporter, src.name)
    size = sink.count
    f.write(_pad(size))
    end = f.tell()
    f.seek(header_at)
    f.write(tar_header(src.name, size, mtime))
    f.seek(end)
    return WrittenFile(src.name, size, sink.hash.hexdigest(), capacity, populated, uri)
