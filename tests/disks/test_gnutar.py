"""vmferry.disks.gnutar against GNU tar itself: the archive is listed and extracted by ``tar`` (sparse
kept), byte for byte equal to the file it was written from, for the shapes that exercise the format:
a file that is all hole, data at both ends, more regions than the header holds (extension blocks), and
sizes beyond 8 GiB (GNU's base-256 numbers)."""

from __future__ import annotations

import gzip
import os
import zlib

import pytest

from vmferry.disks.gnutar import data_extents, sparse_map, write_sparse_member
from vmferry.tools.proc import run


def _file(path, size: int, writes: list[int]):
    with open(path, "wb") as fh:
        fh.truncate(size)
        for i, off in enumerate(writes):
            fh.seek(off)
            fh.write(bytes([i + 1]) * 5000)
    return path


def _archive(src, out, *, gz: bool):
    fd = os.open(src, os.O_RDONLY)
    size = os.fstat(fd).st_size
    comp = zlib.compressobj(6, zlib.DEFLATED, 31) if gz else None
    with open(out, "wb") as sink:
        n = write_sparse_member("disk.raw", size, data_extents(fd, size), lambda o, k: os.pread(fd, k, o),
                                lambda b: sink.write(comp.compress(b) if comp else b))
        if comp:
            sink.write(comp.flush())
    os.close(fd)
    return n


SHAPES = {
    "all-hole": (64 << 20, []),
    "both-ends": (64 << 20, [0, (64 << 20) - 5000]),
    "extension-blocks": (64 << 20, [i * (2 << 20) for i in range(30)]),
    "beyond-8-gib": (9 << 30, [0, 8 << 30, (9 << 30) - 8192]),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_gnu_tar_lists_and_extracts_what_was_written(tmp_path, shape):
    size, writes = SHAPES[shape]
    src = _file(tmp_path / "src.raw", size, writes)
    total = _archive(src, tmp_path / "a.tar.gz", gz=True)
    assert total % 10240 == 0                                    # whole records, as GNU tar writes them
    listing = run(["tar", "--list", "--verbose", "--gzip", "--file", str(tmp_path / "a.tar.gz")]).stdout.split()
    assert listing[2] == str(size) and listing[-1] == "disk.raw"
    with gzip.open(tmp_path / "a.tar.gz") as fh:
        head = fh.read(512)
    assert head[156:157] == b"S" and head[257:265] == b"ustar  \0"
    assert head[482] == (1 if len(sparse_map(size, [(w, 5000) for w in writes])) > 4 else 0)   # isextended
    (tmp_path / "x").mkdir()
    run(["tar", "--extract", "--sparse", "--gzip", "--file", str(tmp_path / "a.tar.gz"), "-C", str(tmp_path / "x")])
    out = tmp_path / "x" / "disk.raw"
    assert out.stat().st_size == size
    run(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(src), str(out)])   # holes read by block status
    assert out.stat().st_blocks * 512 <= len(writes) * 16384 + (1 << 20)   # holes stayed holes


def test_sparse_map_merges_and_ends_with_the_size():
    assert sparse_map(100, [(10, 5), (15, 5), (50, 10)]) == [(10, 10), (50, 10), (100, 0)]
    assert sparse_map(60, [(50, 10)]) == [(50, 10)]          # ends in data: no terminal entry
    assert sparse_map(60, []) == [(60, 0)]
    with pytest.raises(ValueError):
        sparse_map(60, [(55, 10)])
