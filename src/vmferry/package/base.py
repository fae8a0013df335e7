"""Packages: the one reader of package content (an OVF directory or an OVA archive), confined and verified.

Every command that reads a file of a package goes through a :class:`Package`; nothing downstream
re-opens the source by path (qemu-img excepted: it is handed the place :meth:`PackageFile.in_place`
names, and the bytes it reads are hashed at the same time).

API::

    pkg = open_package(path)           # an .ova, an OVF directory or a descriptor; opened once:
                                       # the .ova / the directory is held by a descriptor, a FIFO
                                       # or device is refused without being waited on
    pkg.envelope, pkg.descriptor_bytes # read and parsed once
    pkg.manifest                       # THE manifest: <descriptor stem>.mf (a decoy 00.mf is ignored)
    pkg.verify_integrity()             # once per package: refuses a manifest with unreadable or
                                       # duplicate lines, unknown algorithms, names of absent files,
                                       # a descriptor that does not match, a certificate that does
                                       # not verify; returns warnings (VMF-PKG-004 without manifest)
    f = pkg.file(href)                 # a referenced file (verify_integrity() first): chunks all
                                       # present with consistent sizes, ovf:size checked, parts
                                       # covered by the manifest
    f.blocks()                         # its logical bytes: chunks joined, gzip undone with a bound
                                       # from the Disk capacity, each part's digest checked before
                                       # its last block is handed on
    f.raw_blocks()                     # the stored bytes, verified the same way
    f.in_place                         # (path, offset, size) when the bytes can be read where
                                       # they are (one uncompressed part), else None
    with f.verified_in_place():        # a thread hashes those bytes while e.g. qemu-img reads
        convert(...)                   # them; a mismatch raises at the end of the block, so put
                                       # the block inside the output's temporary-name scope
    pkg.member_blocks(name)            # any member's bytes, checked against its manifest line

Files of an OVF directory are opened ``openat``-style below the directory (:mod:`.confined`): a link
in any path component is refused. OVA members are byte ranges of the archive (:mod:`.ova`), read with
``pread`` on the descriptor opened once.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from vmferry.errors import MissingFile, PackageError, SizeMismatch, UnsafeArchive
from vmferry.findings import Finding
from vmferry.package import streams
from vmferry.package.confined import Root, open_regular
from vmferry.package.files import PackageFile

MAX_INFLATED = 64 << 30      # gzip output bound of a file that is not a disk with a capacity
DISK_SLACK = 64 << 20        # a disk file may exceed its capacity by its metadata: 1/16 + 64 MiB
_UNSET = object()


@dataclass(frozen=True)
class PackageMember:
    name: str
    size: int
    offset: int = 0          # OVA: data offset in the archive
    fs_path: str | None = None  # OVF directory: the file on disk (no link below the package root)


def safe_href(href: str) -> str | None:
    """The member name an ``ovf:href`` designates, or None when it is not a safe relative path
    (absolute, ``..``, URL, or a folder: a name ending in ``/`` designates no file)."""
    if (not href or "://" in href or href.startswith("/") or href.endswith("/") or "\\" in href
            or "\x00" in href):
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
    fd: int = -1                          # an OVA: the archive, opened once
    root: Root | None = None              # an OVF directory, opened once
    descriptor_path: str | None = None    # an OVF directory: the descriptor as the user named it

    def where(self, name: str) -> str:
        """How messages name a member: ``X.ova:name`` or the file's path."""
        if self.container == "ova":
            return f"{self.path}:{name}"
        return os.path.join(self.path, *name.split("/"))

    # -- raw access ---------------------------------------------------------------------------
    def member(self, name: str) -> PackageMember:
        member = self.members.get(name)
        if member is None:
            raise MissingFile("is not in the package", path=self.where(name))
        return member

    def _stored_blocks(self, member: PackageMember) -> Iterator[bytes]:
        if self.container == "ova":
            yield from streams.pread_blocks(self.fd, member.offset, member.size, self.where(member.name))
            return
        fd = self.root.open(member.name)
        try:
            yield from streams.pread_blocks(fd, 0, member.size, self.where(member.name))
        finally:
            os.close(fd)

    def member_blocks(self, name: str) -> Iterator[bytes]:
        """The bytes of member ``name``: exactly its size, and checked against its manifest line
        (when it has one) before the last block is handed on."""
        member = self.member(name)
        return streams.checked_blocks(self._stored_blocks(member), size=member.size, where=self.where(name),
                                      digest=self.digest_of(name))

    def read_member(self, name: str, limit: int = 64 << 20, *, verify: bool = True) -> bytes:
        member = self.member(name)
        if member.size > limit:
            raise PackageError(f"is {member.size} bytes, more than {limit} allowed", path=self.where(name))
        blocks = self.member_blocks(name) if verify else self._stored_blocks(member)
        return b"".join(blocks)

    @cached_property
    def descriptor_bytes(self) -> bytes:
        if self.descriptor_path is not None:   # named by the user; a FIFO is refused
            fd = open_regular(self.descriptor_path)
            try:
                size = os.fstat(fd).st_size
                if size > 64 << 20:
                    raise PackageError(f"is {size} bytes, more than {64 << 20} allowed", path=self.descriptor_path)
                return b"".join(streams.pread_blocks(fd, 0, size, self.descriptor_path))
            finally:
                os.close(fd)
        return self.read_member(self.descriptor_name, verify=False)

    @cached_property
    def envelope(self):
        from vmferry.ovf import Envelope

        where = self.descriptor_path or self.where(self.descriptor_name)
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

    # -- the manifest ---------------------------------------------------------------------------
    @cached_property
    def manifest_bytes(self) -> bytes | None:
        name = self.manifest_name
        return None if name is None else self.read_member(name, 1 << 20, verify=False)

    @cached_property
    def manifest(self):
        """The manifest named after the descriptor (:class:`~vmferry.package.manifest.Manifest`), or None."""
        from vmferry.package.manifest import parse_manifest

        data = self.manifest_bytes
        return None if data is None else parse_manifest(data, self.where(self.manifest_name))

    @cached_property
    def _digests(self) -> dict[str, tuple[str, str]]:
        from vmferry.package.manifest import ALGORITHMS

        if self.manifest is None:
            return {}
        return {e.name: (ALGORITHMS[e.algorithm], e.digest) for e in self.manifest.entries}

    def digest_of(self, name: str) -> tuple[str, str] | None:
        """(hashlib name, hex digest) the manifest lists for ``name``, or None."""
        return self._digests.get(name)

    def manifest_problems(self) -> list[Finding]:
        """What makes the manifest unusable (errors): unreadable lines, unknown algorithms, a file listed
        twice, a line for a file that is not in the package."""
        manifest = self.manifest
        if manifest is None:
            return []
        out = [f for f in manifest.findings if f.severity == "error"]
        for entry in manifest.entries:
            name = safe_href(entry.name)
            if name is None or name != entry.name or not self._has(name):
                out.append(Finding("VMF-PKG-012", "error", f"manifest lists '{entry.name}', which is not in the "
                                   "package", f"{self.where(self.manifest_name)} (line {entry.line})"))
        return out

    def _has(self, name: str) -> bool:
        try:
            return name in self.members
        except PackageError:
            return False

    @cached_property
    def _integrity(self) -> list[Finding]:
        mf = self.manifest_name
        if mf is None:
            if self.certificate_name:
                from vmferry.errors import CertificateError

                raise CertificateError("a certificate but no manifest for it to sign",
                                       path=self.where(self.certificate_name))
            return [Finding("VMF-PKG-004", "warning", "the package has no manifest: the integrity of its files "
                            "was not verified", self.path, "ask the supplier for a package with a manifest")]
        problems = self.manifest_problems()
        if problems:
            raise PackageError(problems[0].message, path=problems[0].location, rule=problems[0].rule)
        digest = self.digest_of(self.descriptor_name)
        if digest is None:
            raise PackageError(f"the descriptor '{self.descriptor_name}' is not listed in the manifest",
                               path=self.where(mf))
        got = hashlib.new(digest[0], self.descriptor_bytes).hexdigest()
        if got != digest[1]:
            raise streams.mismatch(self.descriptor_path or self.where(self.descriptor_name), digest[0], got,
                                   digest[1])
        findings: list[Finding] = []
        if self.certificate_name:
            from vmferry.package.certificate import verify_certificate

            cert = verify_certificate(self.read_member(self.certificate_name, 1 << 20, verify=False),
                                      self.where(self.certificate_name), self.manifest_bytes, mf)
            findings += cert.findings
        return findings

    def verify_integrity(self) -> list[Finding]:
        """Check the manifest and the certificate once (see the module documentation); raise a
        :class:`PackageError` when they cannot be trusted; return warnings."""
        return list(self._integrity)

    # -- referenced files ---------------------------------------------------------------------
    def reference(self, href: str):
        """The descriptor's ``File`` with this href, or None (also when the descriptor cannot be parsed:
        a member can be read without one)."""
        from vmferry.errors import OvfError

        try:
            return next((f for f in self.envelope.references if f.href == href), None)
        except OvfError:
            return None

    def capacity_of(self, file_id: str | None) -> int | None:
        from vmferry.errors import OvfError

        if not file_id:
            return None
        try:
            caps = [d.capacity_bytes for d in self.envelope.disks if d.file_ref == file_id]
        except (OvfError, ValueError, OverflowError):
            return None
        return max((c for c in caps if c is not None and c >= 0), default=None)

    def _chunk_names(self, name: str) -> list[str]:
        """Every member named ``name.NNNNNNNNN``, sorted."""
        pattern = re.compile(re.escape(posixpath.basename(name)) + r"\.\d{9}")
        if self.container == "ova":
            return sorted(n for n in self.members if posixpath.dirname(n) == posixpath.dirname(name)
                          and pattern.fullmatch(posixpath.basename(n)))
        folder = posixpath.dirname(name)
        found = [n for n in self.root.listdir(folder) if pattern.fullmatch(n)]
        return sorted(posixpath.join(folder, n) if folder else n for n in found)

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

    def file(self, href: str, *, compression=_UNSET, chunk_size=_UNSET, declared_size: bool = True,
             ref=_UNSET) -> PackageFile:
        """The referenced file ``href``, checked (see the module documentation). ``compression``,
        ``chunk_size`` and the declared size default to the descriptor's ``File`` (``ref``: that File;
        by default the first with this href). ``declared_size=False`` leaves ``ovf:size`` unchecked."""
        self.verify_integrity()
        name = safe_href(href)
        if name is None:
            raise UnsafeArchive(f"reference '{href}' is not a relative path inside the package", path=self.path)
        if ref is _UNSET:
            ref = self.reference(href)
        declared = ref.size if ref is not None and declared_size else None
        if compression is _UNSET:
            compression = ref.compression if ref is not None else None
        if chunk_size is _UNSET:
            chunk_size = ref.chunk_size if ref is not None else None
        compression = (compression or "").strip().lower() or None
        if compression in ("identity", "none"):
            compression = None
        if compression not in (None, "gzip", "gz"):
            raise PackageError(f"uses compression '{compression}', which vmferry does not read",
                               path=self.where(name))
        parts = self._resolve_parts(name, chunk_size, declared)
        for part in parts:
            if self.manifest is not None and self.digest_of(part.name) is None:
                raise PackageError("is not listed in the manifest: its integrity cannot be verified",
                                   path=self.where(part.name))
        capacity = self.capacity_of(ref.id if ref is not None else None)
        bound = capacity + capacity // 16 + DISK_SLACK if capacity is not None else MAX_INFLATED
        return PackageFile(self, name, parts, compression is not None, bound, self._disk_format(ref))

    def _disk_format(self, ref) -> str | None:
        """The ``ovf:format`` of the Disk whose content the File ``ref`` is (None when none is)."""
        from vmferry.errors import OvfError

        if ref is None or not ref.id:
            return None
        try:
            env = self.envelope
            for d in env.disks:
                named = env.file_for_ref(d.file_ref) if d.file_ref else None
                if named is not None and (named.id, named.href) == (ref.id, ref.href):
                    return d.format
            return None
        except OvfError:
            return None

    def _resolve_parts(self, name: str, chunk_size: int | None, declared: int | None) -> list[PackageMember]:
        if chunk_size is not None and chunk_size <= 0:
            raise PackageError(f"declares ovf:chunkSize={chunk_size}", path=self.where(name))
        if not chunk_size:
            member = self.members.get(name)
            if member is None:
                raise MissingFile("is referenced by the descriptor but not in the package", path=self.where(name))
            parts = [member]
        else:
            names = self._chunk_names(name)
            if not names:
                raise MissingFile("is referenced by the descriptor (in chunks) but no chunk is in the package",
                                  path=self.where(name))
            for i, part in enumerate(names):
                if part != f"{name}.{i:09d}":
                    raise MissingFile(f"chunk {i} ('{posixpath.basename(name)}.{i:09d}') is missing",
                                      path=self.where(name))
            parts = [self.member(n) for n in names]
            for part in parts[:-1]:
                if part.size != chunk_size:
                    raise SizeMismatch(f"is {part.size} bytes; every chunk but the last must be ovf:chunkSize="
                                       f"{chunk_size}", path=self.where(part.name))
            if not 0 < parts[-1].size <= chunk_size:
                raise SizeMismatch(f"is {parts[-1].size} bytes; the last chunk holds 1 to {chunk_size}",
                                   path=self.where(parts[-1].name))
        stored = sum(p.size for p in parts)
        if declared is not None and declared != stored:
            what = "its chunks hold" if chunk_size else "is"
            raise SizeMismatch(f"{what} {stored} bytes but the descriptor declares ovf:size={declared}",
                               path=self.where(name))
        return parts

    def content(self, *, urls: bool = False) -> dict[str, PackageFile]:
        """Every File of References resolved and checked before a command uses any of them (see
        :func:`vmferry.package.content.resolve_content`): raises when a Disk's content is missing, a
        reference leaves the package, a size lies, a chunk is missing, the manifest does not cover a
        file. ``urls=True`` passes over Files that are URLs (not package files: ``unpack``)."""
        from vmferry.package.content import resolve_content

        key = ("content", urls)
        cache = self.__dict__.setdefault("_resolved", {})
        if key not in cache:
            cache[key] = resolve_content(self, urls=urls)
        return cache[key]

    def file_blocks(self, href: str, *, chunk_size: int | None = None, compression: str | None = None,
                    limit: int | None = None) -> Iterator[bytes]:
        """The logical content of a referenced file (see :meth:`file`)."""
        return self.file(href, chunk_size=chunk_size, compression=compression).blocks(limit)

    def close(self) -> None:
        closer = getattr(self, "_closer", None)
        if closer is not None:
            closer()


