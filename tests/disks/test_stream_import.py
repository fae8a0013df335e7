"""gzip-compressed and chunked OVA members: streamed into the output through qemu-nbd, no
intermediate file; digests checked per chunk; lying streams refused."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct

import pytest

from tests.disks.conftest import leftovers, make_raw
from vmferry.disks import convert_disk, open_disk
from vmferry.disks.ova_read import import_disk
from vmferry.errors import DiskError, ManifestMismatch, PackageError
from vmferry.package.ova_writer import tar_header
from vmferry.tools import qemu_img
from vmferry.tools.qemu_img import ImageSpec

MiB = 1 << 20
SIZE = 3 * MiB + 7 * 512


def _ova(path, files: dict[str, bytes], manifest: bool = True) -> None:
    if manifest:
        mf = "".join(f"SHA256({n})= {hashlib.sha256(b).hexdigest()}\n" for n, b in files.items())
        files = {**files, "vm.mf": mf.encode()}
    with open(path, "wb") as f:
        for name, data in files.items():
            f.write(tar_header(name, len(data)) + data + bytes(-len(data) % 512))
        f.write(bytes(1024))


def _chunks(data: bytes, name: str, n: int) -> dict[str, bytes]:
    size = -(-len(data) // n)
    return {f"{name}.{i:09d}": data[i * size:(i + 1) * size] for i in range(n)}


@pytest.fixture
def stream_vmdk(tmp_path):
    raw = make_raw(tmp_path / "s.raw", SIZE, [(0, 150_000), (2 * MiB, 65536 * 2 + 512), (SIZE - 512, 512)], seed=4)
    vmdk = tmp_path / "s.vmdk"
    convert_disk(open_disk(raw), vmdk, "vmdk-stream")
    return raw, vmdk.read_bytes()


@pytest.fixture
def no_fallback(monkeypatch):
    """The streaming path must not fall back to joining the member into a temporary file."""
    import vmferry.disks.convert as convert

    def refuse(*args, **kwargs):
        raise AssertionError("fell back to a temporary copy")
    monkeypatch.setattr(convert, "convert_disk", refuse)


@pytest.mark.parametrize("fmt", ["qcow2", "raw", "vhd", "vhdx", "vmdk-stream"])
def test_gzip_then_chunked_streams_into_every_format(tmp_path, stream_vmdk, no_fallback, fmt):
    raw, body = stream_vmdk
    ova = tmp_path / "x.ova"
    _ova(ova, {"vm.ovf": b"<Envelope/>", **_chunks(gzip.compress(body, 6), "d.vmdk", 3)})
    out = tmp_path / "out" / f"d.{fmt}"
    out.parent.mkdir()
    res = import_disk(ova, "d.vmdk", out, fmt, compression="gzip", chunk_size=1)
    assert os.listdir(out.parent) == [out.name]
    back = open_disk(out)
    assert back.virtual_size == SIZE and res.virtual_size == SIZE
    assert qemu_img.compare(ImageSpec(raw, "raw"), back.spec)


def test_chunked_without_compression(tmp_path, stream_vmdk, no_fallback):
    raw, body = stream_vmdk
    ova = tmp_path / "x.ova"
    _ova(ova, {"vm.ovf": b"<Envelope/>", **_chunks(body, "d.vmdk", 4)})
    res = import_disk(ova, "d.vmdk", tmp_path / "d.qcow2", "qcow2", chunk_size=1)
    assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(res.path, "qcow2"))


def test_a_tampered_chunk_leaves_nothing(tmp_path, stream_vmdk):
    _, body = stream_vmdk
    parts = _chunks(gzip.compress(body, 6), "d.vmdk", 3)
    listed = {"vm.ovf": b"<Envelope/>", **parts}   # the descriptor is listed too, as DSP0243 requires
    mf = "".join(f"SHA256({n})= {hashlib.sha256(b).hexdigest()}\n" for n, b in listed.items())
    last = list(parts)[-1]
    parts[last] = parts[last][:-20] + bytes(20)   # still valid lengths, wrong bytes
    ova = tmp_path / "x.ova"
    _ova(ova, {"vm.ovf": b"<Envelope/>", **parts, "vm.mf": mf.encode()}, manifest=False)
    with pytest.raises((ManifestMismatch, DiskError)):
        import_disk(ova, "d.vmdk", tmp_path / "d.qcow2", "qcow2", compression="gzip", chunk_size=1)
    assert not (tmp_path / "d.qcow2").exists() and leftovers(tmp_path) == []


def test_lying_streams_are_refused(tmp_path, stream_vmdk):
    _, body = stream_vmdk
    data = bytearray(body)
    first = 128 * 512                     # the first grain marker follows the 64 KiB overhead
    struct.pack_into("<Q", data, first, 1 << 40)   # a grain far outside the 3 MiB disk
    ova = tmp_path / "x.ova"
    _ova(ova, {"vm.ovf": b"<Envelope/>", "d.vmdk": gzip.compress(bytes(data), 1)})
    with pytest.raises(DiskError, match="outside the disk"):
        import_disk(ova, "d.vmdk", tmp_path / "d.qcow2", "qcow2", compression="gzip")
    _ova(ova, {"vm.ovf": b"<Envelope/>", "d.vmdk": gzip.compress(body, 1)[:-5000]})
    with pytest.raises((DiskError, PackageError), match="truncated|ends early"):
        import_disk(ova, "d.vmdk", tmp_path / "d.raw", "raw", compression="gzip")
    assert sorted(os.listdir(tmp_path)) == ["s.raw", "s.vmdk", "x.ova"]


def test_gzip_of_another_format_goes_through_a_temporary_file(tmp_path, stream_vmdk):
    raw, _ = stream_vmdk
    q = tmp_path / "q.qcow2"
    convert_disk(open_disk(raw), q, "qcow2")
    ova = tmp_path / "x.ova"
    _ova(ova, {"vm.ovf": b"<Envelope/>", "q.qcow2": gzip.compress(q.read_bytes(), 1)})
    res = import_disk(ova, "q.qcow2", tmp_path / "back.vhdx", "vhdx", compression="gzip")
    assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(res.path, "vhdx"))
    assert leftovers(tmp_path) == []


def test_compression_and_chunks_are_recognised_without_being_told(tmp_path, stream_vmdk, no_fallback):
    from tests.conftest import run_vmferry

    raw, body = stream_vmdk
    ova = tmp_path / "x.ova"
    _ova(ova, {"vm.ovf": b"<Envelope/>", "g.vmdk": gzip.compress(body, 1), **_chunks(body, "c.vmdk", 2)})
    a = import_disk(ova, "g.vmdk", tmp_path / "a.qcow2", "qcow2")
    b = import_disk(ova, "c.vmdk", tmp_path / "b.qcow2", "qcow2")
    for res in (a, b):
        assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(res.path, "qcow2"))
    done = run_vmferry("disk", "convert", f"{ova}:g.vmdk", "-O", "raw", "-o", tmp_path / "c.raw")
    assert done.returncode == 0, done.stderr
    assert qemu_img.compare(ImageSpec(raw, "raw"), ImageSpec(os.fspath(tmp_path / "c.raw"), "raw"))
