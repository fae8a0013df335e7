"""The `disk`, `pack` and `unpack` commands end to end (real child processes)."""

from __future__ import annotations

import json
import os
import struct

from tests.conftest import COT, run_vmferry
from vmferry.disks import FORMATS, convert_disk, open_disk


def test_disk_formats_lists_the_table():
    done = run_vmferry("disk", "formats")
    assert done.returncode == 0
    assert [ln.split()[0] for ln in done.stdout.splitlines()] == list(FORMATS)


def test_info_check_compare(tmp_path, odd_raw):
    vmdk = tmp_path / "o.vmdk"
    convert_disk(open_disk(odd_raw), vmdk, "vmdk-stream")
    info = json.loads(run_vmferry("disk", "info", vmdk, "--json").stdout)
    assert info["format"] == "vmdk-stream" and info["virtual_size"] == os.path.getsize(odd_raw)
    done = run_vmferry("disk", "check", vmdk, "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True
    assert run_vmferry("disk", "compare", odd_raw, vmdk).returncode == 0
    # a grain table entry pointing past the end: the header check refuses the image before qemu-img
    # sees it; like every command given damaged input, check says so in one line, exit 2
    data = bytearray(vmdk.read_bytes())
    gd = struct.unpack_from("<Q", data, len(data) - 1024 + 56)[0]
    gt = struct.unpack_from("<I", data, gd * 512)[0]
    struct.pack_into("<I", data, gt * 512, 0x7FFFFFF0)
    bad = tmp_path / "bad.vmdk"
    bad.write_bytes(data)
    for extra in ((), ("--json",)):
        done = run_vmferry("disk", "check", bad, *extra)
        assert done.returncode == 2 and done.stdout == "", done
        assert done.stderr.count("\n") == 1 and "bad.vmdk" in done.stderr and "grain table" in done.stderr
    other = tmp_path / "other.raw"
    other.write_bytes(b"\1" * os.path.getsize(odd_raw))
    done = run_vmferry("disk", "compare", odd_raw, other, "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["identical"] is False


def test_check_reports_what_qemu_img_finds_in_a_readable_image(tmp_path, odd_raw):
    """An image vmferry can read safely, with a refcount qemu-img check finds wrong: exit 1, the count
    and the image named on standard output (a finding about a readable image, not bad input)."""
    qcow = tmp_path / "o.qcow2"
    convert_disk(open_disk(odd_raw), qcow, "qcow2")
    data = bytearray(qcow.read_bytes())
    cluster_bits, = struct.unpack_from(">I", data, 20)
    table, = struct.unpack_from(">Q", data, 48)
    block, = struct.unpack_from(">Q", data, table)
    struct.pack_into(">H", data, block, 0)   # the header cluster's refcount (16-bit entries): 0, still in use
    assert block >> cluster_bits
    qcow.write_bytes(data)
    done = run_vmferry("disk", "check", qcow)
    assert done.returncode == 1 and done.stderr == "", done
    assert "o.qcow2" in done.stdout and "problems" in done.stdout
    assert json.loads(run_vmferry("disk", "check", qcow, "--json").stdout)["ok"] is False


def test_pack_unpack_and_convert_from_inside_the_ova(tmp_path, odd_raw):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    # authoring: a File whose size is not known yet leaves ovf:size out and pack writes it (a size that
    # is declared must be right: a longer or shorter file is damage, refused like everywhere else)
    ovf = (COT / "vmware.ovf").read_bytes().replace(b"input.vmdk", b"disk.img")
    (pkg / "vm.ovf").write_bytes(ovf.replace(b' ovf:size="152576"', b""))
    (pkg / "disk.img").write_bytes(open(odd_raw, "rb").read())
    ova = tmp_path / "vm.ova"
    (pkg / "vm.ovf").write_bytes(ovf)
    done = run_vmferry("pack", pkg, "-o", ova)
    assert done.returncode == 2 and "disk.img" in done.stderr and "ovf:size=152576" in done.stderr
    assert not ova.exists()
    (pkg / "vm.ovf").write_bytes(ovf.replace(b' ovf:size="152576"', b""))
    done = run_vmferry("pack", pkg, "--disk-format", "vmdk-stream", "-o", ova, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [f["name"] for f in doc["files"]] == ["vm.ovf", "disk.vmdk"]
    assert run_vmferry("unpack", ova, "--verify-only").returncode == 0
    out = tmp_path / "d.vhd"
    done = run_vmferry("disk", "convert", f"{ova}:disk.vmdk", "--target", "hyperv", "-o", out)
    assert done.returncode == 0, done.stderr
    assert open_disk(out).format == "vhdx"  # hyperv's default is VHDX (the targets table), whatever the name says
    assert run_vmferry("disk", "compare", odd_raw, out).returncode == 0
    done = run_vmferry("unpack", ova, "-o", tmp_path / "un", "--json")
    assert sorted(json.loads(done.stdout)["files"]) == ["disk.vmdk", "vm.mf", "vm.ovf"]
    again = run_vmferry("unpack", ova, "-o", tmp_path / "un")
    assert again.returncode == 2 and "--force" in again.stderr
