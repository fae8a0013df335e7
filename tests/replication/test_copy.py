"""The resumable extent copy (replication/copy.py) and the NBD adapter (tools/nbd.py) on real qcow2 images
served by qemu-nbd: content equality by qemu-img compare, resume bounds, heartbeats, zero ranges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmferry.errors import ReplicationError, ToolError
from vmferry.replication import copy
from vmferry.replication.model import ChangeSource, Extent
from vmferry.tools import nbd
from vmferry.tools.proc import run

MIB = 1 << 20


class ImageSource:
    """A change source over a qcow2 image: its extents that do not read as zeros (base:allocation)."""

    def __init__(self, image: Path) -> None:
        self.export = nbd.serve_image(image, "qcow2", readonly=True, contexts=[nbd.BASE_ALLOCATION])
        self.reads: list[Extent] = []

    def extents(self) -> list[Extent]:
        return [Extent(s.offset, s.length) for s in self.export.spans(nbd.BASE_ALLOCATION)
                if not s.flags & nbd.STATE_ZERO]

    def read(self, offset: int, length: int) -> bytes:
        self.reads.append(Extent(offset, length))
        return self.export.pread(offset, length)

    def close(self) -> None:
        self.export.close()


def qemu_io(image: Path, *commands: str) -> None:
    argv = ["qemu-io", "-f", "qcow2"]
    for c in commands:
        argv += ["-c", c]
    run([*argv, image])


def make_source(tmp_path: Path) -> Path:
    src = tmp_path / "src.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", src, str(64 * MIB)])
    # data in several runs, one longer than two chunks, plus an explicit zero range
    qemu_io(src, "write -P 0x11 0 1M", "write -P 0x22 5M 9M", "write -P 0x33 40M 192k", "write -z 50M 1M",
            "write -P 0x44 63M 1M")
    return src


def compare(a: Path, b: Path) -> int:
    return run(["qemu-img", "compare", "-q", "-f", "qcow2", "-F", "qcow2", a, b], check=False).returncode


def test_chunks_are_sorted_merged_and_bounded():
    got = copy.chunks([Extent(100, 50), Extent(0, 10), Extent(10, 5), Extent(120, 100), Extent(500, 0)], 64)
    assert got == [Extent(0, 15), Extent(100, 64), Extent(164, 56)]
    assert copy.start_index(got, 0) == (0, 0)
    assert copy.start_index(got, 15) == (1, 15)        # on a boundary: nothing redone
    assert copy.start_index(got, 50) == (1, 15)        # inside a chunk: that chunk again
    assert copy.start_index(got, 10**9) == (3, 135)    # past the end: nothing left
    with pytest.raises(ReplicationError):
        copy.chunks([Extent(0, 1)], 0)


def test_image_source_is_a_change_source(tmp_path):
    src = ImageSource(make_source(tmp_path))
    try:
        assert isinstance(src, ChangeSource)
        assert src.extents() == [Extent(0, MIB), Extent(5 * MIB, 9 * MIB), Extent(40 * MIB, 192 << 10),
                                 Extent(63 * MIB, MIB)]
    finally:
        src.close()


def test_copy_into_overlay_matches_source_and_moves_only_extents(tmp_path):
    image = make_source(tmp_path)
    base = tmp_path / "base.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", base, str(64 * MIB)])
    qemu_io(base, "write -P 0x77 20M 2M")   # old data the change set does not touch stays visible
    qemu_io(image, "write -P 0x77 20M 2M")
    overlay = tmp_path / "point.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, overlay])
    src = ImageSource(image)
    beats: list[int] = []
    try:
        wanted = [e for e in src.extents() if e.offset != 20 * MIB]
        result = copy.copy_into_image(src, overlay, extents=wanted, chunk=4 * MIB, heartbeat=beats.append,
                                      heartbeat_every=0)
    finally:
        src.close()
    changed = sum(e.length for e in wanted)
    assert result.total == result.bytes_read == result.bytes_written == changed
    assert result.extents == 4 and result.zero_bytes == 0
    assert beats == sorted(beats) and beats[-1] == changed and len(beats) >= 4
    assert compare(image, overlay) == 0
    # the base was only read
    assert run(["qemu-img", "map", "--output=json", "-f", "qcow2", base]).stdout.count('"data": true') >= 1
    assert compare(base, overlay) == 1


def test_resume_copies_at_most_the_remainder_plus_one_chunk(tmp_path):
    image = make_source(tmp_path)
    chunk = 2 * MIB

    def fresh(name: str) -> Path:
        path = tmp_path / name
        run(["qemu-img", "create", "-q", "-f", "qcow2", path, str(64 * MIB)])
        return path

    # an attempt that dies after some heartbeats: the heartbeat raises, as a killed worker stops
    first = fresh("attempt.qcow2")
    beats: list[int] = []

    class Killed(Exception):
        pass

    def beat(done: int) -> None:
        beats.append(done)
        if len(beats) == 3:
            raise Killed

    src = ImageSource(image)
    with pytest.raises(Killed):
        copy.copy_into_image(src, first, chunk=chunk, heartbeat=beat, heartbeat_every=0)
    src.close()
    total = sum(e.length for e in copy.merge(ImageSource(image).extents()))
    last = beats[-1]
    assert 0 < last < total
    for resume_at in (last, last + 12345):   # on a chunk boundary, and in the middle of a chunk
        target = tmp_path / f"resumed-{resume_at}.qcow2"
        run(["qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", first, target])
        src = ImageSource(image)
        try:
            result = copy.copy_into_image(src, target, chunk=chunk, resume_at=resume_at)
        finally:
            src.close()
        assert result.bytes_read == sum(r.length for r in src.reads)
        assert result.bytes_read <= (total - resume_at) + chunk
        assert result.resumed_at <= resume_at < result.resumed_at + chunk
        assert result.bytes_written == total - result.resumed_at
        assert compare(image, target) == 0


def test_zero_chunks_become_zero_ranges(tmp_path):
    image = tmp_path / "z.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", image, str(8 * MIB)])
    qemu_io(image, "write -P 0 0 4M", "write -P 0x5a 4M 64k")   # explicit zero data, then real data
    target = tmp_path / "t.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", target, str(8 * MIB)])
    qemu_io(target, "write -P 0x99 0 4M")   # stale data there must become zeros
    src = ImageSource(image)
    try:
        result = copy.copy_into_image(src, target, extents=[Extent(0, 4 * MIB + 65536)], chunk=MIB)
    finally:
        src.close()
    assert result.zero_bytes == 4 * MIB and result.bytes_written == 4 * MIB + 65536
    assert compare(image, target) == 0
    first = json.loads(run(["qemu-img", "map", "--output=json", "-f", "qcow2", target]).stdout)[0]
    assert (first["start"], first["length"], first["zero"], first["data"]) == (0, 4 * MIB, True, False)


def test_nbd_errors_name_the_export(tmp_path):
    with pytest.raises(ToolError, match="connect failed"):
        nbd.open_unix(tmp_path / "no.sock", "vda")
    image = make_source(tmp_path)
    with nbd.serve_image(image, "qcow2", readonly=True) as export:
        with pytest.raises(ToolError, match="does not offer metadata context"):
            list(export.spans(nbd.dirty_bitmap_context("backup-vda")))
        with pytest.raises(ToolError, match="src.qcow2"):
            export.pwrite(0, b"x")
    with nbd.serve_image(image, "qcow2", readonly=True) as export:
        assert export.pread(5 * MIB, 4) == b"\x22" * 4   # the refused write changed nothing


def test_copy_into_a_chain_named_by_vmferry_not_by_the_header(tmp_path):
    """With an ImageSpec the backing chain is the one vmferry names: a header pointing elsewhere is not
    followed (here the header names a file that does not exist)."""
    from vmferry.tools.qemu_img import ImageSpec

    image = make_source(tmp_path)
    base = tmp_path / "base.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", base, str(64 * MIB)])
    qemu_io(base, "write -P 0x66 30M 1M")
    qemu_io(image, "write -P 0x66 30M 1M")
    top = tmp_path / "top.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", tmp_path / "elsewhere.qcow2", "-u", top,
         str(64 * MIB)])
    spec = ImageSpec(str(top), "qcow2", backing=ImageSpec(str(base), "qcow2"))
    src = ImageSource(image)
    try:
        wanted = [e for e in src.extents() if e.offset != 30 * MIB]
        result = copy.copy_into_image(src, spec, extents=wanted, chunk=MIB)
    finally:
        src.close()
    assert result.bytes_written == sum(e.length for e in wanted)
    with nbd.serve_image(spec, readonly=True) as chain, nbd.serve_image(image, "qcow2", readonly=True) as want:
        for offset in range(0, 64 * MIB, 4 * MIB):
            assert chain.pread(offset, 4 * MIB) == want.pread(offset, 4 * MIB), offset
    with pytest.raises(ToolError, match="no image format given"):
        nbd.serve_image(top)


def test_a_failing_source_stops_the_copy_without_hanging(tmp_path):
    image = make_source(tmp_path)
    target = tmp_path / "t.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", target, str(64 * MIB)])

    class Failing(ImageSource):
        def read(self, offset: int, length: int) -> bytes:
            if len(self.reads) >= 5:
                raise ToolError("NBD test: read failed")
            return super().read(offset, length)

    class Short(ImageSource):
        def read(self, offset: int, length: int) -> bytes:
            return super().read(offset, length)[:-1]

    beats: list[int] = []
    for cls, error, match in ((Failing, ToolError, "read failed"), (Short, ReplicationError, "short read")):
        src = cls(image)
        try:
            with pytest.raises(error, match=match):
                copy.copy_into_image(src, target, chunk=MIB, heartbeat=beats.append, heartbeat_every=0)
        finally:
            src.close()
    assert max(beats, default=0) < 11 * MIB + (192 << 10)   # no heartbeat claimed the whole change set


def test_bandwidth_limit_paces_the_copy_and_heartbeats_while_it_waits(tmp_path):
    src_image = make_source(tmp_path)          # 11 MiB + 192 KiB of data
    target = tmp_path / "dst.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", target, str(64 * MIB)])
    src = ImageSource(src_image)
    beats: list[tuple[float, int]] = []
    try:
        import time

        start = time.monotonic()
        res = copy.copy_into_image(src, target, heartbeat=lambda n: beats.append((time.monotonic() - start, n)),
                                   heartbeat_every=0.25, max_rate=4 * MIB)
        seconds = time.monotonic() - start
    finally:
        src.close()
    assert compare(src_image, target) == 0 and res.bytes_read == res.total
    last_piece = MIB                            # the copy may start its last piece once the rest is paid for
    assert seconds >= (res.total - last_piece) / (4 * MIB) - 0.05
    assert len(beats) >= 8 and [n for _, n in beats] == sorted(n for _, n in beats) and beats[-1][1] == res.total
    # no gap between heartbeats much above heartbeat_every although a 4 MiB piece waits a second
    assert max(b[0] - a[0] for a, b in zip(beats, beats[1:], strict=False)) < 1.0
    with pytest.raises(ReplicationError, match="bandwidth limit"):
        copy.copy_extents(src, None, extents=[], max_rate=1000)
