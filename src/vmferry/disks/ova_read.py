"""Reading disks out of an OVA without unpacking it, verifying it, unpacking it.

A tar member is a contiguous byte range of the ``.ova``: :func:`import_disk` converts a disk
member straight from that range (qemu-img opens it through a ``raw`` layer with ``offset`` and
``size``) while a thread hashes the same bytes against the manifest; the only thing written is the
output. :func:`verify_ova` and :func:`unpack_ova` read each byte of the archive once.

Members are listed by :func:`vmferry.package.ova.scan_ova`, the safe OVA reader (absolute paths, "..",
links, devices and truncation refused).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import re
import tempfile
import threading
import zlib
from dataclasses import dataclass

from vmferry.disks import safety
from vmferry.errors import (
    DiskError,
    ManifestMismatch,
    MissingFile,
    PackageError,
    TruncatedArchive,
    UnsafeArchive,
)
from vmferry.package.ova import TarMember as Member
from vmferry.package.ova import scan_ova
from vmferry.progress import Reporter

READ_CHUNK = 4 << 20
WINDOW = 8 << 20
# MAP_POPULATE maps a whole window at once instead of taking a page fault per 4 KiB page
MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


def members(ova: str | os.PathLike) -> list[Member]:
    """The regular-file members of ``ova`` with their data byte ranges (the safe OVA reader's list)."""
    return scan_ova(ova)


def _read_range(ova: str, m: Member) -> bytes:
    with open(ova, "rb") as f:
        return os.pread(f.fileno(), m.size, m.offset)


def manifest(ova: str, listing: list[Member]) -> dict[str, tuple[str, str]]:
    """name -> (hashlib algorithm, hex digest) from the ``.mf`` member ({} when there is none)."""
    from vmferry.package.manifest import ALGORITHMS, parse_manifest

    mf = [m for m in listing if m.name.lower().endswith(".mf")]
    if not mf:
        return {}
    if mf[0].size > 1 << 20:
        raise PackageError("the manifest is larger than 1 MiB", path=ova)
    parsed = parse_manifest(_read_range(ova, mf[0]), mf[0].name)
    if parsed.findings:
        raise PackageError(parsed.findings[0].message, path=f"{ova}:{mf[0].name}")
    return {e.name: (ALGORITHMS[e.algorithm], e.digest) for e in parsed.entries}


def _hash_range(ova: str, m: Member, algo: str, step=None, sink=None) -> str:
    """Digest of the member's bytes, hashed straight from the page cache (``mmap``, no copy) in
    windows of :data:`WINDOW` bytes, so resident memory stays bounded; ``sink`` (a file) receives
    the same bytes, so unpacking reads each byte once."""
    h = hashlib.new(algo)
    with open(ova, "rb") as f:
        if os.fstat(f.fileno()).st_size < m.offset + m.size:
            raise TruncatedArchive(f"{m.name} is truncated", path=ova)
        pos, end = m.offset, m.offset + m.size
        while pos < end:
            base = pos - pos % mmap.ALLOCATIONGRANULARITY
            length = min(end, base + WINDOW) - base
            with mmap.mmap(f.fileno(), length, flags=MAP_FLAGS, prot=mmap.PROT_READ, offset=base) as mm, \
                    memoryview(mm) as view, view[pos - base:] as chunk:
                h.update(chunk)
                if sink is not None:
                    sink.write(chunk)
            if step is not None:
                step.advance(base + length - pos)
            pos = base + length
    return h.hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    path: str
    checked: dict[str, str]      # name -> algorithm
    unlisted: list[str]          # members the manifest does not cover


def verify_ova(ova: str | os.PathLike, *, reporter: Reporter | None = None,
               require_manifest: bool = True) -> VerifyResult:
    """Check every member against the manifest, reading each byte once."""
    ova = os.fspath(ova)
    reporter = reporter or Reporter()
    listing = members(ova)
    mf = manifest(ova, listing)
    if not mf and require_manifest:
        raise MissingFile("the OVA has no manifest", path=ova)
    names = {m.name for m in listing}
    for name in mf:
        if name not in names:
            raise MissingFile(f"{name} is listed in the manifest but not in the archive", path=ova)
    checked, unlisted = {}, []
    todo = [m for m in listing if m.name in mf]
    with reporter.step("verify", sum(m.size for m in todo)) as step:
        for m in listing:
            if m.name not in mf:
                if not m.name.lower().endswith((".mf", ".cert")):
                    unlisted.append(m.name)
                continue
            algo, want = mf[m.name]
            if _hash_range(ova, m, algo, step) != want:
                raise ManifestMismatch(f"{m.name}: {algo.upper()} does not match the manifest", path=ova)
            checked[m.name] = algo
    return VerifyResult(ova, checked, unlisted)


def unpack_ova(ova: str | os.PathLike, out_dir: str | os.PathLike, *, force: bool = False,
               reporter: Reporter | None = None, verify: bool = True) -> list[str]:
    """Extract ``ova`` into ``out_dir``, verifying digests on the way (one read per byte).

    On any error nothing is left in ``out_dir`` (the files are written in a temporary directory).
    """
    ova = os.fspath(ova)
    reporter = reporter or Reporter()
    listing = members(ova)
    mf = manifest(ova, listing) if verify else {}
    safety.ensure_free_space(os.path.dirname(os.path.abspath(os.fspath(out_dir))),
                             sum(m.size for m in listing) + (1 << 20), what="the unpacked files")
    with safety.atomic_directory(out_dir, force=force) as tmp, \
            reporter.step("unpack", sum(m.size for m in listing)) as step:
        for m in listing:
            algo = mf.get(m.name, ("sha256", ""))[0]
            target = os.path.join(tmp, *m.name.split("/"))
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                sink = open(target, "xb")  # noqa: SIM115 - closed just below
            except FileExistsError as exc:
                raise UnsafeArchive(f"member {m.name!r} appears twice", path=ova) from exc
            except OSError as exc:
                raise PackageError(f"cannot write {m.name}: {exc.strerror}", path=ova) from exc
            with sink:
                digest = _hash_range(ova, m, algo, step, sink)
            if m.name in mf and digest != mf[m.name][1]:
                raise ManifestMismatch(f"{m.name}: {algo.upper()} does not match the manifest", path=ova)
    return [m.name for m in listing]


def import_disk(ova: str | os.PathLike, href: str, out: str | os.PathLike, fmt: str, *,
                compression: str | None = None, chunk_size: int | None = None, force: bool = False,
                reporter: Reporter | None = None, verify: bool = True, **convert_kwargs):
    """Convert the disk ``href`` of ``ova`` to ``out`` without extracting it.

    Plain members are converted from their byte range while a thread checks the manifest digest
    of the same bytes; a mismatch removes the output and raises :class:`ManifestMismatch`.
    gzip-compressed (``ovf:compression="gzip"``) or chunked (``ovf:chunkSize``) members cannot be
    opened by range: they are streamed (see :mod:`vmferry.disks.stream_import`). When
    ``compression``/``chunk_size`` are not given they are recognised from the archive (gzip magic
    number, ``HREF.000000000`` member names).
    """
    from vmferry.disks.convert import convert_disk, open_disk

    ova = os.fspath(ova)
    reporter = reporter or Reporter()
    listing = {m.name: m for m in members(ova)}
    mf = manifest(ova, list(listing.values())) if verify else {}
    if not compression and not chunk_size:
        # not told: chunks are recognised by their names, gzip by its magic number
        chunks = _chunk_members(listing, href)
        first = listing.get(href) or (chunks[0] if chunks else None)
        if href not in listing and chunks:
            chunk_size = chunks[0].size
        if first is not None and first.size >= 2 and _read_range(ova, Member(first.name, first.offset, 2)) \
                == b"\x1f\x8b":
            compression = "gzip"
    if compression or chunk_size:
        return _import_streamed(ova, listing, mf, href, out, fmt, compression, force, reporter,
                                convert_kwargs)
    if href not in listing:
        raise MissingFile(f"{href} is not in the archive", path=ova)
    m = listing[href]
    disk = open_disk(ova, m.offset, m.size, name=f"{ova}:{href}")
    if href not in mf:
        return convert_disk(disk, out, fmt, force=force, reporter=reporter, **convert_kwargs)
    algo, want = mf[href]
    got: dict[str, object] = {}

    def digest() -> None:
        try:
            got["hex"] = _hash_range(ova, m, algo)
        except (OSError, PackageError) as exc:
            got["error"] = exc

    hasher = threading.Thread(target=digest, name="ova-digest", daemon=True)
    hasher.start()
    result = convert_disk(disk, out, fmt, force=force, reporter=reporter, **convert_kwargs)
    hasher.join()
    if got.get("hex") != want:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(result.path)
        if "error" in got:
            raise PackageError(f"{href}: cannot be hashed: {got['error']}", path=ova)
        raise ManifestMismatch(f"{href}: {algo.upper()} does not match the manifest", path=ova)
    return result


def _chunk_members(listing: dict[str, Member], href: str) -> list[Member]:
    parts = sorted(n for n in listing if re.fullmatch(re.escape(href) + r"\.\d{9}", n))
    return [listing[n] for n in parts]


def _import_streamed(ova, listing, mf, href, out, fmt, compression, force, reporter, convert_kwargs):
    """gzip-compressed and/or chunked members: a streamOptimized VMDK is streamed straight into
    the output (:mod:`vmferry.disks.stream_import`); any other content is first joined into a
    temporary file beside the output."""
    from vmferry.disks.convert import ConvertResult, convert_disk, open_disk
    from vmferry.disks.formats import get_format
    from vmferry.disks.stream_import import ByteStream, stream_import, streamable

    parts = _chunk_members(listing, href) or ([listing[href]] if href in listing else [])
    if not parts:
        raise MissingFile(f"{href} (or its chunks) is not in the archive", path=ova)
    if compression not in (None, "gzip", "identity"):
        raise DiskError(f"unknown ovf:compression {compression!r}", path=ova)
    gunzip = compression == "gzip"
    head = ByteStream(_logical_blocks(ova, parts[:1], {}, gunzip, check_end=False))
    try:
        first = head.read(512)
    except DiskError:
        first = b""
    fmt = get_format(fmt)
    if streamable(first):
        try:
            vsize, populated = stream_import(_logical_blocks(ova, parts, mf, gunzip), out, fmt, force=force,
                                             reporter=reporter, workers=convert_kwargs.get("workers"),
                                             needed=sum(p.size for p in parts))
        except DiskError as exc:
            raise type(exc)(f"{href}: {exc.message}", path=ova) from exc
        return ConvertResult(os.path.abspath(os.fspath(out)), fmt.name, vsize, os.path.getsize(out), populated)
    parent = os.path.dirname(os.path.abspath(os.fspath(out)))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(os.fspath(out))}{safety.TEMP_MARK}", dir=parent)
    try:
        with os.fdopen(fd, "wb") as joined:
            for block in _logical_blocks(ova, parts, mf, gunzip):
                joined.write(block)
        return convert_disk(open_disk(tmp), out, fmt, force=force, reporter=reporter, **convert_kwargs)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _logical_blocks(ova: str, parts: list[Member], mf: dict, gunzip: bool, *, check_end: bool = True):
    """The content of a file stored as ``parts`` (chunks), gunzipped when ``gunzip``; each part's
    digest is checked against the manifest as soon as it has been read."""
    d = zlib.decompressobj(wbits=31) if gunzip else None
    with open(ova, "rb") as f:
        for part in parts:
            algo, want = mf.get(part.name, ("sha256", ""))
            h = hashlib.new(algo)
            f.seek(part.offset)
            left = part.size
            while left:
                block = f.read(min(READ_CHUNK, left))
                if not block:
                    raise TruncatedArchive(f"{part.name} is truncated", path=ova)
                left -= len(block)
                h.update(block)
                if d is None:
                    yield block
                    continue
                try:
                    while block:
                        data = d.decompress(block, READ_CHUNK)
                        if data:
                            yield data
                        block = d.unconsumed_tail
                except zlib.error as exc:
                    raise DiskError(f"corrupt gzip stream in {part.name}: {exc}", path=ova) from exc
            if part.name in mf and h.hexdigest() != want:
                raise ManifestMismatch(f"{part.name}: {algo.upper()} does not match the manifest", path=ova)
    if d is not None and check_end:
        tail = d.flush()
        if tail:
            yield tail
        if not d.eof:
            raise DiskError("the gzip stream is truncated", path=ova)
