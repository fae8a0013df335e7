"""Add kernel modules to an initramfs-tools image on the host: what ``update-initramfs`` would add for
modules newly listed in ``/etc/initramfs-tools/modules``, without running it under emulation.

For each module listed, ``mkinitramfs`` copies the module and its dependencies (``modules.dep``, soft
pre-dependencies), appends its name to ``conf/modules`` (loaded by the initramfs' init), and runs
``depmod`` over the image's module tree. This does the same to the existing image: the new files,
``conf/modules`` and the ``modules.*`` indexes that the host's ``depmod -b`` computes over the union,
are written as a second cpio archive *inside the same compressed stream*, after the original archive
(the kernel unpacks consecutive archives and a later file replaces an earlier one). Early uncompressed
archives (CPU microcode) are kept byte for byte. The result is compressed like the original (gzip, xz,
zstd). Anything unusual (another compression, a module that needs firmware, no depmod on the host)
raises :class:`SpliceUnsupported` and the caller falls back to the guest's own tool.

Why this is equivalent: the configuration the guest's tool reads says the same (the caller writes
``/etc/initramfs-tools/modules`` first), so its next run (a kernel update) makes an image with the same
modules; the module set, load list and indexes of the spliced image are those ``mkinitramfs`` computes.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from vmferry.errors import VmferryError
from vmferry.guest import initramfs as reader
from vmferry.guest.kmod import modinfo, module_name
from vmferry.tools.proc import run, which

INDEXES = ("modules.dep", "modules.dep.bin", "modules.alias", "modules.alias.bin", "modules.softdep",
           "modules.symbols", "modules.symbols.bin", "modules.builtin.bin", "modules.builtin.alias.bin",
           "modules.devname")
COPIED = ("modules.order", "modules.builtin", "modules.builtin.modinfo")


class SpliceUnsupported(VmferryError):
    """This image cannot be changed on the host; the guest's own tool must regenerate it."""


