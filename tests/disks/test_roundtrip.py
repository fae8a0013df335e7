"""Round trips between every pair of formats, and the sample VMDKs into every format."""

from __future__ import annotations

import os

import pytest

from tests.disks.conftest import ODD_REGIONS, ODD_SIZE, SAMPLE_VMDKS, leftovers, make_raw, sample
from vmferry.disks import FORMATS, convert_disk, open_disk
from vmferry.tools import qemu_img
from vmferry.tools.qemu_img import ImageSpec

# Two odd sizes: 5 MiB + 7 sectors (several grains/clusters, random and zero regions) and
# 1 MiB + 1 sector (the last grain, cluster and VHD block hold one sector).
SIZES = {ODD_SIZE: ODD_REGIONS, 1048576 + 512: [(0, 1000), (300_000, 65536), (1048576 - 100, 612)]}


@pytest.fixture(scope="module", params=list(SIZES), ids=lambda s: f"{s}B")
def firsts(request, tmp_path_factory):
    """A generated raw image converted by vmferry into every format once."""
    size = request.param
    d = tmp_path_factory.mktemp("rt")
    raw = make_raw(d / "odd.raw", size, SIZES[size], seed=7)
    out = {}
    for name in FORMATS:
        target = os.fspath(d / f"first-{name}{FORMATS[name].extension}")
        result = convert_disk(open_disk(raw), target, name)
        assert result.virtual_size == size
        out[name] = target
    return size, raw, out


@pytest.mark.parametrize("second", list(FORMATS))
@pytest.mark.parametrize("first", list(FORMATS))
def test_every_pair(firsts, tmp_path, first, second):
    size, raw, made = firsts
    src = open_disk(made[first])
    assert src.format == first and src.virtual_size == size
    out = os.fspath(tmp_path / f"second{FORMATS[second].extension}")
    convert_disk(src, out, second)
    back = open_disk(out)
    assert back.format == second
    assert back.virtual_size == size
    assert qemu_img.compare(ImageSpec(raw, "raw"), back.spec)
    assert leftovers(tmp_path) == []


def test_a_different_disk_does_not_compare_identical(firsts, tmp_path):
    size, raw, made = firsts
    other = make_raw(tmp_path / "other.raw", size, SIZES[size], seed=8)
    assert not qemu_img.compare(ImageSpec(other, "raw"), open_disk(made["vmdk-stream"]).spec)


@pytest.mark.parametrize("target", list(FORMATS))
@pytest.mark.parametrize("name", SAMPLE_VMDKS)
def test_samples_convert_to_every_format(tmp_path, name, target):
    src = open_disk(sample(name))
    out = os.fspath(tmp_path / f"out{FORMATS[target].extension}")
    convert_disk(src, out, target)
    back = open_disk(out)
    assert back.virtual_size == src.virtual_size
    assert qemu_img.compare(src.spec, back.spec)


def test_data_in_other_files_is_never_read_from_the_wrong_one(tmp_path):
    """A VMDK text descriptor with separate sparse extents, and a qcow2 over a backing file: the
    allocation map's offsets point into other files, so vmferry must not pread them itself."""
    import subprocess

    raw = make_raw(tmp_path / "r.raw", 3 * 1048576, [(0, 400_000), (2 * 1048576, 5000)], seed=9)
    split = os.fspath(tmp_path / "split.vmdk")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse",
                    raw, split], check=True)
    base = os.fspath(tmp_path / "base.qcow2")
    convert_disk(open_disk(raw), base, "qcow2")
    top = os.fspath(tmp_path / "top.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top], check=True)
    for src in (split, top):
        out = os.fspath(tmp_path / (os.path.basename(src) + ".stream.vmdk"))
        convert_disk(open_disk(src), out, "vmdk-stream")
        assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(out, "vmdk")), src


def test_virtualbox_vdi_is_read(tmp_path):
    import subprocess

    raw = make_raw(tmp_path / "v.raw", 2 * 1048576 + 512, [(1000, 70_000)], seed=12)
    vdi = os.fspath(tmp_path / "v.bin")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vdi", raw, vdi], check=True)
    disk = open_disk(vdi)
    assert disk.format == "vdi" and disk.virtual_size == 2 * 1048576 + 512
    out = os.fspath(tmp_path / "v.vmdk")
    convert_disk(disk, out, "vmdk-stream")
    assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(out, "vmdk"))


def test_raw_of_an_odd_number_of_bytes_rounds_up_to_one_sector(tmp_path):
    raw = make_raw(tmp_path / "b.raw", 1048576 + 100, [(0, 1048576 + 100)], seed=13)
    for fmt in ("vmdk-stream", "qcow2", "vhd"):
        out = os.fspath(tmp_path / f"b.{fmt}")
        result = convert_disk(open_disk(raw), out, fmt)
        back = open_disk(out)
        assert back.virtual_size == result.virtual_size == 1048576 + 512
        assert qemu_img.compare(ImageSpec(raw, "raw"), back.spec)
