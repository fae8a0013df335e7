"""A referenced file of a package (:class:`PackageFile`), its parts resolved and checked by
:meth:`vmferry.package.base.Package.file`: read through :meth:`PackageFile.blocks` (chunks joined, gzip
undone with a bound, every part's digest checked before its last block leaves), or in place by another
reader (qemu-img) while :meth:`PackageFile.verified_in_place` checks the same stored bytes on a thread:
their manifest digest and, for a gzip-compressed file, that the stream is whole and inflates within its
bound.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmferry.errors import PackageError, SizeMismatch
from vmferry.package import streams

if TYPE_CHECKING:
    from vmferry.package.base import Package, PackageMember


@dataclass
class PackageFile:
    """A referenced file of a package, its parts checked; read it with :meth:`blocks`."""

    package: Package
    name: str
    parts: list[PackageMember]
    compressed: bool
    bound: int                # most bytes the logical content may have
    disk_format: str | None = None   # the ovf:format of the Disk whose content it is (None: not a disk)

    @property
    def where(self) -> str:
        return self.package.where(self.name)

    @property
    def stored_size(self) -> int:
        return sum(p.size for p in self.parts)

    @property
    def in_place(self) -> tuple[str, int, int | None] | None:
        """(path, offset, size) where the plain bytes lie, when they can be read in place."""
        if self.compressed or len(self.parts) != 1:
            return None
        part = self.parts[0]
        if self.package.container == "ova":
            return self.package.path, part.offset, part.size
        return part.fs_path, 0, None

    def raw_blocks(self) -> Iterator[bytes]:
        for part in self.parts:
            yield from self.package.member_blocks(part.name)

    def inflater(self) -> streams.Inflater:
        """A checker of this (compressed) file's gzip stream, bounded like :meth:`blocks`."""
        return streams.Inflater(self.where, self.bound)

    def blocks(self, limit: int | None = None) -> Iterator[bytes]:
        """The logical content: chunks joined, gzip undone (output bounded), every part verified."""
        if not self.compressed:
            return self.raw_blocks()
        return streams.gunzip(self.raw_blocks(), self.where, limit=limit or self.bound)

    def check_stored(self) -> None:
        """Read the stored bytes once: each part against its manifest line, and a compressed file's gzip
        stream inflated (bounded, output dropped)."""
        inflater = self.inflater() if self.compressed else None
        for block in self.raw_blocks():
            if inflater is not None:
                inflater.write(block)
        if inflater is not None:
            inflater.finish()

    def inline_digest(self) -> InlineDigest | None:
        """The manifest check of this file for a reader that reads its stored bytes in place, front to
        back, once (:func:`vmferry.disks.convert.reads_once`): None when there is nothing to check or the
        bytes are not one plain range (compressed, chunked: :meth:`verified_in_place`)."""
        if self.in_place is None:
            return None
        digest = self.package.digest_of(self.parts[0].name)
        if digest is None:
            return None
        return InlineDigest(self.package.where(self.parts[0].name), self.parts[0].size, digest[0], digest[1])

    def _hash_parts(self, stop: threading.Event) -> None:
        pkg = self.package
        inflater = self.inflater() if self.compressed else None
        for part in self.parts:
            digest = pkg.digest_of(part.name)
            where = pkg.where(part.name)
            algo = digest[0] if digest else "sha256"
            if pkg.container == "ova":
                got = streams.hash_range(pkg.fd, part.offset, part.size, algo, where, stop=stop, sink=inflater)
            else:
                fd = pkg.root.open(part.name)
                try:
                    if os.fstat(fd).st_size != part.size:
                        raise SizeMismatch("changed size while being read", path=where)
                    got = streams.hash_range(fd, 0, part.size, algo, where, stop=stop, sink=inflater)
                finally:
                    os.close(fd)
            if stop.is_set():
                return
            if digest is not None and got != digest[1]:
                raise streams.mismatch(where, digest[0], got, digest[1])
        if inflater is not None:
            inflater.finish()

    @contextlib.contextmanager
    def verified_in_place(self) -> Iterator[Callable[[], None]]:
        """Check the stored bytes on a thread while the block runs (their digests; a compressed file's
        gzip stream too). Yields ``check``: it waits for the thread and raises what it found — call it
        before the output is renamed into place (e.g. as ``finish`` of
        :func:`vmferry.disks.convert.convert_disk`); the block's end calls it too. When the block fails
        and the bytes are damaged, that damage is raised instead."""
        if not self.compressed and all(self.package.digest_of(p.name) is None for p in self.parts):
            yield lambda: None
            return
        stop = threading.Event()
        outcome: dict[str, BaseException] = {}

        def work() -> None:
            try:
                self._hash_parts(stop)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                outcome["error"] = exc

        thread = threading.Thread(target=work, name="package-digest", daemon=True)
        thread.start()

        def check() -> None:
            thread.join()
            if "error" in outcome:
                raise outcome["error"]

        try:
            yield check
        except KeyboardInterrupt:
            stop.set()
            thread.join()
            raise
        except Exception as exc:
            # the reader failed (qemu-img on a damaged grain, say): a digest mismatch, when there is
            # one, is the cause to report
            thread.join()
            if isinstance(outcome.get("error"), PackageError):
                raise outcome["error"] from exc
            raise
        check()


class InlineDigest:
    """A manifest line checked on bytes another reader reads: :meth:`update` with every stored byte, in
    order, once; :meth:`finish` raises when they are not all there or not what the manifest says. The
    hashing runs on a thread of its own (hashlib releases the GIL), a few blocks behind the reader."""

    PENDING = 4

    def __init__(self, where: str, size: int, algo: str, want: str) -> None:
        import queue

        self.where, self.size, self.algo, self.want = where, size, algo, want
        self.h = hashlib.new(algo)
        self.seen = 0
        self.todo: queue.Queue = queue.Queue(self.PENDING)
        self.thread: threading.Thread | None = None

    def _work(self) -> None:
        while (data := self.todo.get()) is not None:
            self.h.update(data)

    def update(self, data) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._work, name="inline-digest", daemon=True)
            self.thread.start()
        self.seen += len(data)
        self.todo.put(data)

    def close(self) -> None:
        """Stop the hashing thread (idempotent); :meth:`finish` calls it."""
        if self.thread is not None:
            self.todo.put(None)
            self.thread.join()
            self.thread = None

    def finish(self) -> None:
        self.close()
        if self.seen != self.size:
            raise SizeMismatch(f"{self.seen} of its {self.size} bytes were read", path=self.where)
        got = self.h.hexdigest()
        if got != self.want:
            raise streams.mismatch(self.where, self.algo, got, self.want)
