"""Reading disks out of a package without unpacking it, verifying an OVA, unpacking it.

Everything goes through the package reader (:mod:`vmferry.package.base`): the archive is opened once,
the manifest is the one named after the descriptor, and every byte is checked against it while it is
read. :func:`convert_file` converts a referenced file: a plain one straight from where it lies
(qemu-img reads the OVA member's byte range, or the file of an OVF directory) while a thread hashes
the same bytes — a mismatch raises before the output is renamed into place; a gzip-compressed or
chunked one is streamed (see :mod:`vmferry.disks.stream_import`). :func:`verify_ova` and
:func:`unpack_ova` read each byte of the archive once.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from dataclasses import dataclass

from vmferry.disks import safety
from vmferry.errors import DiskError, MissingFile, PackageError, UnsafeArchive
from vmferry.package import streams
from vmferry.package.base import Package, PackageFile, open_package
from vmferry.package.ova import TarMember as Member
from vmferry.package.ova import scan_ova
from vmferry.progress import Reporter


def members(ova: str | os.PathLike) -> list[Member]:
    """The regular-file members of ``ova`` with their data byte ranges (the safe OVA reader's list)."""
    return scan_ova(ova)


def _open_ova(ova: str) -> Package:
    pkg = open_package(ova)
    if pkg.container != "ova":
        raise PackageError("is not an OVA archive", path=ova)
    return pkg


@dataclass(frozen=True)
class VerifyResult:
    path: str
    checked: dict[str, str]      # name -> algorithm
    unlisted: list[str]          # members the manifest does not cover


def verify_ova(ova: str | os.PathLike, *, reporter: Reporter | None = None,
               require_manifest: bool = True) -> VerifyResult:
    """Check every member against the manifest, and every referenced file (:meth:`Package.content`; a
    compressed one's gzip stream too), reading each byte once."""
    ova = os.fspath(ova)
    reporter = reporter or Reporter()
    pkg = _open_ova(ova)
    pkg.verify_integrity()
    if pkg.manifest is None and require_manifest:
        raise MissingFile(f"the OVA has no manifest ('{pkg.stem}.mf')", path=ova)
    gzip = _GzipChecks(pkg)
    checked, unlisted = {}, []
    todo = [m for m in pkg.members.values() if pkg.digest_of(m.name) or gzip.wants(m.name)]
    with reporter.step("verify", sum(m.size for m in todo)) as step:
        for m in pkg.members.values():
            digest = pkg.digest_of(m.name)
            if digest is None and m.name not in (pkg.manifest_name, pkg.certificate_name):
                unlisted.append(m.name)
            if digest is None and not gzip.wants(m.name):
                continue
            got = streams.hash_range(pkg.fd, m.offset, m.size, digest[0] if digest else "sha256",
                                     pkg.where(m.name), step=step.advance, sink=gzip.sink(m.name))
            if digest is not None:
                if got != digest[1]:
                    raise streams.mismatch(pkg.where(m.name), digest[0], got, digest[1])
                checked[m.name] = digest[0]
    gzip.finish()
    return VerifyResult(ova, checked, unlisted)


class _GzipChecks:
    """The gzip streams of a package's compressed files, inflated (bounded, output dropped) as their
    parts pass in a reading of the archive: :meth:`sink` for each member read, :meth:`finish` at the
    end (a file whose parts came out of order, or not at all, is read again there)."""

    def __init__(self, pkg: Package) -> None:
        files = [pf for pf in _content(pkg).values() if pf.compressed]
        self.state = {id(pf): [pf, pf.inflater(), 0] for pf in files}
        self.part_of = {p.name: (id(pf), i) for pf in files for i, p in enumerate(pf.parts)}

    def wants(self, name: str) -> bool:
        return name in self.part_of

    def sink(self, name: str):
        key, index = self.part_of.get(name, (None, -1))
        state = self.state.get(key)
        if state is None:
            return None
        if state[2] != index:
            state[2] = -1
            return None
        state[2] = index + 1
        return state[1]

    def finish(self) -> None:
        for pf, inflater, done in self.state.values():
            if done == len(pf.parts):
                inflater.finish()
            else:
                pf.check_stored()


def _content(pkg: Package) -> dict[str, PackageFile]:
    """The referenced files of an OVA read member by member (:meth:`Package.content`; URLs are not
    members). A descriptor that cannot be parsed references nothing: the members are still read safely
    and checked against the manifest (``disk convert X.ova:M`` and ``unpack`` need no descriptor)."""
    from vmferry.errors import OvfError

    pkg.verify_integrity()
    try:
        pkg.envelope  # noqa: B018 - parsed once, or not at all
    except OvfError:
        return {}
    return pkg.content(urls=True)


class _Tee:
    def __init__(self, *sinks) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def write(self, data) -> None:
        for s in self.sinks:
            s.write(data)


def unpack_ova(ova: str | os.PathLike, out_dir: str | os.PathLike, *, force: bool = False,
               reporter: Reporter | None = None, verify: bool = True) -> list[str]:
    """Extract ``ova`` into ``out_dir``, verifying digests and referenced files on the way (one read per
    byte: a compressed file's gzip stream is inflated as it is copied).

    On any error nothing is left in ``out_dir`` (the files are written in a temporary directory).
    ``verify=False`` skips the manifest and the references (the archive is still read safely).
    """
    ova = os.fspath(ova)
    reporter = reporter or Reporter()
    pkg = _open_ova(ova)
    gzip = _GzipChecks(pkg) if verify else None
    listing = list(pkg.members.values())
    safety.ensure_free_space(os.path.dirname(os.path.abspath(os.fspath(out_dir))),
                             sum(m.size for m in listing) + (1 << 20), what="the unpacked files")
    with safety.atomic_directory(out_dir, force=force) as tmp, \
            reporter.step("unpack", sum(m.size for m in listing)) as step:
        for m in listing:
            digest = pkg.digest_of(m.name) if verify else None
            target = os.path.join(tmp, *m.name.split("/"))
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                sink = open(target, "xb")  # noqa: SIM115 - closed just below
            except FileExistsError as exc:
                raise UnsafeArchive(f"member {m.name!r} appears twice", path=ova) from exc
            except OSError as exc:
                raise PackageError(f"cannot write {m.name}: {exc.strerror}", path=ova) from exc
            with sink:
                both = _Tee(sink, gzip.sink(m.name)) if gzip is not None else sink
                got = streams.hash_range(pkg.fd, m.offset, m.size, digest[0] if digest else "sha256",
                                         pkg.where(m.name), step=step.advance, sink=both)
            if digest is not None and got != digest[1]:
                raise streams.mismatch(pkg.where(m.name), digest[0], got, digest[1])
        if gzip is not None:
            gzip.finish()
    return [m.name for m in listing]


def import_disk(ova: str | os.PathLike, href: str, out: str | os.PathLike, fmt: str, *,
                compression: str | None = None, chunk_size: int | None = None, force: bool = False,
                reporter: Reporter | None = None, **convert_kwargs):
    """Convert the disk ``href`` of ``ova`` to ``out`` without extracting it (:func:`convert_file`).

    ``compression``/``chunk_size`` and sizes come from the descriptor's ``File``; a member the
    descriptor does not describe is recognised from the archive (gzip magic number or ``compression``,
    ``HREF.000000000`` names, the first chunk's size); ``chunk_size`` is then only a hint.
    """
    ova = os.fspath(ova)
    pkg = _open_ova(ova)
    _content(pkg)   # the package as a whole: its references resolved, none leaving it
    overrides = {}
    if pkg.reference(href) is None:
        # not described: chunks are recognised by their names, gzip by its magic number (or as told)
        chunks = pkg._chunk_names(href) if href not in pkg.members else []
        first = pkg.members.get(href) or (pkg.members[chunks[0]] if chunks else None)
        if chunks:
            overrides["chunk_size"] = first.size
        if compression or (first is not None and first.size >= 2
                           and os.pread(pkg.fd, 2, first.offset) == b"\x1f\x8b"):
            overrides["compression"] = compression or "gzip"
    return convert_file(pkg.file(href, **overrides), out, fmt, force=force, reporter=reporter, **convert_kwargs)


def convert_file(f: PackageFile, out: str | os.PathLike, fmt: str, *, force: bool = False,
                 reporter: Reporter | None = None, **convert_kwargs):
    """Convert the package file ``f`` (a disk) to ``out``; verified while read, nothing left on error."""
    from vmferry.disks.convert import convert_disk, open_disk

    reporter = reporter or Reporter()
    place = f.in_place
    if place is None:
        return _convert_streamed(f, out, fmt, force, reporter, convert_kwargs)
    inline = f.inline_digest()
    if inline is not None:
        converted = _convert_reading_once(f, place, inline, out, fmt, force, reporter, convert_kwargs)
        if converted is not None:
            return converted
    with f.verified_in_place() as check:
        disk = open_disk(*place, name=f.where, declared=f.disk_format)
        return convert_disk(disk, out, fmt, force=force, reporter=reporter, finish=check, **convert_kwargs)


def _convert_reading_once(f: PackageFile, place, inline, out, fmt, force, reporter, convert_kwargs):
    """The conversions that read the file's bytes front to back themselves (:func:`reads_once`) check
    its digest on those bytes: one reading (ARCHITECTURE.md: read once, verify once). None: this
    conversion reads otherwise (qemu-img), the digest is checked by :meth:`PackageFile.verified_in_place`.
    When the conversion fails and the bytes are damaged, the damage is what is reported."""
    from vmferry.disks.convert import convert_disk, open_disk, reads_once
    from vmferry.disks.stream_import import streamable

    path, offset, _size = place
    with open(path, "rb") as fh:
        if not streamable(os.pread(fh.fileno(), 512, offset)):
            return None     # only a streamOptimized VMDK is read by vmferry's own writers alone
    try:
        # qemu-img never opens it on this path: the header check walks it, the writers read it
        disk = open_disk(*place, name=f.where, declared=f.disk_format, probe=False)
        if not reads_once(disk, fmt, convert_kwargs.get("adapter", "lsilogic")):
            return None
        try:
            return convert_disk(disk, out, fmt, force=force, reporter=reporter, digest=inline, **convert_kwargs)
        finally:
            inline.close()
    except DiskError as exc:
        try:
            f.check_stored()
        except PackageError as damage:
            raise damage from exc
        raise


def _convert_streamed(f: PackageFile, out, fmt, force, reporter, convert_kwargs):
    """gzip-compressed and/or chunked files: a streamOptimized VMDK is streamed straight into the
    output (:mod:`vmferry.disks.stream_import`); any other content is first joined into a temporary
    file beside the output."""
    from vmferry.disks.convert import PLAIN_WRITERS, ConvertResult, convert_disk, open_disk
    from vmferry.disks.formats import get_format
    from vmferry.disks.stream_import import stream_import, streamable

    blocks = f.blocks()
    head: list[bytes] = []
    have = 0
    with contextlib.suppress(StopIteration):
        while have < 512:
            head.append(next(blocks))
            have += len(head[-1])
    first = b"".join(head)[:512]
    stream = itertools.chain(head, blocks)
    fmt = get_format(fmt)
    if streamable(first) and fmt.name in PLAIN_WRITERS:
        return _stream_plain(stream, out, fmt, force, reporter, convert_kwargs, f)
    if streamable(first):
        try:
            vsize, populated = stream_import(stream, out, fmt, force=force, reporter=reporter,
                                             workers=convert_kwargs.get("workers"), needed=f.stored_size)
        except DiskError as exc:
            raise type(exc)(exc.message, path=exc.path or f.where, rule=exc.rule) from exc
        return ConvertResult(os.path.abspath(os.fspath(out)), fmt.name, vsize, os.path.getsize(out), populated)
    parent = os.path.dirname(os.path.abspath(os.fspath(out)))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(os.fspath(out))}{safety.TEMP_MARK}", dir=parent)
    try:
        with os.fdopen(fd, "wb") as joined:
            for block in stream:
                joined.write(block)
        disk = open_disk(tmp, name=f.where, references=False, declared=f.disk_format)
        return convert_disk(disk, out, fmt, force=force, reporter=reporter, **convert_kwargs)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _stream_plain(stream, out, fmt, force, reporter, convert_kwargs, f: PackageFile):
    """A streamed streamOptimized VMDK written as a fixed VHD or raw image by vmferry's parallel writer
    (:func:`vmferry.disks.vhd_write.write_from_stream`); the stream's digest is checked when it is drained,
    before the output is renamed into place."""
    from vmferry.disks.convert import ConvertResult
    from vmferry.disks.vhd_write import write_from_stream

    out = safety.check_output_path(out, force=force)
    safety.ensure_free_space(os.path.dirname(out), f.stored_size + (1 << 20), what=os.path.basename(out))
    with safety.atomic_output(out, force=force) as tmp, open(tmp, "r+b") as fh, \
            reporter.step(f"import {os.path.basename(out)}") as step:
        try:
            res = write_from_stream(stream, fh.fileno(), align=convert_kwargs.get("align", 512),
                                    vhd=fmt.name == "vhd-fixed", workers=convert_kwargs.get("workers"),
                                    progress=step.advance)
        except DiskError as exc:
            raise type(exc)(exc.message, path=exc.path or f.where, rule=exc.rule) from exc
    return ConvertResult(out, fmt.name, res.virtual_size, res.file_size, res.populated)
