"""Disk images cannot reach outside their package (issue 10, item 2).

Every hostile image of :mod:`tests.disks.hostile_images` (a backing file, data file, extent or parent
naming a host file; tables pointing past the end; a damaged streamOptimized VMDK) is put in an OVF
folder built from tests/data/cot/input.ovf (href and size pointing at it, a correct manifest) and in an
OVA, and run through every command that reads disks: exit 2, one stderr line naming the disk and the
problem, nothing written, and the host file's marker in no file vmferry left behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess

import pytest

from tests.conftest import COT, run_vmferry
from tests.disks.hostile_images import CASES, MARKER, qemu_img, write_secret
from tests.package.helpers import make_ova
from vmferry.disks.convert import convert_disk, open_disk
from vmferry.disks.image_check import check_image
from vmferry.errors import DamagedImage, UnsafeImage
from vmferry.tools.qemu_img import ImageSpec, compare

SIDE_FILES = ["input.iso", "sample_cfg.txt"]
DESCRIPTOR_CASES = {n for n in CASES if n.startswith("vmdk-extent")}


def make_package(root, case: str):
    """(package folder, disk name, host folder) for ``case`` under ``root``."""
    pkg, outside = root / "pkg", root / "outside"
    pkg.mkdir()
    write_secret(outside)
    builder, _ = CASES[case]
    disk = builder(pkg, outside)
    write_descriptor(pkg, disk)
    return pkg, disk, outside


def write_descriptor(pkg, disk: str) -> None:
    for name in SIDE_FILES:
        shutil.copy(COT / name, pkg / name)
    size = os.lstat(pkg / disk).st_size
    xml = (COT / "input.ovf").read_text().replace('ovf:href="input.vmdk" ovf:id="file1" ovf:size="152576"',
                                                   f'ovf:href="{disk}" ovf:id="file1" ovf:size="{size}"')
    assert disk in xml
    (pkg / "vm.ovf").write_text(xml)
    lines = []
    for name in ["vm.ovf", disk, *SIDE_FILES]:
        path = pkg / name
        if path.is_file() and not path.is_symlink():
            lines.append(f"SHA1({name})= {hashlib.sha1(path.read_bytes()).hexdigest()}\n")
    (pkg / "vm.mf").write_text("".join(lines))


def make_package_ova(pkg, disk: str, out) -> None:
    names = ["vm.ovf", "vm.mf", disk, *SIDE_FILES]
    make_ova(out, [(n, (pkg / n).read_bytes()) for n in names])


def outputs_hold_marker(root) -> list[str]:
    """Files under ``root`` (not the package, not the host folder) that hold the host file's bytes."""
    found = []
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in (str(root / "pkg"), str(root / "outside"))]
        for name in files:
            path = os.path.join(top, name)
            if os.path.isfile(path) and not os.path.islink(path) and MARKER[:40] in open(path, "rb").read():
                found.append(path)
    return found


def assert_refused(result: subprocess.CompletedProcess, root, disk: str, says: str, before: set[str]) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert disk in lines[0] and says.lower() in lines[0].lower(), lines[0]
    assert "internal error" not in lines[0] and "Traceback" not in result.stderr
    assert set(os.listdir(root)) == before, "something was written"
    assert outputs_hold_marker(root) == []


FOLDER_COMMANDS = {
    "disk-info": lambda pkg, disk, out: ["disk", "info", pkg / disk],
    "disk-convert": lambda pkg, disk, out: ["disk", "convert", pkg / disk, "-O", "vmdk-stream", "-o", out / ".."
                                            / "d.vmdk"],
    "convert-kvm": lambda pkg, disk, out: ["convert", pkg / "vm.ovf", "--to", "kvm", "-o", out,
                                           "--domain-type", "qemu"],
    "convert-vmware": lambda pkg, disk, out: ["convert", pkg / "vm.ovf", "--to", "vmware", "-o", out],
    "convert-dmtf": lambda pkg, disk, out: ["convert", pkg / "vm.ovf", "--to", "dmtf", "-o", out],
    "convert-vmware-ova": lambda pkg, disk, out: ["convert", pkg / "vm.ovf", "--to", "vmware", "--ova",
                                                  "-o", f"{out}.ova"],
    "pack": lambda pkg, disk, out: ["pack", pkg, "-o", f"{out}.ova"],
    "guest-image": lambda pkg, disk, out: ["guest", pkg / disk],          # libguestfs, after the check
    "guest-package": lambda pkg, disk, out: ["guest", pkg / "vm.ovf"],
    "guest-repair": lambda pkg, disk, out: ["guest", "repair", pkg / disk, "--for", "kvm", "-o", f"{out}.img"],
    "guest-repair-dry": lambda pkg, disk, out: ["guest", "repair", pkg / disk, "--for", "kvm", "--dry-run"],
    "guest-repair-package": lambda pkg, disk, out: ["guest", "repair", pkg / "vm.ovf", "--for", "kvm", "-o", out],
    "pack-stream": lambda pkg, disk, out: ["pack", pkg, "--disk-format", "vmdk-stream", "-o", f"{out}.ova"],
}


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """Every case built once (commands only read the package); root per case."""
    built = {}
    for case in CASES:
        root = tmp_path_factory.mktemp(case)
        built[case] = (root, *make_package(root, case))
    return built


