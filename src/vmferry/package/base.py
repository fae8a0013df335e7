"""Packages: where a descriptor and its files live (an OVF directory or an OVA archive).

:func:`open_package` picks the container by content, not by name. A :class:`Package` gives the
descriptor, the list of member files with their sizes, and byte streams of the files a descriptor
references: gzip-compressed (``ovf:compression="gzip"``) and chunked (``ovf:chunkSize``: members
``href.000000000``, ``href.000000001``, ...) files read transparently.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from vmferry.errors import MissingFile, PackageError, UnsafeArchive
from vmferry.findings import Finding
from vmferry.package import streams


@dataclass(frozen=True)
class PackageMember:
    name: str
    size: int
    offset: int = 0          # OVA: data offset in the archive
    fs_path: str | None = None  # OVF directory: the file on disk


def safe_href(href: str) -> str | None:
    """The member name an ``ovf:href`` designates, or None when it is not a safe relative path
    (absolute, ``..``, URL)."""
    if not href or "://" in href or href.startswith("/") or "\\" in href or "\x00" in href:
        return None
    norm = posixpath.normpath(href)
    if norm == ".." or norm.startswith("../"):
        return None
    return norm


@dataclass
class Package:
    """A package and its members. Build one with :func:`open_package`."""

    path: str
    container: str                       # "ova" or "ovf"
    descriptor_name: str
    members: Mapping[str, PackageMember]  # in archive order (an OVA), looked up on demand (a directory)
    findings: list[Finding] = field(default_factory=list)

    # -- raw access ---------------------------------------------------------------------------
    def open_member(self, name: str):
        member = self.members.get(name)
        if member is None:
            raise MissingFile(f"'{name}' is not in the package", path=self.path)
        if member.fs_path is not None:
            return open(member.fs_path, "rb")  # noqa: SIM115 - caller closes
        return streams.RangeReader(self.path, member.offset, member.size)

    def read_member(self, name: str, limit: int = 64 << 20) -> bytes:
        member = self.members.get(name)
        if member is None:
            raise MissingFile(f"'{name}' is not in the package", path=self.path)
        if member.size > limit:
            raise PackageError(f"'{name}' is {member.size} bytes, more than {limit} allowed", path=self.path)
        with self.open_member(name) as fh:
            return fh.read()

    @cached_property
    def descriptor_bytes(self) -> bytes:
        return self.read_member(self.descriptor_name)

    @cached_property
    def envelope(self):
        from vmferry.ovf import Envelope

        where = (f"{self.path}:{self.descriptor_name}" if self.container == "ova"
                 else self.members[self.descriptor_name].fs_path)
        return Envelope.from_bytes(self.descriptor_bytes, path=where)

    @property
    def stem(self) -> str:
        return self.descriptor_name.rsplit(".", 1)[0]

    @property
    def manifest_name(self) -> str | None:
        name = self.stem + ".mf"
        return name if name in self.members else None

    @property
    def certificate_name(self) -> str | None:
        name = self.stem + ".cert"
        return name if name in self.members else None

    # -- referenced files ---------------------------------------------------------------------
    def parts_of(self, href: str, chunk_size: int | None) -> list[str]:
        """Member names holding a File: itself, or its chunks ``href.000000000``...; [] when absent."""
        name = safe_href(href)
        if name is None:
            return []
        if not chunk_size:
            return [name] if name in self.members else []
        parts = []
        while f"{name}.{len(parts):09d}" in self.members:
            parts.append(f"{name}.{len(parts):09d}")
        return parts

    def stored_size(self, href: str, chunk_size: int | None) -> int | None:
        parts = self.parts_of(href, chunk_size)
        return sum(self.members[p].size for p in parts) if parts else None

    def raw_blocks(self, parts: list[str]) -> Iterator[bytes]:
        for part in parts:
            yield from streams.iter_blocks(lambda p=part: self.open_member(p))

    def file_blocks(self, href: str, *, chunk_size: int | None = None, compression: str | None = None,
                    limit: int | None = None) -> Iterator[bytes]:
        """The logical content of a referenced file: chunks joined, gzip undone."""
        if safe_href(href) is None:
            raise UnsafeArchive(f"reference '{href}' is not a relative path inside the package",
                                path=self.path)
        parts = self.parts_of(href, chunk_size)
        if not parts:
            raise MissingFile(f"'{href}' is referenced but not in the package", path=self.path)
        blocks = self.raw_blocks(parts)
        if compression and compression.lower() in ("gzip", "gz"):
            return streams.gunzip(blocks, f"{self.path}:{href}", limit=limit)
        if compression and compression.lower() not in ("identity", "none", ""):
            raise PackageError(f"'{href}' uses compression '{compression}', which vmferry does not read",
                               path=self.path)
        return blocks


class _DirectoryMembers(Mapping):
    """The files of an OVF directory, looked up on demand: inspecting one descriptor in a folder of
    thousands stats only the files it names. Links and anything outside the folder are not members."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._seen: dict[str, PackageMember | None] = {}

    def _lookup(self, name: str) -> PackageMember | None:
        if name not in self._seen:
            member = None
            if safe_href(name) == name:
                full = os.path.join(self.directory, name)
                if not os.path.islink(full) and os.path.isfile(full):
                    member = PackageMember(name, os.path.getsize(full), fs_path=full)
            self._seen[name] = member
        return self._seen[name]

    def __getitem__(self, name: str) -> PackageMember:
        member = self._lookup(name)
        if member is None:
            raise KeyError(name)
        return member

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._lookup(name) is not None

    def __iter__(self) -> Iterator[str]:
        count = 0
        for root, dirs, files in os.walk(self.directory):
            dirs.sort()
            for fname in sorted(files):
                rel = os.path.relpath(os.path.join(root, fname), self.directory).replace(os.sep, "/")
                if rel in self:
                    count += 1
                    if count > 10_000:
                        return
                    yield rel

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _directory_package(directory: str, descriptor: str) -> Package:
    members = _DirectoryMembers(directory)
    if descriptor not in members:
        raise MissingFile("descriptor not found", path=os.path.join(directory, descriptor))
    return Package(directory, "ovf", descriptor, members)


