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
    # a grain table entry pointing past the end: check says corrupt (exit 1), compare cannot read it
    data = bytearray(vmdk.read_bytes())
    gd = struct.unpack_from("<Q", data, len(data) - 1024 + 56)[0]
    gt = struct.unpack_from("<I", data, gd * 512)[0]
    struct.pack_into("<I", data, gt * 512, 0x7FFFFFF0)
    bad = tmp_path / "bad.vmdk"
    bad.write_bytes(data)
    done = run_vmferry("disk", "check", bad)
    assert done.returncode == 1 and "bad.vmdk" in done.stdout and "grain table" in done.stdout
    other = tmp_path / "other.raw"
    other.write_bytes(b"\1" * os.path.getsize(odd_raw))
    done = run_vmferry("disk", "compare", odd_raw, other, "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["identical"] is False


def test_pack_unpack_and_convert_from_inside_the_ova(tmp_path, odd_raw):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "vm.ovf").write_bytes((COT / "vmware.ovf").read_bytes().replace(b"input.vmdk", b"disk.img"))
    (pkg / "disk.img").write_bytes(open(odd_raw, "rb").read())
    ova = tmp_path / "vm.ova"
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