def run_cli(argv, capfd) -> subprocess.CompletedProcess:
    """The vmferry command in this process (the matrix is large; one interpreter start per case would
    dominate): the same ``main`` the console script runs, its real stdout and stderr captured."""
    from vmferry.cli.main import main

    os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
    capfd.readouterr()
    code = main([os.fspath(a) for a in argv])
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(argv, code, out, err)


@pytest.mark.parametrize("command", sorted(FOLDER_COMMANDS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_image_in_an_ovf_folder_is_refused(packages, case, command, capfd):
    root, pkg, disk, _outside = packages[case]
    before = set(os.listdir(root))
    result = run_cli(FOLDER_COMMANDS[command](pkg, disk, root / "out"), capfd)
    assert_refused(result, root, disk, CASES[case][1], before)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_image_through_the_real_command(packages, case):
    """The installed command (a child process), once per case: `disk convert`."""
    root, pkg, disk, _outside = packages[case]
    before = set(os.listdir(root))
    result = run_vmferry(*FOLDER_COMMANDS["disk-convert"](pkg, disk, root / "out"), timeout=120)
    assert_refused(result, root, disk, CASES[case][1], before)


OVA_COMMANDS = {
    "disk-info": lambda ova, disk, out: ["disk", "info", f"{ova}:{disk}"],
    "disk-convert": lambda ova, disk, out: ["disk", "convert", f"{ova}:{disk}", "-O", "qcow2", "-o", f"{out}.qcow2"],
    "convert-kvm": lambda ova, disk, out: ["convert", ova, "--to", "kvm", "-o", out, "--domain-type", "qemu"],
    "convert-vmware": lambda ova, disk, out: ["convert", ova, "--to", "vmware", "-o", out],
    "convert-dmtf-ova": lambda ova, disk, out: ["convert", ova, "--to", "dmtf", "--ova", "-o", f"{out}.ova"],
}


@pytest.mark.parametrize("command", sorted(OVA_COMMANDS))
@pytest.mark.parametrize("case", sorted(set(CASES) - DESCRIPTOR_CASES))
def test_hostile_image_in_an_ova_is_refused(packages, case, command, capfd):
    """Inside an archive an image can name no other file at all; damaged tables are refused as in a folder."""
    root, pkg, disk, _outside = packages[case]
    ova = root / "vm.ova"
    if not ova.exists():
        make_package_ova(pkg, disk, ova)
    before = set(os.listdir(root))
    result = run_cli(OVA_COMMANDS[command](ova, disk, root / "out"), capfd)
    says = CASES[case][1]
    if case.startswith("qcow2-backing") or case == "qcow2-data-file":
        says = "inside an archive"
    assert_refused(result, root, disk, says, before)


# -- the same package, clean, goes through: the refusals above are the check, not the harness ----------

@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    pkg = root / "pkg"
    pkg.mkdir()
    write_secret(root / "outside")
    raw = pkg / "src.raw"
    raw.write_bytes(os.urandom(300_000) + bytes((1 << 20) - 300_000))
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(pkg / "base.qcow2"))
    qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2", str(pkg / "disk.qcow2"))
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 512k 64k", str(pkg / "disk.qcow2")],
                   check=True, capture_output=True)
    write_descriptor(pkg, "disk.qcow2")
    return root, pkg


