"""OVA archives: a plain tar, read as a stream of headers without unpacking.

:func:`scan_ova` walks the tar headers (seeking over the data), and refuses anything that could hurt:
absolute paths, ``..``, symbolic and hard links, devices, FIFOs, sparse members, duplicate names, too
many members, members that run past the end of the file (truncation), a header that cannot be read
after the first member (tar itself stops there silently; vmferry refuses), and an archive without the
end-of-archive marker (cut short between two members). Every member is a contiguous
byte range ``[offset, offset + size)`` of the ``.ova``, which lets disks be converted straight out of the
archive.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from dataclasses import dataclass

from vmferry.errors import PackageError, TruncatedArchive, UnsafeArchive, one_line

MAX_MEMBERS = 10_000
MAX_NAME = 1024
MAX_HEADER_SPAN = 64 << 10   # a member's headers (ustar + pax/GNU long-name records): names are <= MAX_NAME


@dataclass(frozen=True)
class TarMember:
    name: str
    offset: int   # byte offset of the member's data in the archive
    size: int
    header_offset: int = 0


def _check_name(name: str, ova: str) -> str:
    if not name or len(name) > MAX_NAME:
        raise UnsafeArchive(f"member name is empty or longer than {MAX_NAME} characters", path=ova)
    if "\x00" in name or "\\" in name or not name.isprintable():
        # NUL, backslash, newlines, escape sequences, direction overrides: never a file name we write
        raise UnsafeArchive(f"member '{one_line(name[:80])}' has a forbidden (control or invisible) character "
                            "in its name", path=ova)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"member '{name}' has an absolute path", path=ova)
    norm = posixpath.normpath(name)
    if norm.startswith("../") or norm == ".." or "/../" in f"/{name}/":
        raise UnsafeArchive(f"member '{name}' escapes the archive with '..'", path=ova)
    return norm[2:] if norm.startswith("./") else norm


def scan_ova(path: str | os.PathLike, fd: int | None = None) -> list[TarMember]:
    """The regular-file members of an OVA, in archive order; raise on anything unsafe.

    ``fd``: the archive already opened (by :func:`vmferry.package.confined.open_regular`); without it
    the path is opened here, the same way (a FIFO is refused, not waited on)."""
    from vmferry.package.confined import open_regular

    ova = os.fspath(path)
    own = fd is None
    if own:
        fd = open_regular(ova)
    try:
        return _scan(ova, fd)
    finally:
        if own:
            os.close(fd)


def _scan(ova: str, fd: int) -> list[TarMember]:
    total = os.fstat(fd).st_size
    members: list[TarMember] = []
    seen: set[str] = set()
    try:
        with os.fdopen(os.dup(fd), "rb") as fileobj, tarfile.open(fileobj=fileobj, mode="r:") as tar:
            for info in tar:
                if len(members) >= MAX_MEMBERS:
                    raise UnsafeArchive(f"more than {MAX_MEMBERS} members (tar bomb?)", path=ova)
                name = _check_name(info.name, ova)
                if info.offset_data - info.offset > MAX_HEADER_SPAN:
                    raise UnsafeArchive(f"member '{name}' has {info.offset_data - info.offset} bytes of tar "
                                        f"headers (extended records), more than {MAX_HEADER_SPAN}", path=ova)
                if info.issym() or info.islnk():
                    raise UnsafeArchive(f"member '{info.name}' is a link (to '{info.linkname}'); OVA members "
                                        "must be regular files", path=ova)
                if info.isdir():
                    continue
                if info.ischr() or info.isblk() or info.isfifo() or info.isdev():
                    raise UnsafeArchive(f"member '{info.name}' is a device or FIFO", path=ova)
                if info.issparse():
                    raise UnsafeArchive(f"member '{info.name}' is a sparse tar member, which OVA does not "
                                        "allow", path=ova)
                if not info.isreg():
                    raise UnsafeArchive(f"member '{info.name}' is not a regular file (type "
                                        f"{info.type!r})", path=ova)
                if name in seen:
                    raise UnsafeArchive(f"member '{name}' appears twice", path=ova)
                if info.offset_data + info.size > total:
                    raise TruncatedArchive(f"archive is truncated: member '{name}' needs "
                                           f"{info.offset_data + info.size} bytes, file has {total}", path=ova)
                seen.add(name)
                members.append(TarMember(name, info.offset_data, info.size, info.offset))
            _check_end(ova, fd, tar.offset, total)
    except tarfile.ReadError as exc:
        msg = str(exc)
        if "unexpected end" in msg or "truncated" in msg.lower():
            raise TruncatedArchive(f"archive is truncated ({msg})", path=ova) from exc
        raise PackageError(f"not a tar archive ({msg})", path=ova) from exc
    except tarfile.TarError as exc:
        raise PackageError(f"unreadable tar archive ({exc})", path=ova) from exc
    except EOFError as exc:
        raise TruncatedArchive("archive is truncated", path=ova) from exc
    if not members:
        raise PackageError("archive holds no files", path=ova)
    return members


def _check_end(ova: str, fd: int, end: int, total: int) -> None:
    """Where tar stopped reading headers there must be tar's end-of-archive marker (a zero block: GNU tar
    accepts a lone one, POSIX writes two). A header tar could not read after the first member is damage,
    not the end of the archive; an archive that simply stops after a member (no marker) was cut short
    there, and the members that followed are lost."""
    block = os.pread(fd, 512, end)
    if block and block.count(0) != len(block):
        raise TruncatedArchive(f"the tar header at byte {end} is damaged; the members from there on cannot "
                               "be read", path=ova)
    if len(block) < 512:
        raise TruncatedArchive(f"archive is truncated: it ends at byte {total} without tar's end-of-archive "
                               "marker; members after that point are missing", path=ova)
