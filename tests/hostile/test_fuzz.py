"""Seeded random mutations of real packages, beside the hand-written hostile cases: byte flips (anywhere, or
in the tar headers and descriptor at the front), truncation, zeroed, repeated or inserted blocks, numbers
and names in the XML replaced by hostile values; as OVAs, and as descriptors in a folder. Every command
either accepts the input (exit 0 or 1, its outputs whole) or refuses it in one line with exit 2, writing
nothing; never a traceback, a hang or a stray file. The seeds are fixed: a failure names its mutation."""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from tests.hostile.runner import ForkServer

DATA = Path(__file__).parent.parent / "data"
PACKAGES = [("cot", "vmware.ovf", ["input.vmdk"]), ("cot", "ubuntu.2.0.ovf", ["ubuntu.2.0-disk1.vmdk"]),
            ("cot", "input.ovf", ["input.vmdk", "input.iso", "sample_cfg.txt"]), ("cot", "csr1000v.ovf", []),
            ("virt-v2v", "test-i-ova-two-disks.ovf", []), ("ovirt", "engine-ova-rhel7.ovf", [])]
COMMANDS = [["inspect", "{t}", "--json"], ["check", "{t}", "--target", "vmware"],
            ["convert", "{t}", "--to", "dmtf", "-o", "{o}"],
            ["convert", "{t}", "--to", "kvm", "--descriptor-only", "-o", "{o}"]]
OVA_COMMANDS = [["unpack", "{t}", "--verify-only"], ["convert", "{t}", "--to", "openstack", "--no-guest", "-o", "{o}"]]
HOSTILE_NUMBERS = [b"0", b"-1", b"99999999999999999999", b"1e9", b"", b"4294967296", b"18446744073709551616"]
HOSTILE_NAMES = [b"../../etc/passwd", b"/etc/passwd", b"a" * 300, b"\xc3\x28", b"json:{}", b"x.vmdk"]


def mutate(data: bytes, rnd: random.Random) -> tuple[bytes, str]:
    b = bytearray(data)
    kind = rnd.choice(["flip", "flip-front", "truncate", "zero-block", "repeat-block", "xml-number", "xml-name",
                       "insert"])
    if kind == "flip":
        for _ in range(rnd.randint(1, 8)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
    elif kind == "flip-front":
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(min(len(b), 64 * 1024))] = rnd.randrange(256)
    elif kind == "truncate":
        del b[rnd.randrange(len(b)):]
    elif kind in ("zero-block", "repeat-block"):
        at = rnd.randrange(max(len(b) // 512, 1)) * 512
        b[at:at + 512] = bytes(512) if kind == "zero-block" else b[at:at + 512] * 2
    elif kind == "insert":
        at = rnd.randrange(len(b))
        b[at:at] = rnd.randbytes(rnd.randint(1, 64))
    else:
        pattern = rb'="(\d+)"' if kind == "xml-number" else rb'="([A-Za-z][^"]{0,40})"'
        found = list(re.finditer(pattern, bytes(b[:200_000])))
        if found:
            m = rnd.choice(found)
            new = rnd.choice(HOSTILE_NUMBERS if kind == "xml-number" else HOSTILE_NAMES)
            b[m.start(1):m.end(1)] = new
            kind += f" {m.group(1)[:20]!r}->{new[:20]!r}"
    return bytes(b), kind


@pytest.fixture(scope="module")
def server():
    fs = ForkServer()
    yield fs
    fs.close()


def _check(fs: ForkServer, argv: list[str], case: Path, out: Path, what: str) -> None:
    outcome = fs.run(argv, cwd=str(case), timeout=60)
    err = outcome.stderr_text
    where = f"{what}\nargv={argv}\nexit={outcome.returncode}\nstderr={err[-1500:]!r}"
    assert outcome.returncode in (0, 1, 2), where
    assert "Traceback" not in err and "internal error" not in err, where
    if outcome.returncode == 2:
        assert len(err.splitlines()) == 1 and err.startswith("vmferry: error: "), where
        assert not out.exists(), where
    stray = sorted(p.name for p in case.iterdir() if p.name not in ("x.ova", "pkg") and not p.name.startswith("out"))
    assert stray == [], where


@pytest.mark.parametrize("form", ["ova", "folder"])
@pytest.mark.parametrize("seed", range(3))
def test_mutated_packages_are_accepted_or_refused_in_one_line(server, tmp_path, form, seed):
    rnd = random.Random(f"{form}-{seed}")
    seeds = {}
    if form == "ova":
        for sub, ovf, files in PACKAGES[:3]:
            pkg = tmp_path / f"seed-{ovf}"
            pkg.mkdir()
            for name in (ovf, *files):
                shutil.copy(DATA / sub / name, pkg)
            target = tmp_path / f"{ovf}.ova"
            done = server.run(["pack", str(pkg), "-o", str(target)], cwd=str(tmp_path), timeout=60)
            assert done.returncode == 0, done.stderr_text
            seeds[ovf] = target.read_bytes()
    for i in range(15):
        case = tmp_path / f"case{i}"
        case.mkdir()
        if form == "ova":
            name = rnd.choice(sorted(seeds))
            data, kind = mutate(seeds[name], rnd)
            target = case / "x.ova"
            target.write_bytes(data)
            commands = COMMANDS + OVA_COMMANDS
        else:
            sub, ovf, files = rnd.choice(PACKAGES)
            pkg = case / "pkg"
            pkg.mkdir()
            for f in files:
                shutil.copy(DATA / sub / f, pkg)
            data, kind = mutate((DATA / sub / ovf).read_bytes(), rnd)
            target = pkg / ovf
            target.write_bytes(data)
            name = ovf
            commands = COMMANDS
        for n, argv in enumerate(commands):
            out = case / f"out{n}"
            _check(server, [a.format(t=target, o=out) for a in argv], case, out,
                   f"{form} seed {seed} case {i}: {name}, {kind}")
        shutil.rmtree(case)