@pytest.mark.parametrize("command", ["disk-convert", "convert-kvm", "convert-vmware", "pack-stream"])
def test_backing_file_inside_the_package_is_followed(clean, command):
    """A qcow2 whose backing file is a sibling in the package converts, with the backing's data."""
    root, pkg = clean
    out = root / f"out-{command}"
    result = run_vmferry(*FOLDER_COMMANDS[command](pkg, "disk.qcow2", out),
                         env={"LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert outputs_hold_marker(root) == []


def test_pack_keeping_disks_refuses_a_disk_that_names_other_files(clean, capfd):
    """An archive member can name no other file: pack writes such a disk whole, or refuses to copy it."""
    root, pkg = clean
    result = run_cli(["pack", pkg, "-o", root / "keep.ova"], capfd)
    assert result.returncode == 2 and "base.qcow2" in result.stderr and "streamOptimized" in result.stderr
    assert not (root / "keep.ova").exists()


def test_backing_chain_is_given_to_qemu_explicitly(clean):
    root, pkg = clean
    disk = open_disk(pkg / "disk.qcow2")
    assert [r.kind for r in disk.header.references] == ["backing"]
    assert disk.spec.backing is not None and disk.spec.backing.path == os.fspath(pkg / "base.qcow2")
    node = disk.spec.node()
    assert node["file"] == {"driver": "file", "filename": os.fspath(pkg / "disk.qcow2")}
    assert node["backing"]["backing"] is None      # the base names nothing, and qemu is told so
    out = root / "flat.raw"
    convert_disk(disk, out, "raw")
    data = out.read_bytes()
    assert data[:300_000] == (pkg / "src.raw").read_bytes()[:300_000]
    assert data[512 << 10:(512 << 10) + 65536] == b"\x5a" * 65536
    assert compare(ImageSpec(os.fspath(out), "raw"), disk.spec)


def test_every_qemu_img_argv_names_the_format_and_disables_foreign_backing(tmp_path):
    """`-f FMT` and a json: graph with a fixed file driver and "backing": null, for ranges too."""
    qemu_img("create", "-q", "-f", "qcow2", str(tmp_path / "a.qcow2"), "1M")
    for spec in (ImageSpec(os.fspath(tmp_path / "a.qcow2"), "qcow2"),
                 ImageSpec(os.fspath(tmp_path / "a.qcow2"), "qcow2", 0, os.path.getsize(tmp_path / "a.qcow2"))):
        argv = spec.argv()
        assert argv[0] == "-f" and argv[1] == "qcow2" and argv[2].startswith("json:")
        assert '"backing":null' in argv[2] and '"driver":"file"' in argv[2]
    # a path that looks like a protocol is a file name, never parsed as nbd:/json:
    odd = tmp_path / "nbd:127.0.0.1:9"
    shutil.copy(tmp_path / "a.qcow2", odd)
    assert open_disk(odd).virtual_size == 1 << 20


@pytest.mark.parametrize("case", sorted(CASES))
def test_library_refuses_with_a_typed_error(packages, case):
    root, pkg, disk, _outside = packages[case]
    with pytest.raises((UnsafeImage, DamagedImage)) as caught:
        check_image(pkg / disk)
    assert str(pkg / disk) in str(caught.value) or disk in str(caught.value)
    assert "\n" not in str(caught.value)


def test_clean_images_of_every_format_pass_the_check(tmp_path):
    raw = tmp_path / "r.raw"
    raw.write_bytes(os.urandom(200_000) + bytes((3 << 20) - 200_000))
    made = {}
    for fmt, opts in [("qcow2", []), ("qcow2", ["-o", "compat=0.10"]), ("qcow2", ["-c"]),
                      ("qcow2", ["-o", "extended_l2=on"]), ("vmdk", ["-o", "subformat=monolithicSparse"]),
                      ("vmdk", ["-o", "subformat=streamOptimized"]), ("vmdk", ["-o", "subformat=monolithicFlat"]),
                      ("vmdk", ["-o", "subformat=twoGbMaxExtentSparse"]), ("vpc", []),
                      ("vpc", ["-o", "subformat=fixed"]), ("vhdx", []), ("vdi", [])]:
        out = tmp_path / f"{len(made)}.{fmt}"
        qemu_img("convert", "-f", "raw", "-O", fmt, *opts, str(raw), str(out))
        header = check_image(out)
        assert header.virtual_size >= 3 << 20, (fmt, opts)
        made[out] = header
        assert compare(ImageSpec(os.fspath(raw), "raw"), open_disk(out).spec), (fmt, opts)
    flat = next(h for p, h in made.items() if h.format == "vmdk-flat")
    assert len(flat.extents) == 1 and flat.extents[0].kind == "FLAT"


def test_info_json_lists_what_was_checked_and_the_files_named(clean):
    import json

    root, pkg = clean
    done = run_vmferry("disk", "info", pkg / "disk.qcow2", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["references"] == [{"kind": "backing", "name": "base.qcow2", "path": os.fspath(pkg / "base.qcow2")}]
    assert "L2" in doc["checked"]


def test_a_decompressed_copy_names_no_file(tmp_path, capfd):
    """A gzip-compressed qcow2 in an OVF folder is decompressed into a temporary folder: there it may name
    no backing file at all, even one that sits beside it in the package (qemu would look in the temporary
    folder)."""
    import gzip

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    secret = write_secret(tmp_path / "outside")
    shutil.copy(secret, pkg / "base.raw")
    qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", "base.raw", str(pkg / "plain.qcow2"))
    (pkg / "disk.qcow2").write_bytes(gzip.compress((pkg / "plain.qcow2").read_bytes()))
    (pkg / "plain.qcow2").unlink()
    write_descriptor(pkg, "disk.qcow2")
    xml = (pkg / "vm.ovf").read_text().replace('ovf:href="disk.qcow2"', 'ovf:compression="gzip" ovf:href="disk.qcow2"')
    (pkg / "vm.ovf").write_text(xml)
    (pkg / "vm.mf").unlink()
    before = set(os.listdir(tmp_path))
    for target in ("kvm", "vmware"):
        result = run_cli(["convert", pkg / "vm.ovf", "--to", target, "-o", tmp_path / "out"], capfd)
        assert result.returncode == 2, result.stderr
        line = result.stderr.strip().splitlines()
        assert len(line) == 1 and "disk.qcow2" in line[0] and "compressed or chunked" in line[0], line
        assert set(os.listdir(tmp_path)) == before
        assert not any(MARKER[:40] in p.read_bytes() for p in tmp_path.rglob("*")
                       if p.is_file() and "pkg" not in p.parts and "outside" not in p.parts)


@pytest.fixture(scope="module")
def corrupt_grain(tmp_path_factory):
    from tests.disks.hostile_images import vmdk_stream_corrupt_deflate

    root = tmp_path_factory.mktemp("deflate")
    pkg = root / "pkg"
    pkg.mkdir()
    write_secret(root / "outside")
    disk = vmdk_stream_corrupt_deflate(pkg, root / "outside")
    write_descriptor(pkg, disk)
    return root, pkg, disk


@pytest.mark.parametrize("command", ["convert-vmware", "convert-dmtf", "convert-vmware-ova", "pack", "pack-stream",
                                     "disk-convert", "convert-kvm"])
def test_a_streamoptimized_copy_verifies_every_grain(corrupt_grain, command, capfd):
    """Copied byte for byte (same format) the grains are inflated while copied; converted, qemu-img or
    vmferry's own writers (qcow2 for kvm, raw, fixed VHD) read them: either way a grain that does not
    inflate stops the command and nothing is written."""
    root, pkg, disk = corrupt_grain
    before = set(os.listdir(root))
    result = run_cli(FOLDER_COMMANDS[command](pkg, disk, root / "out"), capfd)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and disk in lines[0], lines
    assert any(said in lines[0] for said in ("does not inflate", "error while reading", "is corrupt")), lines[0]
    assert set(os.listdir(root)) == before


@pytest.mark.parametrize("block", [1, 509, 4096, 1 << 20])
def test_grain_verifier_accepts_clean_streams_fed_in_any_blocks_and_refuses_truncation(tmp_path, block):
    from vmferry.disks.vmdk_verify import GrainVerifier

    raw = tmp_path / "r.raw"
    raw.write_bytes(os.urandom(150_000) + bytes((1 << 20) - 150_000))
    ours, theirs = tmp_path / "ours.vmdk", tmp_path / "qemu.vmdk"
    convert_disk(open_disk(raw), ours, "vmdk-stream")
    qemu_img("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", str(raw), str(theirs))
    for path in (ours, theirs):
        data = path.read_bytes()
        v = GrainVerifier(str(path))
        for i in range(0, len(data), block if block > 1 else 977):
            v.feed(data[i:i + (block if block > 1 else 977)])
        v.close()
    first = struct.unpack_from("<Q", ours.read_bytes(), 64)[0] * 512
    v = GrainVerifier("cut.vmdk")
    v.feed(ours.read_bytes()[:first + 100])      # ends inside the first grain
    with pytest.raises(DamagedImage, match="ends inside"):
        v.close()


def test_data_file_inside_the_folder_is_given_to_qemu_explicitly(tmp_path):
    """A qcow2 keeping its data in a sibling raw file: allowed, and qemu gets that file as the data-file
    node (never the name from the header)."""
    raw = tmp_path / "src.raw"
    raw.write_bytes(os.urandom(1 << 20))
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "data_file=data.raw,data_file_raw=on",
                    "src.raw", "disk.qcow2"], check=True, capture_output=True, cwd=tmp_path)
    disk = open_disk(tmp_path / "disk.qcow2")
    assert [(r.kind, r.name) for r in disk.header.references] == [("data-file", "data.raw")]
    assert disk.spec.node()["data-file"] == {"driver": "file", "filename": os.fspath(tmp_path / "data.raw")}
    out = tmp_path / "out.vmdk"
    convert_disk(disk, out, "vmdk-stream")
    assert compare(ImageSpec(os.fspath(raw), "raw"), open_disk(out).spec)
