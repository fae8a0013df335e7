"""Dynamic VHD written by vmferry's own parallel writer (:mod:`vmferry.disks.vhd_dynamic`) from a
streamOptimized VMDK inside an OVA, checked by means that are not vmferry's: the footer, its copy, the
dynamic disk header and the block allocation table parsed here from the bytes with the offsets of
Microsoft's VHD specification (its CHS calculation and checksums written out again in the tests),
``qemu-img info/compare/map`` reading the image with its vpc driver as it is (no option), the holes of the
file; and the manifest, atomic output and bad input of the conversion."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import tarfile

import pytest

from tests.disks.conftest import ODD_REGIONS, ODD_SIZE, leftovers
from tests.disks.test_read_once import qemu, read_once_only, stream_ova  # noqa: F401 - fixture
from tests.disks.test_vhd_fixed import read_footer, spec_geometry
from vmferry.disks.ova_read import import_disk
from vmferry.disks.vhd_dynamic import DynamicVhdWriter
from vmferry.errors import DiskError

MIB = 1 << 20
BLOCK = 2 * MIB


def checksum_ok(raw: bytes, at: int) -> bool:
    stored = int.from_bytes(raw[at:at + 4], "big")
    return stored == (~(sum(raw) - sum(raw[at:at + 4])) & 0xFFFFFFFF)


def read_dynamic_vhd(path) -> dict:
    """Footer, footer copy, dynamic header and BAT, by the specification's offsets."""
    with open(path, "rb") as f:
        data_start = f.read(1536)
        foot = read_footer(path)
        copy, head = data_start[:512], data_start[512:1536]
        f.seek(-512, os.SEEK_END)
        last = f.read(512)
        table_offset, = struct.unpack(">Q", head[16:24])
        entries, block = struct.unpack(">II", head[28:36])
        f.seek(table_offset)
        bat = struct.unpack(f">{entries}I", f.read(entries * 4))
    assert copy == last, "the footer copy at the start is not the footer"
    assert foot["cookie"] == b"conectix" and foot["type"] == 3 and foot["data_offset"] == 512 and foot["checksum_ok"]
    assert foot["current"] == foot["original"] and foot["geometry"] == spec_geometry(foot["current"] // 512)
    assert copy[28:32] == b"qem2" and foot["creator_os"] == b"Wi2k"
    assert head[:8] == b"cxsparse" and head[8:16] == b"\xff" * 8 and checksum_ok(head, 36)
    assert int.from_bytes(head[24:28], "big") == 0x00010000 and block == BLOCK
    assert entries == -(-foot["current"] // BLOCK)
    assert not head[40:].strip(b"\0"), "parent fields and locators must be empty"
    return {"size": foot["current"], "bat": bat, "table_offset": table_offset}


def assert_blocks(path, info: dict) -> set[int]:
    """Every allocated block: sector-aligned, after the BAT, its bitmap all ones, none overlapping, all
    before the footer. The allocated block indexes."""
    end = os.path.getsize(path) - 512
    places = sorted(s * 512 for s in info["bat"] if s != 0xFFFFFFFF)
    first = info["table_offset"] + -(-len(info["bat"]) * 4 // 512) * 512
    with open(path, "rb") as f:
        for a, b in zip(places, [*places[1:], end + 1], strict=True):
            assert first <= a and a + 512 + BLOCK <= min(b, end + 512 + BLOCK)
            f.seek(a)
            assert f.read(512) == b"\xff" * 512
    assert not places or places[-1] + 512 + BLOCK == end
    return {i for i, s in enumerate(info["bat"]) if s != 0xFFFFFFFF}


def blocks_with_data(src: str) -> set[int]:
    with open(src, "rb") as f:
        data = f.read()
    return {i // BLOCK for i in range(0, len(data), BLOCK) if data[i:i + BLOCK].count(0) != len(data[i:i + BLOCK])}


def qemu_info(path) -> dict:
    return json.loads(qemu("info", "--output=json", "-f", "vpc", str(path)).stdout)


@pytest.mark.parametrize(("size", "regions"), [
    (ODD_SIZE, ODD_REGIONS),                                              # 5 MiB + 7 sectors
    (9 * MIB + 4096, [(0, 300_000), (4 * MIB, 2 * MIB), (9 * MIB, 4096)]),  # a whole block of data, a tail
    (BLOCK, [(BLOCK - 512, 512)]),                                          # one block, its last sector
])
@pytest.mark.usefixtures("read_once_only")
def test_written_from_the_member_is_what_qemu_img_reads(tmp_path, size, regions):
    ova, src = stream_ova(tmp_path, size, regions)
    out = tmp_path / "disk.vhd"
    res = import_disk(ova, "disk.vmdk", out, "vhd")
    assert res.format == "vhd" and res.virtual_size == size
    info = read_dynamic_vhd(out)
    assert info["size"] == size
    assert assert_blocks(out, info) == blocks_with_data(src), "zero blocks must stay unallocated"
    got = qemu_info(out)
    assert got["format"] == "vpc" and got["virtual-size"] == size   # qemu's own reading, no option
    assert qemu("compare", "-f", "raw", "-F", "vpc", src, str(out)).returncode == 0
    assert leftovers(tmp_path) == []


@pytest.mark.usefixtures("read_once_only")
def test_all_zero_disk_allocates_no_block(tmp_path):
    ova, src = stream_ova(tmp_path, 64 * MIB + 512, [])
    out = tmp_path / "zero.vhd"
    import_disk(ova, "disk.vmdk", out, "vhd")
    info = read_dynamic_vhd(out)
    assert set(info["bat"]) == {0xFFFFFFFF} and len(info["bat"]) == 33
    assert os.path.getsize(out) == 1536 + 512 + 512     # footer copy, header, BAT (one sector), footer
    assert qemu("compare", "-f", "raw", "-F", "vpc", src, str(out)).returncode == 0


@pytest.mark.usefixtures("read_once_only")
def test_incompressible_data_fills_every_block_and_keeps_zero_runs_as_holes(tmp_path):
    size = 6 * MIB + 1024
    ova, src = stream_ova(tmp_path, size, [(0, 3 * MIB), (3 * MIB + 512 * 1024, size - 3 * MIB - 512 * 1024)])
    out = tmp_path / "full.vhd"
    import_disk(ova, "disk.vmdk", out, "vhd")
    info = read_dynamic_vhd(out)
    assert assert_blocks(out, info) == {0, 1, 2, 3}
    assert qemu("compare", "-f", "raw", "-F", "vpc", src, str(out)).returncode == 0
    # the 512 KiB of zeros inside block 1 were not written: the file holds less than its length
    assert os.stat(out).st_blocks * 512 <= os.path.getsize(out) - 256 * 1024


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    """A stream whose grain points outside the disk: the CLI says so on one line naming the member, exit 2,
    and writes nothing (the manifest is made for the damaged bytes: the stream itself is what is wrong)."""
    import hashlib
    import io

    ova, _src = stream_ova(tmp_path, 4 * MIB, [(0, 200_000)])
    with tarfile.open(ova) as tar:
        data = bytearray(tar.extractfile("disk.vmdk").read())
        ovf = tar.extractfile("vm.ovf").read()
    at = 128 * 512                                   # the first grain marker: its LBA far past the capacity
    data[at:at + 8] = (1 << 30).to_bytes(8, "little")
    bad = tmp_path / "bad.ova"
    mf = "".join(f"SHA256({n})= {hashlib.sha256(d).hexdigest()}\n" for n, d in (("vm.ovf", ovf), ("disk.vmdk", data)))
    with tarfile.open(bad, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, body in (("vm.ovf", ovf), ("vm.mf", mf.encode()), ("disk.vmdk", bytes(data))):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    out = tmp_path / "bad.vhd"
    proc = subprocess.run([os.sys.executable, "-m", "vmferry", "disk", "convert", f"{bad}:disk.vmdk", "-O", "vhd",
                           "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.ova" in lines[0] and "disk.vmdk" in lines[0], proc.stderr
    assert not out.exists() and leftovers(tmp_path) == []


def test_the_writer_refuses_what_a_dynamic_vhd_cannot_hold(tmp_path):
    fd = os.open(tmp_path / "w.vhd", os.O_RDWR | os.O_CREAT)
    try:
        for size in (0, 1000, (2040 << 30) + 512):
            with pytest.raises(DiskError):
                DynamicVhdWriter(fd, size)
        w = DynamicVhdWriter(fd, 4 * MIB)
        with pytest.raises(DiskError, match="one block"):
            w.put(BLOCK - 512, b"x" * 1024)          # across two blocks
        with pytest.raises(DiskError, match="one block"):
            w.put(4 * MIB - 512, b"x" * 1024)        # past the end
        assert w.put(0, bytes(65536)) == 0 and w.blocks == {}
        assert w.put(BLOCK + 512, b"y" * 512) == 512
        assert w.finish() == 1536 + 512 + 512 + BLOCK + 512
    finally:
        os.close(fd)
    got = subprocess.run(["qemu-img", "dd", "-f", "vpc", "-O", "raw", f"if={tmp_path / 'w.vhd'}",
                          f"of={tmp_path / 'w.raw'}"], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    raw = (tmp_path / "w.raw").read_bytes()
    assert raw == bytes(BLOCK + 512) + b"y" * 512 + bytes(BLOCK - 1024)
