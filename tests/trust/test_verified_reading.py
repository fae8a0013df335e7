"""The package reader, end to end: tampered, truncated, short, incomplete and escaping packages built
from the real COT sample (input.ovf + input.vmdk + its SHA1 manifest) are refused by every command that
reads them — exit 2, one stderr line naming the file, nothing written — and the clean package converts.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.conftest import COT, run_vmferry
from tests.package.helpers import make_ova

FILES = ["input.ovf", "input.vmdk", "input.iso", "sample_cfg.txt"]
TARGETS = ["dmtf", "vmware", "virtualbox", "xen", "kvm"]
DISK = "input.vmdk"


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def manifest(files: dict[str, bytes]) -> bytes:
    return "".join(f"SHA1({n})= {sha1(b)}\n" for n, b in files.items()).encode()


def originals() -> dict[str, bytes]:
    return {n: (COT / n).read_bytes() for n in FILES}


def flipped(data: bytes, at: int = 70_000) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def folder(tmp: Path, files: dict[str, bytes], mf: bytes | None, name: str = "pkg") -> Path:
    d = tmp / name
    d.mkdir()
    for n, b in files.items():
        (d / n).write_bytes(b)
    if mf is not None:
        (d / "input.mf").write_bytes(mf)
    return d


def ova(tmp: Path, members: list[tuple[str, bytes]], name: str = "pkg.ova") -> Path:
    return make_ova(tmp / name, members)


def listing(files: dict[str, bytes], mf: bytes | None) -> list[tuple[str, bytes]]:
    out = [("input.ovf", files["input.ovf"])]
    if mf is not None:
        out.append(("input.mf", mf))
    return out + [(n, b) for n, b in files.items() if n != "input.ovf"]


def refused(result, name: str, out_root: Path, *, before: set[str]) -> None:
    """exit 2, exactly one stderr line naming ``name``, no traceback, nothing new left in ``out_root``."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0], lines[0]
    assert "internal error" not in lines[0] and "Traceback" not in result.stderr
    assert set(os.listdir(out_root)) == before, sorted(set(os.listdir(out_root)) - before)


def commands(source: Path, out: Path, *, member: str = DISK, pack: bool = False, unpack: bool = False):
    """(label, argv) of every command that reads the package's content and writes an output."""
    cmds = [(f"convert --to {t}", ["convert", source, "--to", t, "-o", out / f"c-{t}"]) for t in TARGETS]
    cmds.append(("convert --ova", ["convert", source, "--to", "vmware", "--ova", "-o", out / "c.ova"]))
    if source.suffix == ".ova":
        cmds.append(("disk convert", ["disk", "convert", f"{source}:{member}", "-O", "qcow2", "-o", out / "d.qcow2"]))
    if unpack:
        cmds.append(("unpack", ["unpack", source, "-o", out / "u"]))
    if pack:
        cmds.append(("pack", ["pack", source.parent if source.suffix == ".ovf" else source, "-o", out / "p.ova"]))
    return cmds


def assert_all_refused(tmp: Path, source: Path, name: str, **kw) -> None:
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    before = set(os.listdir(out))
    for label, argv in commands(source, out, **kw):
        result = run_vmferry(*argv, timeout=120)
        try:
            refused(result, name, out, before=before)
        except AssertionError as exc:
            raise AssertionError(f"{label}: {exc}") from None


# --- clean packages ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_clean_package_converts_to_every_target_from_a_folder_and_an_ova(tmp_path):
    files = originals()
    src = folder(tmp_path, files, manifest(files)) / "input.ovf"
    archive = ova(tmp_path, listing(files, manifest(files)))
    for source in (src, archive):
        out = tmp_path / f"out-{source.suffix[1:]}"
        out.mkdir()
        for label, argv in commands(source, out, pack=source.suffix == ".ovf", unpack=source.suffix == ".ova"):
            result = run_vmferry(*argv, timeout=300)
            assert result.returncode in (0, 1), (label, result.stderr)
            assert "VMF-PKG-004" not in result.stdout
    assert (tmp_path / "out-ova" / "u" / DISK).read_bytes() == files[DISK]


def test_a_package_without_manifest_converts_with_a_warning_that_nothing_was_verified(tmp_path):
    files = originals()
    src = folder(tmp_path, files, None) / "input.ovf"
    result = run_vmferry("convert", src, "--to", "dmtf", "-o", tmp_path / "o")
    assert result.returncode in (0, 1), result.stderr
    assert "VMF-PKG-004" in result.stdout and "not verified" in result.stdout
    kvm = run_vmferry("convert", src, "--to", "kvm", "-o", tmp_path / "k", "--json")
    assert "VMF-PKG-004" in kvm.stdout