def _ova_package(path: str) -> Package:
    from vmferry.package.ova import scan_ova

    scanned = scan_ova(path)
    descriptors = [m for m in scanned if m.name.lower().endswith(".ovf")]
    if not descriptors:
        raise PackageError("archive holds no .ovf descriptor", path=path)
    members = {m.name: PackageMember(m.name, m.size, m.offset) for m in scanned}
    pkg = Package(path, "ova", descriptors[0].name, members)
    if len(descriptors) > 1:
        pkg.findings.append(Finding("VMF-PKG-002", "warning", f"archive holds {len(descriptors)} descriptors; "
                                    f"the first, '{descriptors[0].name}', is used", path))
    pkg.findings.extend(member_order_findings(pkg, [m.name for m in scanned]))
    return pkg


def member_order_findings(pkg: Package, order: list[str]) -> list[Finding]:
    """DSP0243 §5.3: descriptor first; manifest and certificate next (1.x) or last (2.x allows both)."""
    out: list[Finding] = []
    if order[0] != pkg.descriptor_name:
        out.append(Finding("VMF-PKG-001", "warning", f"the descriptor '{pkg.descriptor_name}' is not the first "
                           f"member (first is '{order[0]}'); some importers stream and will fail", pkg.path,
                           "vmferry pack rewrites the archive in spec order"))
    specials = [n for n in (pkg.stem + ".mf", pkg.stem + ".cert") if n in order]
    if specials:
        idx = sorted(order.index(n) for n in specials)
        after_descriptor = idx == list(range(1, 1 + len(idx)))
        at_end = idx == list(range(len(order) - len(idx), len(order)))
        if not (after_descriptor or at_end):
            out.append(Finding("VMF-PKG-001", "warning", "manifest/certificate are neither right after the "
                               "descriptor nor at the end of the archive", pkg.path,
                               "vmferry pack rewrites the archive in spec order"))
    return out


def _looks_like_xml(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(512)
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def open_package(path: str | os.PathLike) -> Package:
    """Open an OVF descriptor (its directory is the package), an OVF directory, or an OVA."""
    path = os.fspath(path)
    if os.path.isdir(path):
        ovfs = sorted(f for f in os.listdir(path) if f.lower().endswith(".ovf"))
        if len(ovfs) != 1:
            raise PackageError(f"directory holds {len(ovfs)} .ovf descriptors; name the one to use",
                               path=path)
        return _directory_package(path, ovfs[0])
    if not os.path.exists(path):
        raise MissingFile("no such file or directory", path=path)
    if not os.path.isfile(path):
        raise PackageError("not a regular file", path=path)
    try:
        xml = _looks_like_xml(path)
    except OSError as exc:
        raise PackageError(f"cannot read: {exc.strerror}", path=path) from exc
    if xml:
        directory = os.path.dirname(os.path.abspath(path))
        return _directory_package(directory, os.path.basename(path))
    return _ova_package(path)
