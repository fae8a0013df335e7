"""vmferry's own streamOptimized VMDK writer: qemu-img check, compare, structure per the spec."""

from __future__ import annotations

import os
import struct

import pytest

from tests.disks.conftest import make_raw, same
from vmferry.disks import convert_disk, open_disk
from vmferry.disks.formats import VMDK_HEADER
from vmferry.disks.vmdk_stream import GRAIN, write_stream_vmdk
from vmferry.tools import qemu_img
from vmferry.tools.qemu_img import ImageSpec

MiB = 1 << 20
CASES = {
    "empty": (4 * MiB, []),
    "full": (3 * MiB, [(0, 3 * MiB)]),
    "sparse": (40 * MiB, [(5 * MiB, 100_000), (33 * MiB + 512, 70_000)]),
    "odd": (7 * MiB + 3 * 512, [(0, 10_000), (7 * MiB - 20_000, 20_000 + 3 * 512)]),
    "one-sector": (512, [(0, 512)]),
    # more than one grain table (512 grains = 32 MiB) with an empty table in between
    "gap-tables": (100 * MiB + 512, [(1 * MiB, 4096), (90 * MiB, 65536 * 2)]),
}


def _write(tmp_path, case):
    size, regions = CASES[case]
    raw = make_raw(tmp_path / f"{case}.raw", size, regions, seed=len(case))
    out = os.fspath(tmp_path / f"{case}.vmdk")
    result = convert_disk(open_disk(raw), out, "vmdk-stream")
    return raw, out, result


@pytest.mark.parametrize("case", list(CASES))
def test_output_checks_and_compares_identical(tmp_path, case):
    raw, out, result = _write(tmp_path, case)
    report = qemu_img.check(ImageSpec(out, "vmdk"))
    assert report["check-errors"] == 0 and report["_exit"] == 0, report
    assert same(raw, "raw", out, "vmdk")
    info = qemu_img.info(ImageSpec(out, "vmdk"))
    assert info.subformat == "streamOptimized"
    assert info.virtual_size == CASES[case][0]
    size, regions = CASES[case]
    grains = {o // GRAIN for off, ln in regions for o in range(off, off + ln, 512)}
    assert result.populated == sum(min(GRAIN, size - g * GRAIN) for g in grains)


@pytest.mark.parametrize("case", ["sparse", "odd"])
def test_structure_follows_the_spec(tmp_path, case):
    _, out, _ = _write(tmp_path, case)
    data = open(out, "rb").read()
    head = VMDK_HEADER.unpack_from(data)
    assert head[0] == b"KDMV" and head[1] == 3, "must declare sparse extent version 3"
    assert head[2] & (1 << 16) and head[2] & (1 << 17), "compressed grains with markers"
    assert head[9] == 0xFFFFFFFFFFFFFFFF, "header at the start defers the directory to the footer"
    assert head[13] == 1, "deflate"
    assert b'createType="streamOptimized"' in data[512:512 * 21]
    assert len(data) % 512 == 0
    eos, footer, footer_marker = data[-512:], data[-1024:-512], data[-1536:-1024]
    assert eos == bytes(512)
    assert struct.unpack_from("<QII", footer_marker) == (1, 0, 3)
    fhead = VMDK_HEADER.unpack_from(footer)
    assert fhead[1] == 3 and fhead[3] == head[3]
    gd_sector = fhead[9]
    gd_marker = data[(gd_sector - 1) * 512:gd_sector * 512]
    assert struct.unpack_from("<QII", gd_marker)[1:] == (0, 2)


def test_empty_disk_stores_no_grain(tmp_path):
    _, out, result = _write(tmp_path, "empty")
    assert result.populated == 0
    assert os.path.getsize(out) < 128 * 1024


def test_zero_grains_inside_data_are_skipped_without_the_map(tmp_path):
    """Read everything (no allocation map): all-zero grains must still be left out."""
    size = 2 * MiB
    payload = bytearray(size)
    payload[GRAIN * 3:GRAIN * 3 + 10] = b"x" * 10
    chunks = []
    result = write_stream_vmdk(lambda off, n: bytes(payload[off:off + n]), size, chunks.append, workers=3)
    out = tmp_path / "w.vmdk"
    out.write_bytes(b"".join(chunks))
    assert result.populated == GRAIN
    raw = tmp_path / "w.raw"
    raw.write_bytes(payload)
    assert same(os.fspath(raw), "raw", os.fspath(out), "vmdk")


def test_source_in_qcow2_is_read_directly(tmp_path):
    raw = make_raw(tmp_path / "q.raw", 9 * MiB, [(MiB, 2 * MiB)], seed=3)
    q = os.fspath(tmp_path / "q.qcow2")
    convert_disk(open_disk(raw), q, "qcow2")
    out = os.fspath(tmp_path / "q.vmdk")
    convert_disk(open_disk(q), out, "vmdk-stream")
    assert open(out, "rb").read(4) == b"KDMV"
    assert VMDK_HEADER.unpack_from(open(out, "rb").read(512))[9] == 0xFFFFFFFFFFFFFFFF  # our writer
    assert same(raw, "raw", out, "vmdk")


@pytest.mark.parametrize("deflate", ["zlib", "best"])
def test_compressible_grains_are_deflated_random_ones_stored(tmp_path, deflate):
    import zlib

    size = 4 * MiB
    text = (b"vmferry moves virtual machines between hypervisors. " * 40000)[:2 * MiB]
    payload = text + os.urandom(2 * MiB)
    chunks = []
    write_stream_vmdk(lambda off, n: payload[off:off + n], size, chunks.append,
                      deflate=zlib.compress if deflate == "zlib" else None)
    vmdk = b"".join(chunks)
    assert len(vmdk) < 2 * MiB + 2 * MiB // 10 + 64 * 1024, "text must shrink, random may not grow much"
    assert len(vmdk) > 2 * MiB
    (tmp_path / "m.vmdk").write_bytes(vmdk)
    (tmp_path / "m.raw").write_bytes(payload)
    assert same(os.fspath(tmp_path / "m.raw"), "raw", os.fspath(tmp_path / "m.vmdk"), "vmdk")


def test_random_layouts_round_trip(tmp_path):
    """Property check over generated layouts: sizes from one sector to ~3 grain tables, data at
    random places (across grain and table boundaries), checked by qemu-img itself."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    layouts = st.integers(1, 3 * 512 * 128 + 5).flatmap(lambda sectors: st.tuples(
        st.just(sectors * 512),
        st.lists(st.tuples(st.integers(0, sectors * 512 - 1), st.integers(1, 200_000)), max_size=6)))

    @settings(max_examples=12, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(layouts)
    def check(layout):
        size, regions = layout
        regions = [(off, min(length, size - off)) for off, length in regions]
        raw = make_raw(tmp_path / "h.raw", size, regions, seed=size)
        out = tmp_path / "h.vmdk"
        if out.exists():
            out.unlink()
        result = convert_disk(open_disk(raw), out, "vmdk-stream")
        assert result.virtual_size == size
        assert qemu_img.check(ImageSpec(os.fspath(out), "vmdk"))["check-errors"] == 0
        assert same(raw, "raw", os.fspath(out), "vmdk")
        os.unlink(raw)

    check()


def test_isal_is_used_when_installed_and_levels_above_3_use_zlib():
    import zlib

    from vmferry.disks.deflate import best_deflate

    try:
        from isal import isal_zlib
    except ImportError:
        assert best_deflate(1) is zlib.compress
    else:
        assert best_deflate(1) is isal_zlib.compress
    assert best_deflate(6) is zlib.compress and best_deflate(0) is zlib.compress
