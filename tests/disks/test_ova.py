"""One-pass OVA packing, verification, unpacking and import straight from the archive."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import tarfile

import pytest

from tests.conftest import COT
from tests.disks.conftest import leftovers, make_raw, sample
from vmferry.disks import convert_disk, open_disk
from vmferry.disks.ova_read import import_disk, members, unpack_ova, verify_ova
from vmferry.disks.packdir import pack_directory
from vmferry.disks.reader import open_raw
from vmferry.errors import ManifestMismatch, MissingFile, PackageError
from vmferry.package.ova_writer import PackSource, pack_ova, tar_header
from vmferry.tools import qemu_img
from vmferry.tools.qemu_img import ImageSpec

MiB = 1 << 20
SIZE = 6 * MiB + 512 * 5


@pytest.fixture
def ovf_dir(tmp_path):
    """vmware.ovf (a real vSphere export) pointing at a generated qcow2 disk instead of input.vmdk, its
    ovf:size left out (the size of input.vmdk would be a lie: pack writes the true one)."""
    d = tmp_path / "pkg"
    d.mkdir()
    xml = (COT / "vmware.ovf").read_bytes().replace(b"input.vmdk", b"disk.qcow2").replace(b' ovf:size="152576"', b"")
    (d / "vm.ovf").write_bytes(xml)
    raw = make_raw(tmp_path / "disk.raw", SIZE, [(0, 300_000), (4 * MiB, 70_000)], seed=11)
    convert_disk(open_disk(raw), d / "disk.qcow2", "qcow2")
    return d, raw


@pytest.fixture
def packed(ovf_dir, tmp_path):
    d, raw = ovf_dir
    out = tmp_path / "vm.ova"
    result = pack_directory(d, out, disk_format="vmdk-stream")
    return out, raw, result


def test_pack_writes_descriptor_first_manifest_last_and_true_sizes(packed):
    out, raw, result = packed
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert names == ["vm.ovf", "disk.vmdk", "vm.mf"]
        xml = tar.extractfile("vm.ovf").read()
        disk = tar.extractfile("disk.vmdk").read()
        mf = tar.extractfile("vm.mf").read().decode()
    assert f'ovf:size="{len(disk)}"'.encode() in xml
    assert f'ovf:capacity="{SIZE}"'.encode() in xml
    assert b'ovf:populatedSize="' in xml and b"vmdk.html#streamOptimized" in xml
    assert b"disk.qcow2" not in xml
    assert f"SHA256(disk.vmdk)= {hashlib.sha256(disk).hexdigest()}" in mf
    assert f"SHA256(vm.ovf)= {hashlib.sha256(xml).hexdigest()}" in mf
    assert xml.rstrip().endswith(b"</ovf:Envelope>")
    assert os.path.getsize(out) % 10240 == 0
    assert leftovers(out.parent) == []


def test_packed_ova_passes_the_package_validator(packed):
    from vmferry.validate import validate_package

    out, _, _ = packed
    report = validate_package(out, schema=False)
    bad = [f for f in report.findings if f.severity == "error"]
    assert bad == [], [f.to_dict() for f in bad]
    assert report.files_checked >= 2


def test_verify_reads_each_member_and_detects_tampering(packed, tmp_path):
    out, _, _ = packed
    result = verify_ova(out)
    assert set(result.checked) == {"vm.ovf", "disk.vmdk"} and result.unlisted == []
    member = next(m for m in members(out) if m.name == "disk.vmdk")
    data = bytearray(out.read_bytes())
    data[member.offset + member.size // 2] ^= 0x01
    bad = tmp_path / "bad.ova"
    bad.write_bytes(data)
    with pytest.raises(ManifestMismatch, match="disk.vmdk"):
        verify_ova(bad)
    with pytest.raises(ManifestMismatch):
        unpack_ova(bad, tmp_path / "never")
    assert not (tmp_path / "never").exists() and leftovers(tmp_path) == []


def test_unpack_then_disk_is_identical(packed, tmp_path):
    out, raw, _ = packed
    names = unpack_ova(out, tmp_path / "un")
    assert sorted(names) == sorted(os.listdir(tmp_path / "un"))
    assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(os.fspath(tmp_path / "un" / "disk.vmdk"), "vmdk"))


def test_import_straight_from_the_archive(packed, tmp_path):
    out, raw, _ = packed
    dest = tmp_path / "imp"
    dest.mkdir()
    result = import_disk(out, "disk.vmdk", dest / "disk.qcow2", "qcow2")
    assert os.listdir(dest) == ["disk.qcow2"]
    assert result.virtual_size == SIZE
    assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(os.fspath(dest / "disk.qcow2"), "qcow2"))


def test_import_refuses_a_tampered_disk_and_leaves_nothing(packed, tmp_path):
    out, _, _ = packed
    member = next(m for m in members(out) if m.name == "disk.vmdk")
    data = bytearray(out.read_bytes())
    data[member.offset + 600] ^= 0xFF  # inside the descriptor text: still a readable disk
    bad = tmp_path / "bad.ova"
    bad.write_bytes(data)
    with pytest.raises(ManifestMismatch):
        import_disk(bad, "disk.vmdk", tmp_path / "x.qcow2", "qcow2")
    assert not (tmp_path / "x.qcow2").exists() and leftovers(tmp_path) == []


def _ova_by_hand(path, files: dict[str, bytes]) -> None:
    with open(path, "wb") as f:
        for name, data in files.items():
            f.write(tar_header(name, len(data)) + data + bytes(-len(data) % 512))
        f.write(bytes(1024))


def test_import_gzip_and_chunked_members(tmp_path):
    raw = make_raw(tmp_path / "g.raw", 3 * MiB + 512, [(0, 200_000)], seed=5)
    vmdk = tmp_path / "g.vmdk"
    convert_disk(open_disk(raw), vmdk, "vmdk-stream")
    body = vmdk.read_bytes()
    gz = gzip.compress(body, 1)
    half = len(body) // 2
    files = {"vm.ovf": b"<Envelope/>", "g.vmdk": gz,
             "c.vmdk.000000000": body[:half], "c.vmdk.000000001": body[half:]}
    mf = "".join(f"SHA256({n})= {hashlib.sha256(b).hexdigest()}\n" for n, b in files.items())
    files["vm.mf"] = mf.encode()
    ova = tmp_path / "x.ova"
    _ova_by_hand(ova, files)
    a = import_disk(ova, "g.vmdk", tmp_path / "a.qcow2", "qcow2", compression="gzip")
    b = import_disk(ova, "c.vmdk", tmp_path / "b.raw", "raw", chunk_size=half)
    for res, fmt in ((a, "qcow2"), (b, "raw")):
        assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(res.path, fmt))
    assert leftovers(tmp_path) == []
    with pytest.raises(MissingFile):
        import_disk(ova, "nothere.vmdk", tmp_path / "n.qcow2", "qcow2")


def test_sample_stream_vmdk_is_copied_unchanged(tmp_path):
    src = sample("input.vmdk")
    disk = open_disk(src)
    out = tmp_path / "s.ova"
    res = pack_ova(out, "s.ovf", lambda w: b"<Envelope/>", [PackSource("input.vmdk", src, disk)])
    with tarfile.open(out) as tar:
        assert tar.extractfile("input.vmdk").read() == open(src, "rb").read()
    assert res.files["input.vmdk"].capacity == 1 << 30


def test_descriptor_that_outgrows_its_reservation_fails_cleanly(tmp_path, odd_raw):
    calls = []

    def render(written):
        calls.append(1)
        return b"<E/>" if not written else b"<E>" + b"x" * 20000 + b"</E>"

    disk = open_disk(odd_raw)
    with pytest.raises(PackageError, match="reserved"):
        pack_ova(tmp_path / "o.ova", "o.ovf", render, [PackSource("d.vmdk", odd_raw, disk, True)])
    assert not (tmp_path / "o.ova").exists() and leftovers(tmp_path) == []


def test_real_cot_package_packs_and_validates(tmp_path):
    from vmferry.validate import validate_package

    d = tmp_path / "cot"
    d.mkdir()
    for name in ("input.ovf", "input.vmdk", "input.iso", "sample_cfg.txt", "input.mf"):
        (d / name).write_bytes((COT / name).read_bytes())
    out = tmp_path / "input.ova"
    result = pack_directory(d, out)
    assert list(result.files) == ["input.ovf", "input.vmdk", "input.iso", "sample_cfg.txt"]
    with tarfile.open(out) as tar:
        assert tar.getnames() == ["input.ovf", "input.vmdk", "input.iso", "sample_cfg.txt", "input.mf"]
        assert tar.extractfile("input.iso").read() == (COT / "input.iso").read_bytes()
    report = validate_package(out)
    assert report.ok, [f.to_dict() for f in report.findings]
    assert report.files_checked == 4


def test_pack_converts_a_compressed_source_and_reports_format_mismatch(ovf_dir, tmp_path):
    d, raw = ovf_dir
    # a compressed qcow2: not readable directly, so qemu-img makes the streamOptimized copy
    (d / "disk.qcow2").unlink()
    subprocess.run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, os.fspath(d / "disk.qcow2")],
                   check=True)
    with open_raw(open_disk(d / "disk.qcow2").spec, SIZE) as reader:
        assert not reader.plain
    kept = pack_directory(d, tmp_path / "keep.ova")
    assert [f.rule for f in kept.findings] == ["VMF-DISK-020"]   # ovf:format says streamOptimized
    out = tmp_path / "conv.ova"
    result = pack_directory(d, out, disk_format="vmdk-stream")
    assert result.findings == []
    assert "disk.vmdk" in result.files
    dest = tmp_path / "back.qcow2"
    import_disk(out, "disk.vmdk", dest, "qcow2")
    assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(os.fspath(dest), "qcow2"))
    assert leftovers(tmp_path) == [] and leftovers(d) == []


def test_repack_members_of_an_ova_by_byte_range(packed, tmp_path):
    """OVA to OVA: a streamOptimized member is copied from its byte range, not re-encoded, even
    when streamOptimized output is asked for; a qcow2 member range is streamed through the writer."""
    out, raw, _ = packed
    m = next(m for m in members(out) if m.name == "disk.vmdk")
    disk = open_disk(out, m.offset, m.size)
    q = tmp_path / "d.qcow2"
    convert_disk(open_disk(raw), q, "qcow2")
    inner = tmp_path / "inner.ova"
    pack_ova(inner, "i.ovf", lambda w: b"<Envelope/>", [PackSource("q.qcow2", os.fspath(q), open_disk(q))])
    qm = next(m for m in members(inner) if m.name == "q.qcow2")
    sources = [PackSource("a.vmdk", os.fspath(out), disk, stream_vmdk=True),
               PackSource("b.vmdk", os.fspath(out), disk),
               PackSource("c.vmdk", os.fspath(inner), open_disk(inner, qm.offset, qm.size), stream_vmdk=True)]
    again = tmp_path / "again.ova"
    res = pack_ova(again, "x.ovf", lambda w: b"<Envelope/>", sources)
    original = out.read_bytes()[m.offset:m.offset + m.size]
    with tarfile.open(again) as tar:
        assert tar.extractfile("a.vmdk").read() == original
        assert tar.extractfile("b.vmdk").read() == original
        c = tar.extractfile("c.vmdk").read()
    assert c[:4] == b"KDMV" and c != original
    assert res.files["a.vmdk"].populated == res.files["c.vmdk"].populated
    for name in ("a.vmdk", "c.vmdk"):
        mm = next(x for x in members(again) if x.name == name)
        assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(os.fspath(again), "vmdk", mm.offset, mm.size))
    assert verify_ova(again).checked.keys() == {"x.ovf", "a.vmdk", "b.vmdk", "c.vmdk"}


def test_a_gzip_file_is_packed_as_it_is_and_imported_by_streaming(ovf_dir, tmp_path):
    from vmferry.validate import validate_package

    d, raw = ovf_dir
    vmdk = tmp_path / "s.vmdk"
    convert_disk(open_disk(raw), vmdk, "vmdk-stream")
    (d / "disk.qcow2").unlink()
    (d / "disk.vmdk.gz").write_bytes(gzip.compress(vmdk.read_bytes(), 1))
    xml = (d / "vm.ovf").read_bytes().replace(b'ovf:href="disk.qcow2"', b'ovf:compression="gzip" ovf:href="disk.vmdk.gz"')
    (d / "vm.ovf").write_bytes(xml)
    out = tmp_path / "gz.ova"
    pack_directory(d, out, disk_format="vmdk-stream")
    with tarfile.open(out) as tar:
        packed_xml = tar.extractfile("vm.ovf").read()
    assert b'ovf:compression="gzip"' in packed_xml
    assert validate_package(out).ok
    res = import_disk(out, "disk.vmdk.gz", tmp_path / "back.qcow2", "qcow2")
    assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(res.path, "qcow2"))
