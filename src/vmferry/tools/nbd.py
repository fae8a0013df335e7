"""NBD adapter over libnbd's Python binding (Debian's ``python3-libnbd``).

:class:`Export` is one connection to one NBD export: QEMU's pull-mode backup export of a running
domain's disk (a Unix socket libvirt asked QEMU to listen on), or a qcow2 image served read-write by a
``qemu-nbd`` that libnbd starts itself through systemd socket activation (no socket file, no port; the
server exits when the connection closes). It offers what replication needs: size, reads, writes, zero
writes, flush, and the export's extents for one metadata context (``base:allocation``, or the dirty
bitmap context ``qemu:dirty-bitmap:<name>`` of an incremental backup). Every libnbd error becomes a
:class:`~vmferry.errors.ToolError` naming the export.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from vmferry.errors import ToolError
from vmferry.tools import debian_binding
from vmferry.tools.proc import which
from vmferry.tools.qemu_img import ImageSpec

BASE_ALLOCATION = "base:allocation"
STATE_HOLE = 1          # base:allocation: not allocated
STATE_ZERO = 2          # base:allocation: reads as zeros
STATE_DIRTY = 1         # qemu:dirty-bitmap:*: changed since the bitmap was started
MAX_STATUS = 1 << 30    # bytes asked per block-status request (servers may refuse 4 GiB or more)


def binding():
    """The ``nbd`` module (Debian's ``python3-libnbd``), loaded from its own directory if need be."""
    return debian_binding.load("nbd", "libnbdmod", package="python3-libnbd", error=ToolError)


def dirty_bitmap_context(bitmap: str) -> str:
    """The NBD metadata context QEMU exports a dirty bitmap under."""
    return f"qemu:dirty-bitmap:{bitmap}"


@dataclass(frozen=True)
class Span:
    """A run of bytes of an export and its flags in one metadata context."""
    offset: int
    length: int
    flags: int


class Export:
    """One open NBD connection. Use :func:`open_unix` or :func:`serve_image`; close it (or use ``with``)."""

    def __init__(self, handle, name: str, contexts: Sequence[str]) -> None:
        self._h = handle
        self.name = name
        self.contexts = tuple(contexts)

    def _fail(self, what: str, exc: Exception) -> ToolError:
        return ToolError(f"NBD {self.name}: {what} failed: {exc}")

    def __enter__(self) -> Export:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def size(self) -> int:
        nbd = binding()
        try:
            return self._h.get_size()
        except nbd.Error as exc:
            raise self._fail("reading the size", exc) from exc

    def can_multi_conn(self) -> bool:
        """Whether the server says several connections to this export see the same data (NBD
        ``CAN_MULTI_CONN``): then reads may be spread over more connections."""
        nbd = binding()
        try:
            return bool(self._h.can_multi_conn())
        except nbd.Error:
            return False

    def has_context(self, context: str) -> bool:
        nbd = binding()
        try:
            return bool(self._h.can_meta_context(context))
        except nbd.Error:
            return False

    def pread(self, offset: int, length: int) -> bytes:
        nbd = binding()
        try:
            return self._h.pread(length, offset)
        except nbd.Error as exc:
            raise self._fail(f"read of {length} bytes at {offset}", exc) from exc

    def pwrite(self, offset: int, data: bytes) -> None:
        nbd = binding()
        try:
            self._h.pwrite(data, offset)
        except nbd.Error as exc:
            raise self._fail(f"write of {len(data)} bytes at {offset}", exc) from exc

    def zero(self, offset: int, length: int) -> None:
        """Make ``length`` bytes at ``offset`` read as zeros (a qcow2 target records zero clusters)."""
        nbd = binding()
        try:
            if self._h.can_zero():
                self._h.zero(length, offset)
            else:
                self._h.pwrite(bytes(length), offset)
        except nbd.Error as exc:
            raise self._fail(f"zero write of {length} bytes at {offset}", exc) from exc

    def flush(self) -> None:
        nbd = binding()
        try:
            if self._h.can_flush():
                self._h.flush()
        except nbd.Error as exc:
            raise self._fail("flush", exc) from exc

    def spans(self, context: str) -> Iterator[Span]:
        """Every byte of the export once, in order, as runs with their flags in ``context``.

        The server may answer a request with less than was asked (or with a final run going past it);
        the walk goes on from where each answer ends, clipped to the export's size.
        """
        nbd = binding()
        if not self.has_context(context):
            raise ToolError(f"NBD {self.name}: the server does not offer metadata context {context}")
        size = self.size()
        offset = 0
        while offset < size:
            got: list[tuple[int, int]] = []

            def collect(metacontext, _offset, entries, _error, got=got):
                if metacontext == context:
                    got.extend(zip(entries[0::2], entries[1::2], strict=False))
                return 0

            try:
                self._h.block_status(min(MAX_STATUS, size - offset), offset, collect)
            except nbd.Error as exc:
                raise self._fail(f"block status ({context}) at {offset}", exc) from exc
            if not got:
                raise ToolError(f"NBD {self.name}: no block status for {context} at {offset}")
            for length, flags in got:
                length = min(length, size - offset)
                if length <= 0:
                    break
                yield Span(offset, length, flags)
                offset += length

    def close(self) -> None:
        if self._h is not None:
            h, self._h = self._h, None
            nbd = binding()
            try:
                h.shutdown()
            except nbd.Error:
                pass   # the server is gone already: nothing left to say to it
            del h  # the last reference: libnbd closes the handle (and reaps a qemu-nbd it started)


def _handle(contexts: Sequence[str]):
    nbd = binding()
    h = nbd.NBD()
    for context in contexts:
        h.add_meta_context(context)
    return h


def open_unix(socket: str | os.PathLike, export: str, *, contexts: Sequence[str] = ()) -> Export:
    """Connect to ``export`` on the NBD server listening on Unix socket ``socket``, asking for the
    metadata ``contexts`` (see :meth:`Export.spans`)."""
    nbd = binding()
    h = _handle(contexts)
    name = f"{export} on {os.fspath(socket)}"
    try:
        h.set_export_name(export)
        h.connect_unix(os.fspath(socket))
    except nbd.Error as exc:
        del h
        raise ToolError(f"NBD {name}: connect failed: {exc}") from exc
    return Export(h, name, contexts)


def serve_image(image: str | os.PathLike | ImageSpec, fmt: str | None = None, *, readonly: bool = False,
                contexts: Sequence[str] = ()) -> Export:
    """Open ``image`` through a private ``qemu-nbd`` started by libnbd (socket activation): writes go
    into the image itself (for a qcow2 overlay, into the overlay; its backing chain is only read). The
    server exits when the export is closed.

    ``image`` is an :class:`~vmferry.tools.qemu_img.ImageSpec` (format and backing chain named by
    vmferry, never taken from the header: use this for anything vmferry did not just create itself) or a
    path with its format ``fmt`` (never probed)."""
    nbd = binding()
    argv = [which("qemu-nbd"), "--cache=writeback", "--aio=threads", "--discard=unmap"]
    if readonly:
        argv.append("--read-only")
    if isinstance(image, ImageSpec):
        argv += image.argv()
        name = image.path
    else:
        if not fmt:
            raise ToolError(f"NBD {os.fspath(image)}: no image format given")
        argv += ["-f", fmt, os.fspath(image)]
        name = os.fspath(image)
    h = _handle(contexts)
    try:
        h.connect_systemd_socket_activation(argv)
    except nbd.Error as exc:
        del h
        raise ToolError(f"NBD {name}: qemu-nbd could not serve it: {exc}") from exc
    return Export(h, name, contexts)