class _DirectoryMembers(Mapping):
    """The files of an OVF directory, looked up on demand: inspecting one descriptor in a folder of
    thousands stats only the files it names. A name with a link in any component is refused."""

    def __init__(self, root: Root) -> None:
        self.root = root
        self._seen: dict[str, PackageMember | None] = {}

    def _lookup(self, name: str) -> PackageMember | None:
        if name not in self._seen:
            member = None
            if safe_href(name) == name:
                size = self.root.regular_size(name)
                if size is not None:
                    member = PackageMember(name, size, fs_path=self.root.where(name))
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
        for root, dirs, files in os.walk(self.root.path):
            dirs.sort()
            for fname in sorted(files):
                rel = os.path.relpath(os.path.join(root, fname), self.root.path).replace(os.sep, "/")
                try:
                    present = rel in self
                except PackageError:
                    present = False
                if present:
                    count += 1
                    if count > 10_000:
                        return
                    yield rel

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _directory_package(directory: str, descriptor: str, descriptor_path: str | None = None) -> Package:
    root = Root(directory)
    try:
        members = _DirectoryMembers(root)
        if descriptor_path is None and descriptor not in members:
            raise MissingFile("descriptor not found", path=os.path.join(directory, descriptor))
    except BaseException:
        root.close()
        raise
    pkg = Package(directory, "ovf", descriptor, members, root=root, descriptor_path=descriptor_path)
    pkg._closer = weakref.finalize(pkg, root.close)
    return pkg


def _ova_package(path: str, fd: int) -> Package:
    from vmferry.package.ova import scan_ova

    scanned = scan_ova(path, fd)
    descriptors = [m for m in scanned if m.name.lower().endswith(".ovf")]
    if not descriptors:
        raise PackageError("archive holds no .ovf descriptor", path=path)
    members = {m.name: PackageMember(m.name, m.size, m.offset) for m in scanned}
    pkg = Package(path, "ova", descriptors[0].name, members, fd=fd)
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
    """Whether the regular file ``path`` starts like XML (a FIFO or device is refused, not waited on)."""
    fd = open_regular(path)
    try:
        head = os.pread(fd, 512, 0)
    finally:
        os.close(fd)
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
    fd = open_regular(path)
    try:
        head = os.pread(fd, 512, 0)
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
            os.close(fd)
            fd = -1
            directory = os.path.dirname(os.path.abspath(path))
            return _directory_package(directory, os.path.basename(path), descriptor_path=path)
        pkg = _ova_package(path, fd)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        raise PackageError(f"cannot read: {exc.strerror}", path=path) from exc
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    pkg._closer = weakref.finalize(pkg, os.close, fd)
    return pkg
