"""Detection from content, the format table, and headers that lie."""

from __future__ import annotations

import os
import struct

import pytest

from tests.disks.conftest import ODD_SIZE, SAMPLE_VMDKS, sample
from vmferry.disks import (
    FORMATS,
    convert_disk,
    default_format,
    detect,
    format_mismatch,
    get_format,
    open_disk,
)
from vmferry.errors import DamagedImage, DiskError, UsageError
from vmferry.tools import qemu_img


@pytest.fixture(scope="module")
def every_format(tmp_path_factory):
    """odd.raw converted by qemu-img itself into every format, named *.bin so names tell nothing."""
    from tests.disks.conftest import ODD_REGIONS, make_raw
    d = tmp_path_factory.mktemp("fmts")
    raw = make_raw(d / "odd.raw", ODD_SIZE, ODD_REGIONS)
    out = {"raw": raw}
    for name, fmt in FORMATS.items():
        if name == "raw":
            continue
        target = os.fspath(d / f"{name}.bin")
        qemu_img.convert(qemu_img.ImageSpec(raw, "raw"), target, fmt.qemu, fmt.create_options())
        out[name] = target
    return out


@pytest.mark.parametrize("name", list(FORMATS))
def test_detect_by_content_not_name(every_format, name):
    det = detect(every_format[name])
    assert det.name == name
    disk = open_disk(every_format[name])
    assert disk.virtual_size == ODD_SIZE, f"{name}: {disk.virtual_size}"


def test_fixed_vhd_size_is_exact_though_qemu_counts_the_footer(tmp_path):
    # qemu-img 7.2 sometimes reports a fixed VHD's file size (data + footer) as its virtual size
    # (seen with `qemu-img create -f vpc -o subformat=fixed,force_size=on X 5000704`); vmferry
    # reads the data part by the footer's current_size instead.
    from tests.disks.conftest import make_raw
    raw = make_raw(tmp_path / "s.raw", 5000704, [(0, 100_000), (4_990_000, 10_704)])
    vhd = os.fspath(tmp_path / "s.vhd")
    convert_disk(open_disk(raw), vhd, "vhd-fixed")
    disk = open_disk(vhd)
    assert disk.virtual_size == 5000704
    assert qemu_img.compare(qemu_img.ImageSpec(raw, "raw"), disk.spec)


def test_qcow2_is_compat_1_1(every_format):
    with open(every_format["qcow2"], "rb") as f:
        head = f.read(8)
    assert head[:4] == b"QFI\xfb" and struct.unpack(">I", head[4:8])[0] == 3


@pytest.mark.parametrize("name", SAMPLE_VMDKS)
def test_samples_are_stream_optimized(name):
    det = detect(sample(name))
    assert det.name == "vmdk-stream" and "version 3" in det.detail


def test_mismatch_with_descriptor_is_a_finding(every_format):
    det = detect(every_format["qcow2"])
    finding = format_mismatch(det, "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized")
    assert finding is not None and finding.rule == "VMF-DISK-020" and "qcow2" in finding.message
    same = format_mismatch(detect(every_format["vmdk-stream"]),
                           "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized")
    assert same is None


def test_format_names_aliases_and_target_defaults():
    assert get_format("streamOptimized").name == "vmdk-stream"
    assert default_format("kvm").name == "qcow2"
    assert default_format("vmware").name == "vmdk-stream"
    assert default_format("azure").name == "vhd-fixed"
    assert default_format("xen").name == "vhd"
    with pytest.raises(UsageError):
        get_format("floppy")


def _lying_copy(src: str, dst, patch) -> str:
    data = bytearray(open(src, "rb").read())
    patch(data)
    with open(dst, "wb") as f:
        f.write(data)
    return os.fspath(dst)


def _footer_gd(data: bytearray) -> int:
    return struct.unpack_from("<Q", data, len(data) - 1024 + 56)[0]


def test_petabyte_capacity_is_refused_before_any_work(every_format, tmp_path):
    def patch(d):
        struct.pack_into("<Q", d, 12, 1 << 42)          # 2 PiB in sectors, header
        struct.pack_into("<Q", d, len(d) - 1024 + 12, 1 << 42)  # and footer
    bad = _lying_copy(every_format["vmdk-stream"], tmp_path / "pb.vmdk", patch)
    with pytest.raises(DiskError, match="virtual size"):
        open_disk(bad)


def test_grain_table_past_the_end_is_an_error(tmp_path, odd_raw):
    good = os.fspath(tmp_path / "g.vmdk")
    convert_disk(open_disk(odd_raw), good, "vmdk-stream")

    def patch(d):
        gt = struct.unpack_from("<I", d, _footer_gd(d) * 512)[0]
        struct.pack_into("<I", d, gt * 512, 0x7FFFFFF0)
    bad = _lying_copy(good, tmp_path / "gt.vmdk", patch)
    with pytest.raises(DamagedImage, match="grain table entry"):   # found by the header check
        convert_disk(open_disk(bad), tmp_path / "out.qcow2", "qcow2")
    assert not (tmp_path / "out.qcow2").exists()


def test_truncated_grains_are_an_error(tmp_path, odd_raw):
    good = os.fspath(tmp_path / "g.vmdk")
    convert_disk(open_disk(odd_raw), good, "vmdk-stream")

    def patch(d):
        gt = struct.unpack_from("<I", d, _footer_gd(d) * 512)[0]
        first = struct.unpack_from("<I", d, gt * 512)[0]
        d[first * 512 + 12:first * 512 + 3000] = bytes(2988)
    bad = _lying_copy(good, tmp_path / "tg.vmdk", patch)
    with pytest.raises(DiskError):
        convert_disk(open_disk(bad), tmp_path / "out.raw", "raw")
    truncated = tmp_path / "half.vmdk"
    truncated.write_bytes(open(good, "rb").read()[:40000])
    with pytest.raises(DiskError):
        open_disk(truncated)


def test_fixed_vhd_footer_larger_than_file_is_an_error(every_format, tmp_path):
    def patch(d):
        struct.pack_into(">Q", d, len(d) - 512 + 48, 1 << 40)
    bad = _lying_copy(every_format["vhd-fixed"], tmp_path / "lie.vhd", patch)
    with pytest.raises(DiskError, match="footer declares"):
        open_disk(bad)
