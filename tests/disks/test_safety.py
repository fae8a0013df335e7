"""Interruption, free space and bad input: nothing partial, nothing stray, one clear line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import run_vmferry
from tests.disks.conftest import leftovers, make_raw
from vmferry.disks import convert_disk, open_disk
from vmferry.disks.safety import free_space
from vmferry.errors import DiskError

MiB = 1 << 20


def _start(args, cwd):
    env = dict(os.environ)
    env.pop("VMFERRY_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "vmferry", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _terminate_when_writing(proc, directory, expect_temp=True, deadline=60.0):
    """Send SIGTERM as soon as a temporary output exists (so the work is surely under way)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if leftovers(directory):
            break
        if proc.poll() is not None:
            pytest.fail(f"finished before it could be interrupted: {proc.communicate()}")
        time.sleep(0.005)
    time.sleep(0.2)
    assert proc.poll() is None, "finished before the signal: make the input bigger"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def big_random(tmp_path_factory):
    """32 MiB of random hex digits: compressible, so deflate really works (random bytes would be
    stored without deflating and convert too fast to be interrupted)."""
    d = tmp_path_factory.mktemp("big")
    path = d / "big.raw"
    with open(path, "wb") as f:
        for _ in range(32):
            f.write(os.urandom(MiB // 2).hex().encode())
    return path


def test_sigterm_during_conversion_leaves_nothing(big_random, tmp_path):
    out = tmp_path / "out.vmdk"
    # deflate level 9 is slow enough to be caught in the act
    proc = _start(["disk", "convert", big_random, "-O", "vmdk-stream", "--level", "9", "-o", out], tmp_path)
    code, _, err = _terminate_when_writing(proc, tmp_path)
    assert code == 130, err
    assert os.listdir(tmp_path) == []
    assert "Traceback" not in err


def test_sigterm_during_packing_leaves_nothing(big_random, tmp_path):
    from tests.conftest import COT
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "vm.ovf").write_bytes((COT / "vmware.ovf").read_bytes().replace(b"input.vmdk", b"big.raw")
                                 .replace(b' ovf:size="152576"', b""))
    os.link(big_random, pkg / "big.raw") if os.stat(big_random).st_dev == os.stat(pkg).st_dev \
        else (pkg / "big.raw").write_bytes(big_random.read_bytes())
    work = tmp_path / "out"
    work.mkdir()
    proc = _start(["pack", pkg, "--disk-format", "vmdk-stream", "--level", "9", "-o", work / "vm.ova"], tmp_path)
    code, _, err = _terminate_when_writing(proc, work)
    assert code == 130, err
    assert os.listdir(work) == []


def _small_fs(tmp_path):
    """A 4 MiB tmpfs or, failing that, a loop-mounted 4 MiB ext4 file; skip when neither mounts."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    tried = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", os.fspath(mnt)],
                           capture_output=True, text=True)
    if tried.returncode == 0:
        return mnt
    image = tmp_path / "small.ext4"
    with open(image, "wb") as f:
        f.truncate(4 * MiB)
    mkfs = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", os.fspath(image)], capture_output=True, text=True)
    loop = subprocess.run(["mount", "-o", "loop", os.fspath(image), os.fspath(mnt)], capture_output=True, text=True) \
        if mkfs.returncode == 0 else mkfs
    if loop.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: tmpfs: {tried.stderr.strip()}; "
                    f"loop: {loop.stderr.strip()}")
    lost = mnt / "lost+found"
    if lost.exists():
        lost.rmdir()
    return mnt


@pytest.fixture
def small_fs(tmp_path):
    mnt = _small_fs(tmp_path)
    yield mnt
    subprocess.run(["umount", os.fspath(mnt)], check=True)


def test_too_little_space_fails_before_writing(small_fs, tmp_path):
    raw = make_raw(tmp_path / "r.raw", 16 * MiB, [(0, 12 * MiB)], seed=2)
    assert free_space(small_fs) < 5 * MiB
    with pytest.raises(DiskError, match="not enough free space"):
        convert_disk(open_disk(raw), small_fs / "r.qcow2", "qcow2")
    assert os.listdir(small_fs) == []
    done = run_vmferry("disk", "convert", raw, "-O", "vmdk-stream", "-o", small_fs / "r.vmdk")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "not enough free space" in done.stderr
    assert os.listdir(small_fs) == []
    # a disk that fits goes through on the same file system
    fits = make_raw(tmp_path / "s.raw", 16 * MiB, [(0, 100_000)], seed=3)
    convert_disk(open_disk(fits), small_fs / "s.qcow2", "qcow2")
    assert os.listdir(small_fs) == ["s.qcow2"]


def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, odd_raw):
    good = tmp_path / "g.vmdk"
    convert_disk(open_disk(odd_raw), good, "vmdk-stream")
    trunc = tmp_path / "t.vmdk"
    trunc.write_bytes(good.read_bytes()[:30000])
    cases = ((["disk", "convert", trunc, "-O", "qcow2", "-o", tmp_path / "o.qcow2"], "t.vmdk"),
             (["disk", "convert", tmp_path / "missing.raw", "-O", "qcow2", "-o", tmp_path / "o.qcow2"],
              "missing.raw"),
             (["disk", "convert", odd_raw, "-O", "floppy", "-o", tmp_path / "o.img"], "floppy"),
             (["disk", "info", trunc], "t.vmdk"),
             (["unpack", trunc, "-o", tmp_path / "u"], "t.vmdk"))
    for args, named in cases:
        done = run_vmferry(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert named in done.stderr, done.stderr
    assert sorted(os.listdir(tmp_path)) == sorted(["g.vmdk", "t.vmdk", "odd.raw"])


def test_existing_output_needs_force(tmp_path, odd_raw):
    out = tmp_path / "o.qcow2"
    out.write_bytes(b"keep me")
    done = run_vmferry("disk", "convert", odd_raw, "-O", "qcow2", "-o", out)
    assert done.returncode == 2 and "--force" in done.stderr
    assert out.read_bytes() == b"keep me"
    done = run_vmferry("disk", "convert", odd_raw, "-O", "qcow2", "-o", out, "--force", "--json")
    assert done.returncode == 0, done.stderr
    assert open_disk(out).format == "qcow2"


def test_outputs_get_ordinary_permissions(tmp_path, odd_raw):
    old = os.umask(0o022)
    try:
        out = tmp_path / "p.vmdk"
        convert_disk(open_disk(odd_raw), out, "vmdk-stream")
    finally:
        os.umask(old)
    assert oct(os.stat(out).st_mode & 0o777) == oct(0o644)


def test_sigterm_while_qemu_img_converts_kills_it_and_leaves_nothing(big_random, tmp_path):
    # A streamOptimized source has compressed grains; to VHDX qemu-img does the conversion itself
    # (streamOptimized to streamOptimized is vmferry's own verified copy, too fast to interrupt), and
    # inflating 4 x 32 MiB of grains in one thread is slow enough to be interrupted.
    src = tmp_path / "src"
    src.mkdir()
    raw = src / "big4.raw"
    with open(raw, "wb") as out:
        for _ in range(4):
            out.write(big_random.read_bytes())
    vmdk = src / "big.vmdk"
    convert_disk(open_disk(raw), vmdk, "vmdk-stream")
    raw.unlink()
    work = tmp_path / "work"
    work.mkdir()
    proc = _start(["disk", "convert", vmdk, "-O", "vhdx", "-o", work / "again.vhdx"], tmp_path)
    code, _, err = _terminate_when_writing(proc, work)
    assert code == 130, err
    assert os.listdir(work) == []
    time.sleep(0.2)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert os.fspath(work).encode() not in f.read(), "qemu-img still running"
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
