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

import hashlib
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vmferry.disks import safety
from vmferry.disks.convert import OpenedDisk, estimate_output
from vmferry.disks.formats import FORMATS
from vmferry.disks.reader import open_raw
from vmferry.disks.vmdk_stream import DEFAULT_LEVEL, write_stream_vmdk
from vmferry.errors import DiskError, PackageError, UsageError
from vmferry.progress import Reporter

BLOCK = 512
RECORD = 20 * BLOCK
USTAR_MAX = 8 ** 11 - 1
COPY_CHUNK = 4 << 20


@dataclass(frozen=True)
class PackSource:
    """One file to put in the OVA under ``name``.

    ``disk`` set and ``stream_vmdk`` true: the disk is written as streamOptimized VMDK by vmferry's
    writer (its bytes must be directly readable, see :attr:`RawReader.plain`). Otherwise the bytes
    of ``path`` are copied as they are.
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
    findings: list = field(default_factory=list)   # e.g. VMF-DISK-001 from the caller


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
             workers: int | None = None, manifest: bool = True) -> PackResult:
    """Write the OVA ``out`` in one pass; see the module documentation."""
    reporter = reporter or Reporter()
    names = [descriptor_name, *(f.name for f in files)]
    if len(set(names)) != len(names):
        raise UsageError("two files of the package would have the same name in the OVA")
    first = descriptor_render({})
    reserve = len(first) + max(4096, len(first) // 4)
    needed = reserve + 3 * BLOCK * (len(files) + 2) + RECORD
    for src in files:
        needed += estimate_output(src.disk, FORMATS["vmdk-stream"]) if src.stream_vmdk and src.disk \
            else os.path.getsize(src.path)
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
    written = {descriptor_name: WrittenFile(descriptor_name, reserve, digest), **written}
    return PackResult(out, size, written)


def _write_member(f, src: PackSource, mtime: int, reporter: Reporter, level: int,
                  workers: int | None) -> WrittenFile:
    header_at = f.tell()
    f.write(b"\0" * BLOCK)  # the header, rewritten once the size is known
    sink = _Sink(f)
    capacity = populated = uri = None
    if src.stream_vmdk:
        if src.disk is None:
            raise UsageError(f"{src.name}: streamOptimized conversion needs an opened disk")
        disk = src.disk
        with open_raw(disk.spec, disk.virtual_size) as reader:
            if not reader.plain:
                raise DiskError("compressed clusters: convert the disk to qcow2 or raw before packing",
                                path=disk.path)
            with reporter.step(f"pack {src.name}", disk.virtual_size) as step:
                res = write_stream_vmdk(reader.pread, disk.virtual_size, sink.write, is_zero=reader.is_zero,
                                        name=src.name, adapter=src.adapter, level=level, workers=workers,
                                        progress=step.advance)
        capacity, populated, uri = disk.virtual_size, res.populated, FORMATS["vmdk-stream"].ovf_uri
    else:
        total = os.path.getsize(src.path)
        with open(src.path, "rb") as inp, reporter.step(f"pack {src.name}", total) as step:
            while chunk := inp.read(COPY_CHUNK):
                sink.write(chunk)
                step.advance(len(chunk))
        if src.disk is not None:
            capacity = src.disk.virtual_size
    size = sink.count
    f.write(_pad(size))
    end = f.tell()
    f.seek(header_at)
    f.write(tar_header(src.name, size, mtime))
    f.seek(end)
    return WrittenFile(src.name, size, sink.hash.hexdigest(), capacity, populated, uri)