class CpioWriter:
    """A minimal newc (``070701``) archive writer."""

    def __init__(self, first_ino: int = 0x7F000000) -> None:
        self.buf = io.BytesIO()
        self.ino = first_ino

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        encoded = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 2 if mode & 0o040000 else 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        self.ino += 1
        self.buf.write(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
        self.buf.write(b"\0" * (-self.buf.tell() % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def dir(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def _split(data: bytes, path: str) -> tuple[int, str | None]:
    """(offset of the compressed main archive, its compression), after the early plain archives."""
    pos = 0
    view = memoryview(data)
    while pos < len(data):
        while pos < len(data) and data[pos] == 0:
            pos += 1
        if pos >= len(data):
            break
        if data[pos:pos + 6] in (*reader.NEWC_MAGICS, reader.ODC_MAGIC):
            pos = reader._parse_cpio(view, pos, path, [])
            continue
        head = data[pos:pos + 6]
        kind = "gzip" if head[:2] == b"\x1f\x8b" else "xz" if head == b"\xfd7zXZ\x00" else \
            "zstd" if head[:4] == b"\x28\xb5\x2f\xfd" else None
        if kind is None:
            raise SpliceUnsupported(f"initramfs compression not handled on the host (magic {head.hex()})", path=path)
        return pos, kind
    return len(data), None


def _decompress(data: bytes, kind: str, path: str) -> bytes:
    if kind == "gzip":
        d = zlib.decompressobj(31)
        out = d.decompress(data) + d.flush()
        rest = d.unused_data
    elif kind == "xz":
        dx = lzma.LZMADecompressor()
        out = dx.decompress(data)
        rest = dx.unused_data
    else:
        out, rest = reader.zstd_decompress(data), b""
    if rest.strip(b"\0"):
        raise SpliceUnsupported("initramfs has data after its compressed archive", path=path)
    return out


def _compress(data: bytes, kind: str | None) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if kind == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, preset=6)
    if kind == "zstd":
        with tempfile.TemporaryDirectory(prefix="vmferry-zstd-") as tmp:
            src = os.path.join(tmp, "in")
            Path(src).write_bytes(data)
            run(["zstd", "-q", "-3", "-T0", "-f", src, "-o", src + ".zst"], timeout=600)
            return Path(src + ".zst").read_bytes()
    return data


def parse_dep(text: str) -> dict[str, list[str]]:
    """``modules.dep``: module path -> the paths it depends on (relative to /lib/modules/<version>)."""
    out = {}
    for line in text.splitlines():
        mod, sep, deps = line.partition(":")
        if sep:
            out[mod.strip()] = deps.split()
    return out


def parse_softdep_pre(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "softdep":
            mode = None
            for w in words[2:]:
                if w in ("pre:", "post:"):
                    mode = w
                elif mode == "pre:":
                    out.setdefault(words[1].replace("-", "_"), []).append(w.replace("-", "_"))
    return out


def closure(wanted: list[str], dep: dict[str, list[str]], softdep: dict[str, list[str]]) -> list[str]:
    """Module paths for ``wanted`` names and everything they need, dependencies first."""
    by_name = {module_name(p): p for p in dep}
    order: list[str] = []

    def visit(name: str) -> None:
        path = by_name.get(name)
        if path is None or path in order:
            return
        for pre in softdep.get(name, []):
            visit(pre)
        for d in dep.get(path, []):
            visit(module_name(d) or "")
        if path not in order:
            order.append(path)

    for name in wanted:
        visit(name)
    return order


def splice(image: bytes, version: str, wanted: list[str], guest_dep: str, guest_softdep: str,
           read_module: Callable[[str], bytes], path: str = "<initramfs>", *,
           links: dict[str, bytes] | None = None) -> tuple[bytes, list[str]]:
    """(new image, module paths added): ``image`` with ``wanted`` (names) and their dependencies, and
    the guest's systemd ``.link`` files (name -> content) where initramfs-tools' udev hook copies them."""
    try:
        which("depmod")
    except VmferryError as exc:
        raise SpliceUnsupported("no depmod on this host", path=path) from exc
    offset, kind = _split(image, path)
    inner = _decompress(image[offset:], kind, path) if kind else b""
    members = reader.read_members(inner, path) if inner else []
    names = {m.name: m for m in members}
    prefix = next((n.rsplit("/", 1)[0] for n in names if n.endswith(f"modules/{version}/modules.order")), None) or \
        next((p for p in (f"usr/lib/modules/{version}", f"lib/modules/{version}")
              if any(n.startswith(p + "/") for n in names)), None)
    if prefix is None or not kind:
        raise SpliceUnsupported("no compressed module tree for this kernel in the initramfs", path=path)
    present = {n[len(prefix) + 1:] for n in names if n.startswith(prefix + "/") and module_name(n)}
    needed = [p for p in closure(wanted, parse_dep(guest_dep), parse_softdep_pre(guest_softdep)) if p not in present]
    missing = [w for w in wanted if w not in {module_name(p) for p in present | set(needed)}]
    if missing:
        raise SpliceUnsupported(f"modules.dep of kernel {version} has no {', '.join(missing)}", path=path)
    new_files = {rel: read_module(rel) for rel in needed}
    for rel, data in new_files.items():
        if modinfo(data, rel).fields.get("firmware"):
            raise SpliceUnsupported(f"{rel} needs firmware (left to the guest's tool)", path=path)
    with tempfile.TemporaryDirectory(prefix="vmferry-depmod-") as tmp:
        base = Path(tmp) / "lib" / "modules" / version
        for n, m in names.items():
            if n.startswith(prefix + "/") and m.is_file and (module_name(n) or n.rsplit("/", 1)[-1] in COPIED):
                dst = base / n[len(prefix) + 1:]
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(bytes(m.data))
        for rel, data in new_files.items():
            dst = base / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
        run(["depmod", "-b", tmp, version], timeout=300)
        indexes = {n: (base / n).read_bytes() for n in INDEXES if (base / n).exists()}
    cpio = CpioWriter()
    dirs = sorted({f"{prefix}/{rel}".rsplit("/", 1)[0] for rel in new_files})
    made = {n for n, m in names.items() if (m.mode & 0o170000) == 0o040000}
    for d in dirs:
        parts = d.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in made:
                cpio.dir(sub)
                made.add(sub)
    for rel, data in new_files.items():
        cpio.file(f"{prefix}/{rel}", data)
    if links:
        merged = "lib" in names and (names["lib"].mode & 0o170000) == 0o120000   # lib -> usr/lib
        netdir = "usr/lib/systemd/network" if merged or "usr/lib/systemd/network" in names else "lib/systemd/network"
        for sub in ("usr", "usr/lib", "usr/lib/systemd", netdir) if netdir.startswith("usr") else \
                ("lib", "lib/systemd", netdir):
            if sub not in made and sub not in names:
                cpio.dir(sub)
                made.add(sub)
        for name, data in sorted(links.items()):
            cpio.file(f"{netdir}/{name}", data)
    for n, data in indexes.items():
        cpio.file(f"{prefix}/{n}", data)
    conf = bytes(names["conf/modules"].data).decode() if "conf/modules" in names else ""
    listed = {ln.split()[0].replace("-", "_") for ln in conf.splitlines() if ln.split()}
    add = [w for w in wanted if w not in listed]
    if add:
        conf = (conf if conf.endswith("\n") or not conf else conf + "\n") + "".join(f"{w}\n" for w in add)
        cpio.file("conf/modules", conf.encode())
    body = inner + b"\0" * (-len(inner) % 4) + cpio.finish()
    body += b"\0" * (-len(body) % 512)
    return image[:offset] + _compress(body, kind), needed
