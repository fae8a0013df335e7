"""Read once, verify once (ARCHITECTURE.md): a streamOptimized VMDK in an OVA converted by vmferry's own
writers (qcow2, raw, fixed VHD, the verbatim stream copy) has its manifest digest computed on the bytes
the conversion reads, in the same pass: no second reading by a hashing thread, no qemu-img. The qcow2
writer's images are checked by qemu-img itself (check, compare, map); altered bytes still stop the
conversion with the manifest's error and leave nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile

import pytest

from tests.disks.conftest import leftovers, make_raw
from vmferry.disks.ova_read import import_disk
from vmferry.disks.vmdk_stream import write_stream_vmdk
from vmferry.errors import ManifestMismatch
from vmferry.package.files import PackageFile

MIB = 1 << 20


@pytest.fixture
def read_once_only(monkeypatch):
    """The conversion may neither hash the member on a second reading nor hand it to qemu-img convert."""
    from vmferry.tools import qemu_img

    def refuse(*args, **kwargs):
        raise AssertionError("a second reading or qemu-img convert")

    monkeypatch.setattr(qemu_img, "convert", refuse)
    monkeypatch.setattr(PackageFile, "verified_in_place", refuse)
    monkeypatch.setattr(PackageFile, "check_stored", refuse)


def stream_ova(tmp_path, size: int, regions, *, name: str = "vm.ova") -> tuple[str, str]:
    src = make_raw(tmp_path / "src.raw", size, regions)
    vmdk = io.BytesIO()
    with open(src, "rb") as fh:
        write_stream_vmdk(lambda o, n: os.pread(fh.fileno(), n, o), size, vmdk.write)
    data, ovf = vmdk.getvalue(), b"<Envelope/>"
    mf = "".join(f"SHA256({n})= {hashlib.sha256(d).hexdigest()}\n" for n, d in (("vm.ovf", ovf), ("disk.vmdk", data)))
    path = tmp_path / name
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, body in (("vm.ovf", ovf), ("vm.mf", mf.encode()), ("disk.vmdk", data)):
            info = tarfile.TarInfo(member)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return os.fspath(path), src


def qemu(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", *argv], capture_output=True, text=True)


# 1 GiB + 3 MiB: three L2 tables' worth of guest space (one per 512 MiB), data in the first and the last,
# a partial last grain's worth at the end, zero grains left out
SIZE = (1 << 30) + 3 * MIB + 4096
REGIONS = [(0, 700_000), (5 * MIB, 65_536 * 3), (SIZE - 3 * MIB, 2 * MIB), (SIZE - 4096, 4096)]


def test_qcow2_written_by_vmferry_from_the_member_is_what_qemu_img_reads(tmp_path, read_once_only):
    ova, src = stream_ova(tmp_path, SIZE, REGIONS)
    out = tmp_path / "disk.qcow2"
    res = import_disk(ova, "disk.vmdk", out, "qcow2")
    assert res.virtual_size == SIZE and res.format == "qcow2"
    check = qemu("check", "--output=json", str(out))
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout)
    assert report.get("corruptions", 0) == 0 and report.get("leaks", 0) == 0
    info = json.loads(qemu("info", "--output=json", str(out)).stdout)
    assert info["virtual-size"] == SIZE and info["format-specific"]["data"]["compat"] == "1.1"
    assert info["cluster-size"] == 65536
    assert qemu("compare", "-f", "raw", "-F", "qcow2", src, str(out)).returncode == 0
    # only grains holding data are allocated: about 3.7 MiB of 1 GiB
    mapped = json.loads(qemu("map", "--output=json", str(out)).stdout)
    assert sum(e["length"] for e in mapped if e["data"]) < 6 * MIB
    assert os.path.getsize(out) < 8 * MIB
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("fmt", "qemu_fmt"), [("raw", "raw"), ("vhd-fixed", "vpc"), ("vmdk-stream", "vmdk")])
def test_the_other_own_writers_read_the_member_once_too(tmp_path, read_once_only, fmt, qemu_fmt):
    ova, src = stream_ova(tmp_path, 9 * MIB + 4096, [(0, 300_000), (4 * MIB, 2 * MIB), (9 * MIB, 4096)])
    out = tmp_path / f"disk.{fmt}"
    import_disk(ova, "disk.vmdk", out, fmt)
    if fmt == "vhd-fixed":
        from tests.disks.test_vhd_fixed import compare_vpc

        assert compare_vpc(out, src, "raw").returncode == 0
    else:
        assert qemu("compare", "-f", "raw", "-F", qemu_fmt, src, str(out)).returncode == 0


@pytest.mark.parametrize("fmt", ["qcow2", "raw", "vmdk-stream", "vhd"])
def test_an_altered_member_is_refused_by_its_manifest_line_and_nothing_is_left(tmp_path, fmt):
    ova, _src = stream_ova(tmp_path, 9 * MIB, [(0, 300_000), (4 * MIB, 2 * MIB)])
    with tarfile.open(ova) as tar:
        member = tar.getmember("disk.vmdk")
    with open(ova, "r+b") as fh:       # one byte inside a grain's deflate stream: it still inflates... or not
        at = member.offset_data + member.size // 2
        fh.seek(at)
        byte = fh.read(1)
        fh.seek(at)
        fh.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(ManifestMismatch):
        import_disk(ova, "disk.vmdk", tmp_path / "out.img", fmt)
    assert not (tmp_path / "out.img").exists() and leftovers(tmp_path) == []