# --- damaged content ------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("container", ["folder", "ova"])
def test_one_flipped_disk_byte_is_refused_everywhere(tmp_path, container):
    files = originals()
    mf = manifest(files)
    files[DISK] = flipped(files[DISK])
    if container == "folder":
        src = folder(tmp_path, files, mf) / "input.ovf"
        assert_all_refused(tmp_path, src, DISK, pack=True)
    else:
        src = ova(tmp_path, listing(files, mf))
        assert_all_refused(tmp_path, src, DISK, unpack=True)


@pytest.mark.slow
def test_a_flipped_byte_is_refused_also_when_a_decoy_manifest_comes_first(tmp_path):
    files = originals()
    mf = manifest(files)
    files[DISK] = flipped(files[DISK])
    decoy = manifest(files)                      # matches the tampered disk
    src = ova(tmp_path, [("00.mf", decoy), *listing(files, mf)])
    assert_all_refused(tmp_path, src, DISK, unpack=True)


@pytest.mark.slow
def test_a_duplicated_manifest_line_is_refused(tmp_path):
    files = originals()
    good = manifest(files)
    files[DISK] = flipped(files[DISK])
    mf = good + f"SHA1({DISK})= {sha1(files[DISK])}\n".encode()   # the last line would match
    src = ova(tmp_path, listing(files, mf))
    assert_all_refused(tmp_path, src, "input.mf", unpack=True)
    validate = run_vmferry("validate", src)   # like every command: exit 2, one line naming the manifest
    refused(validate, "input.mf", tmp_path / "out", before=set(os.listdir(tmp_path / "out")))
    assert "listed twice" in validate.stderr


def test_a_manifest_naming_an_absent_file_is_refused_by_unpack(tmp_path):
    files = originals()
    mf = manifest(files) + f"SHA1(ghost.vmdk)= {sha1(b'x')}\n".encode()
    src = ova(tmp_path, listing(files, mf))
    out = tmp_path / "out"
    out.mkdir()
    result = run_vmferry("unpack", src, "-o", out / "u")
    refused(result, "input.mf", out, before=set())
    assert "ghost.vmdk" in result.stderr


@pytest.mark.slow
def test_a_truncated_ova_is_refused_everywhere(tmp_path):
    files = originals()
    src = ova(tmp_path, listing(files, manifest(files)))
    data = src.read_bytes()
    at = data.index(files[DISK][:4096]) + 50_000
    src.write_bytes(data[:at])
    assert_all_refused(tmp_path, src, "pkg.ova", unpack=True)


@pytest.mark.slow
@pytest.mark.parametrize("container", ["folder", "ova"])
def test_a_disk_shorter_than_its_ovf_size_is_refused(tmp_path, container):
    files = originals()
    files[DISK] = files[DISK][:-512]
    mf = manifest(files)                          # the manifest agrees: only ovf:size tells
    if container == "folder":
        src = folder(tmp_path, files, mf) / "input.ovf"
        assert_all_refused(tmp_path, src, DISK, pack=True)
    else:
        src = ova(tmp_path, listing(files, mf))
        assert_all_refused(tmp_path, src, DISK, unpack=True)


