"""What the header checks of :mod:`vmferry.disks.image_check` share: bounded reads of the image's
bytes, the typed result, and how a file an image names is resolved (or refused).

An image's bytes are read through a :class:`Source`: a ``pread`` callable over a byte range (a file,
or an OVA member) and its length, so a check never reads outside the range it was given and never
more than the caller allows. The per-format parsers (:mod:`~vmferry.disks.qcow2_header`,
:mod:`~vmferry.disks.vmdk_header`, :mod:`~vmferry.disks.vhd_header`) only read through it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from vmferry.errors import DamagedImage, DiskError, MissingFile, PackageError, UnsafeImage

SECTOR = 512
MAX_METADATA = 256 << 20   # bytes of tables (L1, GD/GT, BAT...) one check may read in total


@dataclass
class Source:
    """``length`` bytes of an image readable with ``pread(offset, n)``; ``name`` is what errors say.

    ``directory`` is where files the image names are looked up (the image's own folder), or None
    when the image is a byte range of an archive, where it can name no other file.
    """

    name: str
    length: int
    pread: Callable[[int, int], bytes]
    directory: str | None = None
    budget: int = MAX_METADATA

    def read(self, offset: int, n: int, what: str) -> bytes:
        """Exactly ``n`` bytes at ``offset`` or :class:`DamagedImage` naming ``what`` lies outside."""
        if offset < 0 or n < 0 or offset + n > self.length:
            raise self.damaged(f"the {what} (bytes {offset}..{offset + n}) lies outside the file "
                               f"of {self.length} bytes")
        self.budget -= n
        if self.budget < 0:
            raise self.damaged(f"the image's tables exceed {MAX_METADATA >> 20} MiB")
        data = self.pread(offset, n)
        if len(data) != n:
            raise self.damaged(f"the {what} at byte {offset} cannot be read in full")
        return data

    def within(self, offset: int, n: int, what: str) -> None:
        """Bounds check only (no read)."""
        if offset < 0 or n < 0 or offset + n > self.length:
            raise self.damaged(f"the {what} (bytes {offset}..{offset + n}) lies outside the file "
                               f"of {self.length} bytes")

    def damaged(self, message: str) -> DamagedImage:
        return DamagedImage(message, path=self.name)

    def unsafe(self, message: str) -> UnsafeImage:
        return UnsafeImage(message, path=self.name)


@contextlib.contextmanager
def open_source(path: str, offset: int = 0, size: int | None = None, *,
                name: str | None = None, references: bool = True) -> Iterator[Source]:
    """A :class:`Source` over ``path`` (or its byte range ``offset``..``offset+size``), open for the
    duration of the block. A file that is not a regular file is refused before it is read.
    ``references=False``: the image may name no other file (a byte range of an archive, or a file
    vmferry decompressed or joined into a temporary folder)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise DiskError(f"cannot open: {exc.strerror}", path=name or path) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeImage("not a regular file", path=name or path)
        length = st.st_size - offset if size is None else size
        if length < 0 or offset < 0 or offset + length > st.st_size:
            raise DamagedImage("the disk is shorter than its declared range", path=name or path)
        ranged = offset != 0 or size is not None
        yield Source(name or path, length, lambda at, n: os.pread(fd, n, offset + at),
                     None if ranged or not references else os.path.dirname(os.path.abspath(path)))
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Reference:
    """A file an image names: ``kind`` is ``backing``, ``data-file``, ``extent`` or ``parent``."""

    kind: str
    name: str          # as written in the image
    path: str          # resolved, inside the image's directory
    format: str = ""   # qemu driver for a backing file / sparse extent ("raw" for flat data)


@dataclass(frozen=True)
class VmdkExtent:
    """One extent line of a VMDK text descriptor."""

    access: str        # RW, RDONLY, NOACCESS
    sectors: int
    kind: str          # FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE
    path: str | None   # resolved file (None for ZERO)
    offset: int = 0    # FLAT: sector offset inside the file


@dataclass(frozen=True)
class ImageHeader:
    """What the header check found: the format (a key of :data:`vmferry.disks.formats.FORMATS`),
    the qemu driver, the virtual size, and every file the image names (all inside its folder)."""

    format: str
    qemu: str
    virtual_size: int
    references: tuple[Reference, ...] = ()
    extents: tuple[VmdkExtent, ...] = ()
    backing: ImageHeader | None = None
    detail: str = ""
    checks: tuple[str, ...] = field(default=())   # what was verified, for ``disk info --json``
    allocated: int | None = None   # guest bytes the tables say are stored (None: not counted)


PROTOCOL_CHARS = (":", "\\", "\x00", "\n", "\r")


def resolve_reference(src: Source, name: str, kind: str) -> str:
    """The path of the file ``name`` that the image ``src`` names (a backing file, an extent...).

    Refused (:class:`UnsafeImage`): an image inside an archive (it can name nothing), an empty name,
    ``json:`` and protocol names (anything with ``:``), absolute paths, ``..``, a link in any path
    component, and anything but a regular file. The name is looked up in the image's own folder,
    where qemu would look for it.
    """
    shown = name if len(name) <= 120 else name[:117] + "..."
    shown = shown.encode("unicode_escape").decode("ascii")
    if src.directory is None:
        raise src.unsafe(f"names a {kind} '{shown}', which an image inside an archive (or a compressed or "
                         "chunked file) cannot have")
    if not name:
        raise src.unsafe(f"names an empty {kind} file name")
    if name.startswith("json:") or any(c in name for c in PROTOCOL_CHARS):
        raise src.unsafe(f"names the {kind} '{shown}', a protocol or json: name, not a file of the package")
    if name.startswith("/") and kind == "backing file":
        # ``qemu-img create -b /abs/base.qcow2`` writes absolute names: one inside the image's own
        # folder is that folder's file (looked up below without following links); any other is not
        inside = os.path.normpath(name)
        if inside.startswith(src.directory.rstrip("/") + "/"):
            name = inside[len(src.directory.rstrip("/")) + 1:]
    if name.startswith("/"):
        raise src.unsafe(f"names the {kind} '{shown}', an absolute path outside the package")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise src.unsafe(f"names the {kind} '{shown}', which leads outside the package")
    # opened through the package reader's confinement: openat one component at a time, O_NOFOLLOW,
    # O_NONBLOCK, then fstat (a link anywhere, a FIFO or a device is refused, never waited on)
    from vmferry.package.confined import Root

    try:
        with Root(src.directory) as root:
            os.close(root.open("/".join(parts)))
    except MissingFile:
        raise src.unsafe(f"names the {kind} '{shown}', which is not in the package") from None
    except PackageError as exc:
        why = "is a symbolic link" if "symbolic link" in exc.message else "is not a regular file"
        raise src.unsafe(f"names the {kind} '{shown}', which {why}") from None
    return os.path.join(src.directory, *parts)
