"""OVA reading: streamed, verified, one byte changed is caught."""

from __future__ import annotations

import json

from tests.conftest import COT, run_vmferry
from tests.package.helpers import files_of, make_ova
from vmferry.package import open_package
from vmferry.package.ova import scan_ova

INPUT = ["input.ovf", "input.mf", "input.vmdk", "input.iso", "sample_cfg.txt"]


def test_ova_from_input_verifies(tmp_path):
    ova = make_ova(tmp_path / "input.ova", files_of(COT, INPUT))
    result = run_vmferry("validate", "--json", ova)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["container"] == "ova" and doc["files_checked"] == 4


def test_members_are_byte_ranges_of_the_archive(tmp_path):
    ova = make_ova(tmp_path / "input.ova", files_of(COT, INPUT))
    raw = ova.read_bytes()
    for member in scan_ova(ova):
        assert raw[member.offset:member.offset + member.size] == (COT / member.name).read_bytes()


def test_one_changed_byte_of_a_disk_is_exit_2_naming_the_file(tmp_path):
    members = files_of(COT, INPUT)
    disk = bytearray(members[2][1])
    disk[70000] ^= 0x01
    members[2] = ("input.vmdk", bytes(disk))
    ova = make_ova(tmp_path / "input.ova", members)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_vmferry("validate", ova, cwd=tmp_path)
    assert result.returncode == 2
    assert "input.vmdk" in result.stderr and "digest" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_member_order_finding(tmp_path):
    names = ["input.vmdk", "input.ovf", "input.mf", "input.iso", "sample_cfg.txt"]
    ova = make_ova(tmp_path / "x.ova", files_of(COT, names))
    pkg = open_package(ova)
    assert any(f.rule == "VMF-PKG-001" for f in pkg.findings)
    ok = open_package(make_ova(tmp_path / "y.ova", files_of(COT, INPUT)))
    assert not any(f.rule == "VMF-PKG-001" for f in ok.findings)


def test_manifest_at_the_end_is_allowed(tmp_path):
    names = ["input.ovf", "input.vmdk", "input.iso", "sample_cfg.txt", "input.mf"]
    pkg = open_package(make_ova(tmp_path / "x.ova", files_of(COT, names)))
    assert not any(f.rule == "VMF-PKG-001" for f in pkg.findings)


def test_inspect_ova_without_unpacking(tmp_path):
    ova = make_ova(tmp_path / "input.ova", files_of(COT, INPUT))
    result = run_vmferry("inspect", "--json", ova, cwd=tmp_path)
    doc = json.loads(result.stdout)
    assert doc["container"] == "ova" and doc["systems"][0]["cpus"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.ova"]


def test_gzip_and_chunked_files_are_read_transparently(tmp_path):
    import gzip

    disk = (COT / "input.vmdk").read_bytes()
    packed = gzip.compress(disk)
    chunk = 40000
    chunks = [packed[i:i + chunk] for i in range(0, len(packed), chunk)]
    ovf = (COT / "vmware.ovf").read_text()
    ovf = ovf.replace('ovf:href="input.vmdk" ovf:id="file1" ovf:size="152576"',
                      f'ovf:href="input.vmdk" ovf:id="file1" ovf:size="{len(packed)}" ovf:compression="gzip" '
                      f'ovf:chunkSize="{chunk}"')
    members = [("vmware.ovf", ovf.encode())] + [(f"input.vmdk.{i:09d}", c) for i, c in enumerate(chunks)]
    pkg = open_package(make_ova(tmp_path / "c.ova", members))
    f = pkg.envelope.references[0]
    assert pkg.stored_size(f.href, f.chunk_size) == len(packed)
    data = b"".join(pkg.file_blocks(f.href, chunk_size=f.chunk_size, compression=f.compression))
    assert data == disk
    assert run_vmferry("validate", tmp_path / "c.ova").returncode == 0


def test_disk_whose_content_is_not_its_declared_format_is_a_finding(tmp_path):
    """The format is read from the bytes: a qcow2 image declared as streamOptimized VMDK is reported."""
    from vmferry.tools.proc import run

    run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "input.vmdk"), "64M"])
    (tmp_path / "vm.ovf").write_bytes((COT / "vmware.ovf").read_bytes().replace(
        b'ovf:size="152576"', f'ovf:size="{(tmp_path / "input.vmdk").stat().st_size}"'.encode()))
    result = run_vmferry("validate", "--json", tmp_path / "vm.ovf")
    doc = json.loads(result.stdout)
    (finding,) = [f for f in doc["findings"] if f["rule"] == "VMF-DISK-020"]
    assert "qcow2" in finding["message"] and "input.vmdk" in finding["location"]


def test_file_that_is_no_disk_image_is_refused(tmp_path):
    """A file declared as a VMDK with no VMDK header is damaged content: validate and check say so in
    one line, exit 2, like every command given damaged input."""
    (tmp_path / "input.vmdk").write_bytes(b"this is not a disk" * 100)
    (tmp_path / "vm.ovf").write_bytes((COT / "vmware.ovf").read_bytes().replace(b'ovf:size="152576"',
                                                                                 b'ovf:size="1800"'))
    for argv in (["validate"], ["validate", "--json"], ["check", "--target", "kvm", "--no-guest"]):
        result = run_vmferry(*argv, tmp_path / "vm.ovf")
        assert result.returncode == 2 and result.stdout == "", result
        assert result.stderr.count("\n") == 1 and "input.vmdk" in result.stderr and "no VMDK header" in result.stderr
    # and the converting commands do not read it as a raw disk of garbage: folder and OVA alike
    ova = tmp_path / "x.ova"
    make_ova(ova, [("vm.ovf", (tmp_path / "vm.ovf").read_bytes()), ("input.vmdk", (tmp_path / "input.vmdk").read_bytes())])
    out = tmp_path / "out"
    out.mkdir()
    for argv in (["convert", tmp_path / "vm.ovf", "--to", "dmtf", "-o", out / "d"],
                 ["convert", tmp_path / "vm.ovf", "--to", "kvm", "--no-guest", "-o", out / "k"],
                 ["convert", ova, "--to", "vmware", "--ova", "-o", out / "v.ova"],
                 ["disk", "convert", f"{ova}:input.vmdk", "-O", "qcow2", "-o", out / "x.qcow2"]):
        result = run_vmferry(*argv)
        assert result.returncode == 2 and "no VMDK header" in result.stderr and "input.vmdk" in result.stderr, result
        assert list(out.iterdir()) == []