def _chunked(files: dict[str, bytes], n: int = 3) -> tuple[dict[str, bytes], int]:
    disk = files.pop(DISK)
    size = -(-len(disk) // n)
    for i in range(n):
        files[f"{DISK}.{i:09d}"] = disk[i * size:(i + 1) * size]
    xml = files["input.ovf"].decode()
    xml = re.sub(r'(<ovf:File ovf:href="input.vmdk")', rf'\1 ovf:chunkSize="{size}"', xml, count=1)
    files["input.ovf"] = xml.encode()
    return files, size


@pytest.mark.slow
@pytest.mark.parametrize("with_manifest", [True, False])
def test_a_missing_chunk_is_refused_not_silently_skipped(tmp_path, with_manifest):
    files, _ = _chunked(originals())
    mf = manifest(files) if with_manifest else None
    assert "chunkSize" in files["input.ovf"].decode()
    del files[f"{DISK}.000000001"]
    for container in ("folder", "ova"):
        sub = tmp_path / container
        sub.mkdir()
        if container == "folder":
            src = folder(sub, files, mf) / "input.ovf"
        else:
            src = ova(sub, listing(files, mf))
        name = "input.mf" if with_manifest else DISK
        assert_all_refused(sub, src, name, unpack=container == "ova")


def test_complete_chunks_are_joined_and_converted(tmp_path):
    files, _ = _chunked(originals())
    src = ova(tmp_path, listing(files, manifest(files)))
    result = run_vmferry("convert", src, "--to", "kvm", "-o", tmp_path / "k")
    assert result.returncode in (0, 1), result.stderr
    assert (tmp_path / "k" / "input.qcow2").exists()


def test_a_gzip_disk_inflating_far_past_its_capacity_is_refused(tmp_path):
    files = originals()
    xml = files["input.ovf"].decode()
    bomb = gzip.compress(bytes(256 << 20), 9)         # 256 MiB of zeros, ~250 KiB compressed
    xml = xml.replace('ovf:href="input.vmdk" ovf:id="file1" ovf:size="152576"',
                      f'ovf:compression="gzip" ovf:href="input.vmdk" ovf:id="file1" ovf:size="{len(bomb)}"')
    xml = xml.replace('ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30"',
                      'ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^20"')   # 1 MiB
    assert "gzip" in xml and "2^20" in xml
    files["input.ovf"], files[DISK] = xml.encode(), bomb
    src = ova(tmp_path, listing(files, manifest(files)))
    out = tmp_path / "out"
    out.mkdir()
    for target in ("kvm", "dmtf"):
        result = run_vmferry("convert", src, "--to", target, "-o", out / target)
        refused(result, DISK, out, before=set())
        assert "decompresses to more than" in result.stderr


# --- escaping the package ---------------------------------------------------------------------------

@pytest.mark.slow
def test_a_sub_folder_linked_out_of_the_package_is_refused(tmp_path):
    files = originals()
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = b"HOST-SECRET-" * 20000
    (outside / DISK).write_bytes(files[DISK][:65536] + secret[: len(files[DISK]) - 65536])
    files["input.ovf"] = files["input.ovf"].replace(b'ovf:href="input.vmdk"', b'ovf:href="sub/input.vmdk"')
    del files[DISK]
    d = folder(tmp_path, files, None)
    os.symlink(outside, d / "sub")
    assert_all_refused(tmp_path, d / "input.ovf", "sub")
    for path in (tmp_path / "out").rglob("*"):
        assert not path.is_file() or b"HOST-SECRET" not in path.read_bytes()


def test_pack_refuses_a_linked_disk(tmp_path):
    files = originals()
    elsewhere = tmp_path / "elsewhere.vmdk"
    elsewhere.write_bytes(files[DISK])
    d = folder(tmp_path, {n: b for n, b in files.items() if n != DISK}, None)
    os.symlink(elsewhere, d / DISK)
    out = tmp_path / "out"
    out.mkdir()
    result = run_vmferry("pack", d, "-o", out / "p.ova")
    refused(result, DISK, out, before=set())
    assert "symbolic link" in result.stderr


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "x.ova"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    out.mkdir()
    for argv in (["unpack", fifo, "-o", out / "u"], ["unpack", fifo, "--verify-only"],
                 ["disk", "info", f"{fifo}:{DISK}"], ["validate", fifo], ["inspect", fifo],
                 ["convert", fifo, "--to", "kvm", "-o", out / "k"], ["disk", "convert", f"{fifo}:{DISK}",
                                                                  "-O", "raw", "-o", out / "d.raw"]):
        result = run_vmferry(*argv, timeout=20)
        refused(result, "x.ova", out, before=set())
        assert "FIFO" in result.stderr


def test_a_damaged_tar_header_after_the_first_member_is_an_error(tmp_path):
    files = originals()
    src = ova(tmp_path, listing(files, manifest(files)))
    with tarfile.open(src) as tar:
        second = tar.getmembers()[1].offset
    data = bytearray(src.read_bytes())
    data[second + 148:second + 156] = b"garbage!"          # the header checksum
    src.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    for argv in (["unpack", src, "-o", out / "u"], ["unpack", src, "--verify-only"]):
        result = run_vmferry(*argv)
        refused(result, "pkg.ova", out, before=set())
        assert "damaged" in result.stderr


@pytest.mark.slow
def test_nothing_is_left_when_a_late_file_fails_after_others_were_written(tmp_path):
    """The ISO (after the disk) is the altered one: the converted disk must not survive."""
    files = originals()
    mf = manifest(files)
    files["input.iso"] = flipped(files["input.iso"], 1000)
    src = folder(tmp_path, files, mf) / "input.ovf"
    assert_all_refused(tmp_path, src, "input.iso", pack=True)
    assert not any(p.name.startswith(".") for p in (tmp_path / "pkg").iterdir())
    shutil.rmtree(tmp_path / "out")


# --- certificate ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_certificate_is_verified_before_any_file_is_used(tmp_path):
    from tests.package.test_certificate import _signed_ova

    good = _signed_ova(tmp_path)
    result = run_vmferry("convert", good, "--to", "kvm", "-o", tmp_path / "ok")
    assert result.returncode in (0, 1), result.stderr
    assert "VMF-PKG-022" in result.stdout            # self-signed: reported, not refused
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = _signed_ova(bad_dir, tamper_manifest=True)
    out = tmp_path / "out"
    out.mkdir()
    for argv in (["convert", bad, "--to", "kvm", "-o", out / "k"], ["convert", bad, "--to", "dmtf", "-o", out / "d"],
                 ["unpack", bad, "-o", out / "u"],
                 ["disk", "convert", f"{bad}:ubuntu.2.0-disk1.vmdk", "-O", "raw", "-o", out / "d.raw"]):
        result = run_vmferry(*argv)
        refused(result, "ubuntu.2.0.cert", out, before=set())
        assert "does not verify" in result.stderr


def test_pack_refuses_a_linked_descriptor(tmp_path):
    files = originals()
    elsewhere = tmp_path / "elsewhere.ovf"
    elsewhere.write_bytes(files["input.ovf"])
    d = folder(tmp_path, {n: b for n, b in files.items() if n != "input.ovf"}, None)
    os.symlink(elsewhere, d / "input.ovf")
    out = tmp_path / "out"
    out.mkdir()
    result = run_vmferry("pack", d, "-o", out / "p.ova")
    refused(result, "input.ovf", out, before=set())


# --- the reader's API -------------------------------------------------------------------------------

def test_a_consumer_that_stops_at_the_last_byte_has_had_the_digest_checked(tmp_path):
    from vmferry.errors import ManifestMismatch
    from vmferry.package import open_package

    files = originals()
    mf = manifest(files)
    files[DISK] = flipped(files[DISK])
    pkg = open_package(ova(tmp_path, listing(files, mf)))
    f = pkg.file(DISK)
    blocks, got = f.blocks(), 0
    with pytest.raises(ManifestMismatch, match=DISK):
        while got < len(files[DISK]):      # never asks past the last byte
            got += len(next(blocks))
    assert got == 0
    with pytest.raises(ManifestMismatch, match=DISK), f.verified_in_place() as check:
        check()
    clean = originals()
    pkg = open_package(ova(tmp_path, listing(clean, manifest(clean)), "clean.ova"))
    assert b"".join(pkg.file(DISK).blocks()) == clean[DISK]
    assert pkg.verify_integrity() == [] and pkg.file(DISK).in_place[1:] == (pkg.members[DISK].offset, len(clean[DISK]))


def test_unpack_leaves_url_references_alone(tmp_path):
    files = originals()
    files["input.ovf"] = files["input.ovf"].replace(
        b'<ovf:File ovf:href="input.vmdk"',
        b'<ovf:File ovf:href="http://example.com/extra.iso" ovf:id="url1" />\n    <ovf:File ovf:href="input.vmdk"', 1)
    assert b"example.com" in files["input.ovf"]
    src = ova(tmp_path, listing(files, manifest(files)))
    result = run_vmferry("unpack", src, "-o", tmp_path / "u")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "u" / DISK).read_bytes() == files[DISK]


@pytest.mark.slow
def test_read_only_commands_refuse_a_flipped_disk_byte_too(tmp_path):
    """check (with the guest inspected from the disk), validate and guest read the disk: exit 2 too."""
    files = originals()
    mf = manifest(files)
    files[DISK] = flipped(files[DISK])
    src = folder(tmp_path, files, mf) / "input.ovf"
    archive = ova(tmp_path, listing(files, mf))
    for argv in (["check", src, "--target", "kvm"], ["validate", src], ["guest", src], ["guest", archive],
                 ["check", archive, "--target", "vmware"], ["unpack", archive, "--verify-only"]):
        result = run_vmferry(*argv, timeout=300)
        refused(result, DISK, tmp_path, before=set(os.listdir(tmp_path)))
