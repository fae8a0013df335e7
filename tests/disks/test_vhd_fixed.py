"""Fixed VHD (and raw) written by vmferry's own writers, checked by means that are not vmferry's: the
footer parsed here from the bytes with the layout of Microsoft's VHD specification (its own CHS
calculation and checksum below), qemu-img's vpc driver reading the current size
(``force_size_calc=current_size``), ``qemu-img compare`` against the source, and the file's holes."""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import tarfile
import time
import uuid

import pytest

from tests.disks.conftest import ODD_REGIONS, ODD_SIZE, leftovers, make_raw
from vmferry.disks.convert import convert_disk, open_disk
from vmferry.disks.ova_read import import_disk
from vmferry.disks.vmdk_stream import write_stream_vmdk
from vmferry.errors import DiskError

MIB = 1 << 20


def spec_geometry(total_sectors: int) -> tuple[int, int, int]:
    """The VHD specification's appendix "CHS calculation", written out again for the test."""
    total = min(total_sectors, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        s, h = 255, 16
        ch = total // s
    else:
        s = 17
        ch = total // s
        h = max((ch + 1023) // 1024, 4)
        if ch >= h * 1024 or h > 16:
            s, h, ch = 31, 16, total // 31
        if ch >= h * 1024:
            s, h, ch = 63, 16, total // 63
    return ch // h, h, s


def read_footer(path) -> dict:
    """The footer's fields from the last 512 bytes, by the specification's offsets (big-endian)."""
    with open(path, "rb") as f:
        f.seek(-512, os.SEEK_END)
        raw = f.read(512)
    cyl, heads, spt = struct.unpack(">HBB", raw[56:60])
    stored = int.from_bytes(raw[64:68], "big")
    return {"cookie": raw[0:8], "features": int.from_bytes(raw[8:12], "big"),
            "version": int.from_bytes(raw[12:16], "big"), "data_offset": int.from_bytes(raw[16:24], "big"),
            "timestamp": int.from_bytes(raw[24:28], "big"), "creator_os": raw[36:40],
            "original": int.from_bytes(raw[40:48], "big"), "current": int.from_bytes(raw[48:56], "big"),
            "geometry": (cyl, heads, spt), "type": int.from_bytes(raw[60:64], "big"),
            "checksum_ok": stored == (~(sum(raw) - sum(raw[64:68])) & 0xFFFFFFFF),
            "uuid": uuid.UUID(bytes=raw[68:84]), "saved": raw[84], "reserved": raw[85:]}


def assert_fixed_vhd(path, *, align: int = 512) -> dict:
    f = read_footer(path)
    size = os.path.getsize(path)
    assert f["cookie"] == b"conectix" and f["features"] & 2 and f["version"] == 0x00010000
    assert f["data_offset"] == 0xFFFFFFFFFFFFFFFF and f["type"] == 2 and f["checksum_ok"]
    assert f["current"] == f["original"] == size - 512 and f["current"] % align == 0
    assert f["geometry"] == spec_geometry(f["current"] // 512)
    c, h, s = f["geometry"]
    assert c * h * s * 512 <= f["current"]
    assert abs(f["timestamp"] + 946684800 - time.time()) < 600
    assert f["creator_os"] == b"Wi2k" and f["uuid"].version == 4 and f["saved"] == 0 and not f["reserved"].strip(b"\0")
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "--image-opts",
                                      f"driver=vpc,force_size_calc=current_size,file.filename={path}"],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["format"] == "vpc" and info["virtual-size"] == f["current"]
    return f


def compare_vpc(vhd, other, other_fmt: str) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", "compare", "--image-opts",
                           f"driver=vpc,force_size_calc=current_size,file.filename={vhd}",
                           f"driver={other_fmt},file.filename={other}"], capture_output=True, text=True)


