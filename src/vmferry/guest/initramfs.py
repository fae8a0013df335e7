"""Read a Linux initramfs: one or more concatenated cpio archives, each plain or compressed.

Debian and Ubuntu images start with an uncompressed cpio (CPU microcode) followed by a compressed one
(gzip, xz, lzma, bzip2 or zstd); dracut images look alike. This is ``lsinitramfs`` logic written for
vmferry: it lists members and reads the few it needs, with no tool except ``zstd`` for zstd streams
(Python has no zstd module before 3.14).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tempfile
import zlib
from dataclasses import dataclass

from vmferry.errors import GuestError
from vmferry.guest.kmod import module_name
from vmferry.tools.proc import run

NEWC_MAGICS = (b"070701", b"070702")
ODC_MAGIC = b"070707"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Member:
    name: str
    mode: int
    data: memoryview  # a view into the decompressed image (bytes(member.data) to copy it)

    @property
    def is_file(self) -> bool:
        return (self.mode & 0o170000) == 0o100000


def zstd_decompress(data: bytes) -> bytes:
    with tempfile.TemporaryDirectory(prefix="vmferry-zstd-") as tmp:
        src, dst = os.path.join(tmp, "in.zst"), os.path.join(tmp, "out")
        with open(src, "wb") as fh:
            fh.write(data)
        run(["zstd", "-q", "-d", "-f", src, "-o", dst])
        with open(dst, "rb") as fh:
            return fh.read()


def _decompress_stream(data: bytes, path: str) -> bytes:
    """Decompress ``data`` (which may have trailing garbage or further streams after it)."""
    try:
        if data[:2] == b"\x1f\x8b":
            d = zlib.decompressobj(31)
            out = d.decompress(data)
            return out + d.flush()
        if data[:6] == b"\xfd7zXZ\x00":
            return lzma.LZMADecompressor().decompress(data)
        if data[:3] == b"\x5d\x00\x00":
            return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(data)
        if data[:3] == b"BZh":
            return bz2.BZ2Decompressor().decompress(data)
        if data[:4] == b"\x28\xb5\x2f\xfd":
            return zstd_decompress(data)
    except (zlib.error, lzma.LZMAError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise GuestError(f"initramfs: corrupt compressed stream: {exc}", path=path) from exc
    raise GuestError(f"initramfs: unknown compression (magic {data[:6].hex()})", path=path)


def _parse_cpio(data: memoryview, pos: int, path: str, out: list[Member]) -> int:
    """Parse one cpio archive starting at ``pos``; return the offset after its trailer."""
    while True:
        magic = bytes(data[pos:pos + 6])
        if magic in NEWC_MAGICS:
            hdr = bytes(data[pos:pos + 110])
            if len(hdr) < 110:
                raise GuestError("initramfs: truncated cpio header", path=path)
            try:
                fields = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
            except ValueError as exc:
                raise GuestError("initramfs: corrupt cpio header", path=path) from exc
            mode, filesize, namesize = fields[1], fields[6], fields[11]
            name_start = pos + 110
            name = bytes(data[name_start:name_start + namesize - 1]).decode("utf-8", "replace")
            data_start = (name_start + namesize + 3) & ~3
            pos = (data_start + filesize + 3) & ~3
        elif magic == ODC_MAGIC:
            hdr = bytes(data[pos:pos + 76])
            try:
                mode, namesize, filesize = int(hdr[18:24], 8), int(hdr[59:65], 8), int(hdr[65:76], 8)
            except ValueError as exc:
                raise GuestError("initramfs: corrupt cpio header", path=path) from exc
            name = bytes(data[pos + 76:pos + 76 + namesize - 1]).decode("utf-8", "replace")
            data_start = pos + 76 + namesize
            pos = data_start + filesize
        else:
            raise GuestError(f"initramfs: not a cpio archive at offset {pos}", path=path)
        if data_start + filesize > len(data):
            raise GuestError(f"initramfs: member {name!r} is truncated", path=path)
        if name == TRAILER:
            return pos
        out.append(Member(_clean(name), mode, data[data_start:data_start + filesize]))


def _clean(name: str) -> str:
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name or "."


def read_members(data: bytes | memoryview, path: str = "<initramfs>") -> list[Member]:
    """All members of every archive in an initramfs image."""
    data = memoryview(data)
    members: list[Member] = []
    pos = 0
    rounds = 0
    while pos < len(data):
        while pos < len(data) and data[pos] == 0:
            pos += 1
        if pos >= len(data):
            break
        rounds += 1
        if rounds > 16:
            raise GuestError("initramfs: too many concatenated archives", path=path)
        if bytes(data[pos:pos + 6]) in (*NEWC_MAGICS, ODC_MAGIC):
            pos = _parse_cpio(data, pos, path, members)
        else:
            # A compressed archive runs to the end of the image (the kernel allows more after it,
            # but no distribution builds that; members of a further stream would be missed).
            inner = _decompress_stream(bytes(data[pos:]), path)
            sub = read_members(inner, path)
            members.extend(sub)
            break
    return members


def read_file(path: str | os.PathLike) -> list[Member]:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise GuestError(f"cannot read initramfs: {exc.strerror}", path=path) from exc
    return read_members(data, os.fspath(path))


@dataclass(frozen=True)
class InitramfsContent:
    path: str                       # path inside the guest, e.g. /boot/initrd.img-6.1.0-13-amd64
    modules: tuple[str, ...]        # module names, sorted
    kernel_version: str | None      # from lib/modules/<version>/ inside the image
    files: int


def summarise(guest_path: str, members: list[Member]) -> InitramfsContent:
    modules = set()
    version = None
    for m in members:
        name = module_name(m.name)
        if name:
            modules.add(name)
            parts = m.name.split("/")
            if "modules" in parts:
                i = parts.index("modules")
                if i + 1 < len(parts):
                    version = version or parts[i + 1]
    return InitramfsContent(guest_path, tuple(sorted(modules)), version, len(members))
