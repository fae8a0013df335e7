"""One grain inflated (:mod:`vmferry.disks.inflate`): stored-only streams taken apart without an inflater,
others inflated; both give what the system zlib gives, and refuse what it refuses (damaged lengths,
wrong Adler-32, more than a grain), with ISA-L and with the system zlib alone."""

from __future__ import annotations

import os
import zlib

import pytest

from vmferry.disks import inflate
from vmferry.errors import DiskError

GRAIN = 65536


@pytest.fixture(params=["default", "zlib"])
def lib(request, monkeypatch):
    if request.param == "zlib":
        monkeypatch.setattr(inflate, "_lib", zlib)
    return request.param


def stored(data: bytes) -> bytes:
    return zlib.compress(data, 0)      # stored blocks of at most 65535 bytes: two for a grain


@pytest.mark.usefixtures("lib")
@pytest.mark.parametrize("data", [os.urandom(GRAIN), os.urandom(GRAIN - 512), b"\0" * GRAIN, b"x"])
@pytest.mark.parametrize("level", [0, 1, 6])
def test_same_bytes_as_zlib(data, level):
    packed = zlib.compress(data, level)
    assert inflate.inflate_grain(GRAIN, packed, GRAIN, 10 * GRAIN) == (GRAIN, zlib.decompress(packed))
    assert inflate.inflate_grain(GRAIN, memoryview(packed), GRAIN, 10 * GRAIN)[1] == data


def test_a_stored_stream_is_not_given_to_an_inflater(monkeypatch):
    class NoInflater:
        adler32 = staticmethod(zlib.adler32)

        @staticmethod
        def decompressobj():
            raise AssertionError("inflater used for a stored stream")

    monkeypatch.setattr(inflate, "_lib", NoInflater)
    data = os.urandom(GRAIN)
    assert inflate.inflate_grain(0, stored(data), GRAIN, GRAIN)[1] == data


def test_the_last_grain_is_cut_at_the_capacity():
    data = os.urandom(GRAIN)
    assert inflate.inflate_grain(3 * GRAIN, stored(data), GRAIN, 3 * GRAIN + 1000)[1] == data[:1000]


@pytest.mark.usefixtures("lib")
@pytest.mark.parametrize(("where", "what"), [
    (lambda p: p.__setitem__(3, p[3] ^ 1), "corrupt"),           # LEN no longer NLEN's complement
    (lambda p: p.__setitem__(len(p) - 1, p[-1] ^ 1), "corrupt"),  # the Adler-32
    (lambda p: p.__setitem__(100, p[100] ^ 1), "corrupt"),       # a data byte (Adler-32 no longer matches)
])
def test_damaged_stored_streams_are_refused(where, what):
    packed = bytearray(stored(os.urandom(GRAIN)))
    where(packed)
    with pytest.raises(DiskError, match=what):
        inflate.inflate_grain(0, bytes(packed), GRAIN, GRAIN)
    with pytest.raises(zlib.error):     # the system zlib refuses the same streams
        zlib.decompress(bytes(packed))


@pytest.mark.usefixtures("lib")
@pytest.mark.parametrize("level", [0, 1])
def test_more_than_a_grain_is_refused(level):
    with pytest.raises(DiskError, match="more than a grain"):
        inflate.inflate_grain(0, zlib.compress(os.urandom(GRAIN + 1), level), GRAIN, 4 * GRAIN)


@pytest.mark.usefixtures("lib")
@pytest.mark.parametrize("cut", [3, 9, 5000, 65548])
def test_a_stored_stream_cut_short_is_refused(cut):
    packed = stored(os.urandom(GRAIN))
    with pytest.raises(DiskError, match="corrupt"):
        inflate.inflate_grain(0, packed[:cut], GRAIN, GRAIN)


@pytest.mark.usefixtures("lib")
def test_a_deflated_stream_cut_short_is_refused():
    packed = zlib.compress(os.urandom(GRAIN // 2) * 2, 1)
    with pytest.raises(DiskError, match="corrupt"):
        inflate.inflate_grain(0, packed[:len(packed) // 2], GRAIN, GRAIN)


@pytest.mark.usefixtures("lib")
def test_a_stored_grain_as_views_of_the_stream():
    """views=True: the data as views of the packed bytes (nothing copied), cut at the capacity like bytes."""
    data = os.urandom(GRAIN)
    packed = bytearray(stored(data))
    _at, got = inflate.inflate_grain(0, packed, GRAIN, GRAIN, views=True)
    assert isinstance(got, inflate.Pieces) and inflate.nbytes(got) == GRAIN and b"".join(got) == data
    packed[10] ^= 0xFF                      # the views are of the stream itself
    assert b"".join(got) != data
    for n in (1000, 65535, 65535 + 1):      # inside the first stored block, at its end, the whole grain
        _at, cut = inflate.inflate_grain(GRAIN, stored(data), GRAIN, GRAIN + n, views=True)
        assert b"".join(cut) == data[:n] and inflate.nbytes(cut) == n
    _at, deflated = inflate.inflate_grain(0, zlib.compress(data[:100] * 600, 1), GRAIN, GRAIN, views=True)
    assert isinstance(deflated, bytes)      # an inflated grain is new bytes


def test_zero_runs_of_stored_grains_are_not_written():
    """data_runs on Pieces: a 128 KiB stored grain (two runs) whose second run is zeros gives only the first;
    a grain of zeros gives nothing; bytes and Pieces of the same data give the same runs."""
    from vmferry.disks.vhd_write import data_runs

    data = os.urandom(GRAIN) + bytes(GRAIN)
    _at, pieces = inflate.inflate_grain(0, stored(data), 2 * GRAIN, 4 * GRAIN, views=True)
    runs = data_runs(1 << 20, pieces)
    assert b"".join(v for _o, v in runs) == data[:GRAIN]
    assert [o for o, _v in runs][0] == 1 << 20 and sum(len(v) for _o, v in runs) == GRAIN
    assert [(o, bytes(v)) for o, v in data_runs(1 << 20, data)] == [(1 << 20, data[:GRAIN])]
    _at, zeros = inflate.inflate_grain(0, stored(bytes(GRAIN)), GRAIN, GRAIN, views=True)
    assert data_runs(0, zeros) == [] and data_runs(0, bytes(GRAIN)) == []
    tail = bytes(GRAIN - 1) + b"\1"                 # zeros but the last byte: data
    assert len(data_runs(0, tail)) == 1