@pytest.mark.parametrize("align", [512, MIB])
def test_raw_source_written_as_fixed_vhd(tmp_path, align, no_qemu_convert):
    src = make_raw(tmp_path / "odd.raw", ODD_SIZE, ODD_REGIONS)
    out = tmp_path / "odd.vhd"
    res = convert_disk(open_disk(src), out, "vhd-fixed", align=align)
    f = assert_fixed_vhd(out, align=align)
    assert f["current"] == -(-ODD_SIZE // align) * align == res.virtual_size
    # the tail added by the rounding reads as zeros: the images compare equal (qemu-img compare checks it)
    assert compare_vpc(out, src, "raw").returncode == 0, compare_vpc(out, src, "raw").stdout
    assert os.stat(out).st_blocks * 512 < 3 * MIB      # zeros left as holes: ~1 MiB of data in 5 MiB
    assert leftovers(tmp_path) == []


@pytest.fixture
def no_qemu_convert(monkeypatch):
    """vmferry's own writers only: qemu-img convert refused."""
    from vmferry.tools import qemu_img

    def refuse(*args, **kwargs):
        raise AssertionError("qemu-img convert was called")

    monkeypatch.setattr(qemu_img, "convert", refuse)


def test_streamoptimized_member_of_an_ova_read_in_place(tmp_path, no_qemu_convert):
    """An OVA member in streamOptimized VMDK: its grains inflated on the pool, nothing extracted."""
    src = make_raw(tmp_path / "src.raw", 9 * MIB + 4096, [(0, 300_000), (4 * MIB, 2 * MIB), (9 * MIB, 4096)])
    vmdk = io.BytesIO()
    with open(src, "rb") as fh:
        write_stream_vmdk(lambda o, n: os.pread(fh.fileno(), n, o), os.path.getsize(src), vmdk.write)
    ova = _ova(tmp_path / "vm.ova", {"disk.vmdk": vmdk.getvalue()})
    out = tmp_path / "disk.vhd"
    res = import_disk(ova, "disk.vmdk", out, "vhd-fixed", align=MIB)
    assert_fixed_vhd(out, align=MIB)
    assert res.virtual_size == 10 * MIB
    assert compare_vpc(out, src, "raw").returncode == 0
    assert sorted(os.listdir(tmp_path)) == ["disk.vhd", "src.raw", "vm.ova"]


def test_gzip_member_streamed_to_fixed_vhd_and_raw(tmp_path, no_qemu_convert):
    src = make_raw(tmp_path / "src.raw", 3 * MIB, [(MIB, 70_000)])
    vmdk = io.BytesIO()
    with open(src, "rb") as fh:
        write_stream_vmdk(lambda o, n: os.pread(fh.fileno(), n, o), 3 * MIB, vmdk.write)
    ova = _ova(tmp_path / "vm.ova", {"disk.vmdk": gzip.compress(vmdk.getvalue(), 1)})
    import_disk(ova, "disk.vmdk", tmp_path / "d.vhd", "vhd-fixed", compression="gzip", align=MIB)
    assert_fixed_vhd(tmp_path / "d.vhd", align=MIB)
    assert compare_vpc(tmp_path / "d.vhd", src, "raw").returncode == 0
    import_disk(ova, "disk.vmdk", tmp_path / "d.raw", "raw", compression="gzip")
    assert open(tmp_path / "d.raw", "rb").read() == open(src, "rb").read()


def test_compressed_qcow2_goes_through_qemu_img_then_gets_its_footer(tmp_path):
    src = make_raw(tmp_path / "src.raw", 2 * MIB + 1536, [(512, 100_000)])
    q = tmp_path / "c.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", src, q], check=True)
    out = tmp_path / "c.vhd"
    convert_disk(open_disk(q), out, "vhd-fixed", align=MIB)
    assert_fixed_vhd(out, align=MIB)
    assert compare_vpc(out, q, "qcow2").returncode == 0


def test_a_stream_that_lies_leaves_nothing(tmp_path):
    src = make_raw(tmp_path / "src.raw", 2 * MIB, [(0, MIB)])
    vmdk = io.BytesIO()
    with open(src, "rb") as fh:
        write_stream_vmdk(lambda o, n: os.pread(fh.fileno(), n, o), 2 * MIB, vmdk.write)
    data = bytearray(vmdk.getvalue())
    data[128 * 512 + 12 + 5] ^= 0xFF              # inside the first grain's deflate stream
    ova = _ova(tmp_path / "vm.ova", {"disk.vmdk": gzip.compress(bytes(data))})
    with pytest.raises(DiskError):
        import_disk(ova, "disk.vmdk", tmp_path / "d.vhd", "vhd-fixed", compression="gzip")
    assert not (tmp_path / "d.vhd").exists() and leftovers(tmp_path) == []


def test_vmferry_reads_its_vhd_back_and_refuses_a_bad_alignment(tmp_path):
    from vmferry.disks.vhd_footer import (
        build_footer,
        chs_geometry,
        fixed_footer_problems,
        parse_footer,
        round_size,
    )

    src = make_raw(tmp_path / "s.raw", MIB, [(0, 1000)])
    convert_disk(open_disk(src), tmp_path / "s.vhd", "vhd-fixed")
    assert open_disk(tmp_path / "s.vhd").virtual_size == MIB
    footer = parse_footer(open(tmp_path / "s.vhd", "rb").read()[-512:])
    assert footer.disk_type == 2 and footer.geometry == chs_geometry(MIB)
    assert fixed_footer_problems(footer, MIB + 512, align=MIB) == []
    assert fixed_footer_problems(footer, MIB + 1024, align=2 * MIB) == [
        f"current size {MIB} + the footer is not the file size {MIB + 1024}",
        f"current size {MIB} is not a multiple of {2 * MIB} bytes"]
    bad = bytearray(build_footer(MIB))
    bad[40] ^= 1
    with pytest.raises(DiskError, match="checksum"):
        parse_footer(bytes(bad))
    with pytest.raises(DiskError):
        round_size(MIB, 1000)
    # the specification's boundaries: 17, 31, 63 and 255 sectors per track, and the largest geometry
    for sectors in (2880, 65535 * 16 * 17, 65535 * 16 * 17 + 17 * 16 * 1024, 65535 * 16 * 63, 2040 << 21):
        assert chs_geometry(sectors * 512) == spec_geometry(sectors)


def _ova(path, members: dict[str, bytes]) -> str:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        ovf = b"<Envelope/>"
        for name, data in [("vm.ovf", ovf), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return os.fspath(path)


def test_disk_convert_target_azure_rounds_to_a_mib(tmp_path):
    from tests.conftest import run_vmferry

    src = make_raw(tmp_path / "odd.raw", ODD_SIZE, ODD_REGIONS)
    res = run_vmferry("disk", "convert", src, "--target", "azure", "-o", tmp_path / "a.vhd", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["virtual_size"] == 6 * MIB
    assert_fixed_vhd(tmp_path / "a.vhd", align=MIB)
    res = run_vmferry("disk", "convert", src, "-O", "vhd-fixed", "-o", tmp_path / "b.vhd", "--json")
    assert json.loads(res.stdout)["virtual_size"] == ODD_SIZE     # no target: the exact size (whole sectors)
