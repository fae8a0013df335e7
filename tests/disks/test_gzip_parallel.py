"""The parallel gzip writer against gzip(1), GNU tar and zlib: one valid member, the input back exactly."""

from __future__ import annotations

import gzip
import io
import os
import random
import subprocess
import zlib

import pytest

from vmferry.disks.gnutar import write_sparse_member
from vmferry.disks.gzip_parallel import CHUNK, WINDOW, ParallelGzip

SMALL = 64 << 10   # chunks of 64 KiB so that the tests cross many chunk boundaries quickly


def text_like(n: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))) for _ in range(500)]
    out = bytearray()
    while len(out) < n:
        out += rnd.choice(words) + b" "
    return bytes(out[:n])


def write_gzip(path, pieces, **kw) -> int:
    with open(path, "wb") as f, ParallelGzip(f.write, **kw) as gz:
        for p in pieces:
            gz.write(p)
    return gz.written


@pytest.mark.parametrize("size", [0, 1, WINDOW - 1, SMALL - 1, SMALL, SMALL + 1, 7 * SMALL + 12345])
def test_gzip_reads_back_exactly_at_every_boundary(tmp_path, size):
    data = (text_like(size // 2, size) + os.urandom(size - size // 2))
    path = tmp_path / "x.gz"
    # written in odd-sized pieces, so that chunks are cut inside writes
    pieces = [data[i:i + 40_000] for i in range(0, len(data), 40_000)] or [b""]
    written = write_gzip(path, pieces, chunk=SMALL, workers=3)
    assert written == path.stat().st_size
    subprocess.run(["gzip", "-t", str(path)], check=True)
    out = subprocess.run(["gzip", "-dc", str(path)], check=True, capture_output=True).stdout
    assert out == data
    # one member: Python's reader of a single member (wbits 31) ends exactly at the file's end
    d = zlib.decompressobj(31)
    assert d.decompress(path.read_bytes()) == data and d.eof and d.unused_data == b""
    # gzip -l reads the trailer: the length it reports is ours
    listing = subprocess.run(["gzip", "-l", str(path)], check=True, capture_output=True, text=True).stdout
    assert int(listing.splitlines()[1].split()[1]) == size


def test_ratio_stays_close_to_one_deflate_of_the_whole(tmp_path):
    """Each chunk is primed with the 32 KiB before it: the size stays within 1 % of zlib's own stream."""
    data = text_like(40 * SMALL, 7)
    path = tmp_path / "t.gz"
    write_gzip(path, [data], chunk=SMALL, level=6)
    serial = len(gzip.compress(data, 6, mtime=0))
    assert path.stat().st_size <= serial * 1.01
    # and without the priming it would be visibly worse: the check above can fail
    unprimed = sum(len(zlib.compress(data[i:i + SMALL], 6)) for i in range(0, len(data), SMALL))
    assert unprimed > serial * 1.01


def test_incompressible_chunks_are_stored_not_deflated(tmp_path):
    noise = os.urandom(8 * SMALL)
    path = tmp_path / "r.gz"
    write_gzip(path, [noise], chunk=SMALL, level=9)
    # stored blocks: 5 bytes per 64 KiB block plus the sync flush of each chunk; a level-9 deflate of
    # random data is larger than that
    assert path.stat().st_size <= len(noise) + 8 * 16 + 32
    assert gzip.decompress(path.read_bytes()) == noise


def test_header_and_trailer_fields(tmp_path):
    data = b"vmferry " * 1000
    path = tmp_path / "h.gz"
    write_gzip(path, [data], level=1, mtime=1_700_000_000)
    raw = path.read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x00"
    assert int.from_bytes(raw[4:8], "little") == 1_700_000_000
    assert raw[8] == 4 and raw[9] == 3   # fastest, Unix
    assert int.from_bytes(raw[-8:-4], "little") == zlib.crc32(data)
    assert int.from_bytes(raw[-4:], "little") == len(data)
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as g:
        assert g.read() == data and g.mtime == 1_700_000_000


def test_an_exception_inside_writes_no_trailer(tmp_path):
    path = tmp_path / "a.gz"
    with pytest.raises(RuntimeError), open(path, "wb") as f, ParallelGzip(f.write, chunk=SMALL) as gz:
        gz.write(os.urandom(3 * SMALL))
        raise RuntimeError("interrupted")
    assert subprocess.run(["gzip", "-t", str(path)], capture_output=True).returncode != 0
    with pytest.raises(ValueError):
        gz.write(b"more")


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        ParallelGzip(lambda b: None, level=10)
    with pytest.raises(ValueError):
        ParallelGzip(lambda b: None, chunk=WINDOW - 1)


def test_sparse_gnu_tar_through_it_lists_and_extracts_with_gnu_tar(tmp_path):
    """The Compute Engine archive path: a sparse oldgnu member through the parallel gzip, read by GNU tar."""
    size = 3 * CHUNK + 4096
    disk = bytearray(size)
    disk[0:512] = os.urandom(512)
    disk[CHUNK + 100:CHUNK + 100 + 70_000] = text_like(70_000, 3)
    disk[size - 4096:] = os.urandom(4096)
    extents = [(0, 4096), (CHUNK, 128 << 10), (size - 4096, 4096)]
    path = tmp_path / "disk.tar.gz"
    with open(path, "wb") as f, ParallelGzip(f.write, chunk=SMALL, workers=2) as gz:
        write_sparse_member("disk.raw", size, extents, lambda off, n: bytes(disk[off:off + n]), gz.write)
    listing = subprocess.run(["tar", "-tvzf", str(path)], check=True, capture_output=True, text=True).stdout
    assert "disk.raw" in listing and str(size) in listing
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "-xzSf", str(path), "-C", str(out)], check=True)
    assert (out / "disk.raw").read_bytes() == bytes(disk)
    # the member is sparse: GNU tar recreates the holes
    assert os.stat(out / "disk.raw").st_blocks * 512 < size
