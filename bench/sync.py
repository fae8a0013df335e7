"""Benchmark of issue 12: incremental replication of a running guest, against virtnbdbackup and a full copy.

In one run, on a private real libvirtd (tests/guest/libvirtd.py, QEMU under TCG), the test suite's
command-loop guest (tests/replication/sourceguest.py) runs with a 4 GiB qcow2 data disk filled with data.
First every side takes its base copy: vmferry's first point (a full copy over NBD into a qcow2) and
``virtnbdbackup -l full``. Then the *guest* rewrites 1% of the data disk's 64 KiB blocks (chosen at
random with a fixed seed; busybox ``dd`` from ``/dev/urandom`` inside the VM, then ``sync``), and:

* (a) **vmferry's data path** (replication/tracking.py + copy.py called directly): checkpoint + pull-mode
  incremental backup of the domain, dirty extents over NBD, copy into the new point's qcow2 overlay, job
  ended and the older checkpoint retired;
* (a') **``vmferry sync APP``**, the command, for an application protected with ``vmferry protect`` whose
  one component is the running domain: the same capture, then the protection library's point handling
  (``replication/points.py``: draft layers, sync_disk, sealing with block digests, retention);
* (b) **virtnbdbackup -l inc** (Debian's package) of the same change, same disk;
* (c) **qemu-img convert** of the whole data disk (the full copy a tool without change tracking makes),
  twice: (c1) of the live qcow2 file with ``-U`` (force-share: the fastest possible, from the host's page
  cache, but not a consistent copy of a running disk: QEMU may hold metadata not yet written), and
  (c2) of the NBD export of a full pull-mode backup (the consistent full copy, through the same path as
  (a) and (b)).

Printed: time and bytes moved for each (vmferry: bytes read from the source over NBD; virtnbdbackup: the
size of its incremental data file; qemu-img: the disk's allocated bytes), bytes changed, the ratios,
and whether the new points of (a) and (a') equal both full copies (qemu-img compare). Goals: vmferry's bytes moved at
most 1.1x the bytes changed; its time at most virtnbdbackup's; both at least 10x faster than the full copy.

The ``vmferry`` commands run with their modules' bytecode compiled beforehand (``compileall``, as
``pip install`` does), in a directory of the bench's own.

By default each measured side starts with the source disk's page cache dropped (``--cache cold``: that one
file's pages, written back first; a DR sync reads a disk that is not in the replicating host's memory);
``--cache warm`` leaves it (the disk was just filled, so a full copy then reads from memory).

Run as root (the private daemon runs its QEMU as ``nobody``):
``PYTHONPATH=src .venv/bin/python bench/sync.py [--size-gib 4] [--percent 1]``. Not part of ``make test``
(it writes about 3 x 4 GiB).
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# bench/ holds a module named "inspect": keep it from shadowing the standard library's
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.pagecache import evict  # noqa: E402

from tests.guest import libvirtd as private_libvirtd  # noqa: E402
from tests.replication import sourceguest as sg  # noqa: E402
from vmferry.disks.qcow2_write import create_image  # noqa: E402
from vmferry.replication import copy, tracking  # noqa: E402
from vmferry.tools.libvirt import binding, connect  # noqa: E402
from vmferry.tools.proc import run  # noqa: E402

GIB = 1 << 30
BLOCK = 64 << 10
DOMAIN = "vmferry-bench-src"
APP = "benchapp"


@dataclass
class Side:
    name: str
    seconds: float
    moved: int
    note: str = ""


def fill(image: Path, size: int) -> None:
    """Every byte of the data disk allocated and non-zero (one pattern per GiB)."""
    for i in range(0, size, GIB):
        run(["qemu-io", "-f", "qcow2", "-c", f"write -q -P {0x30 + (i // GIB) % 200} {i} {min(GIB, size - i)}",
             image])


def vmferry_point(daemon, captures: Path, point: str, since: str | None, layers: dict[str, Path],
                  backing: dict[str, Path] | None) -> tuple[Side, object]:
    start = time.monotonic()
    phases: list[str] = []

    def phase(name: str, since: list[float] = [start]) -> None:  # noqa: B006  (a clock kept across calls)
        now = time.monotonic()
        phases.append(f"{name} {now - since[0]:.2f}")
        since[0] = now

    req = tracking.CaptureRequest(daemon.uri, DOMAIN, tracking.checkpoint_name("bench", point), since=since)
    session = tracking.begin_captures([req], captures)[0]
    phase("capture")
    moved = 0
    sizes = tracking._state(session)["disks"]
    for disk, target in layers.items():
        create_image(target, sizes[disk], backing=str(backing[disk]) if backing else None)   # as points.py does
        phase(f"{disk}:layer")
        src = tracking.open_source(session, disk)
        try:
            extents = src.extents()
            phase(f"{disk}:extents({len(extents)})")
            moved += copy.copy_into_image(src, target, extents=extents).bytes_read
            phase(f"{disk}:copy")
        finally:
            src.close()
    tracking.end_capture(session, sealed=True)
    phase("end")
    return Side("vmferry data path", time.monotonic() - start, moved, "; ".join(phases)), session


def virtnbdbackup(daemon, level: str, out: Path, scratch: Path) -> Side:
    """One virtnbdbackup run, timed. virtnbdbackup refuses to run beside checkpoints it did not create
    ("remove existing checkpoints and start a new backup chain"), so vmferry's are hidden from it for the
    run and given back after it (libvirt's records only, outside the timed part: the bitmaps stay in the
    qcow2 and keep recording, as libvirt's own checkpoint redefinition is meant for)."""
    libvirt = binding()
    with connect(daemon.uri) as conn:
        dom = conn.domain(DOMAIN)
        hidden = [c.getXMLDesc(0) for c in dom.listAllCheckpoints(libvirt.VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL)
                  if c.getName().startswith(tracking.PREFIX)]
        for c in dom.listAllCheckpoints(0):
            if c.getName().startswith(tracking.PREFIX):
                c.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)
    start = time.monotonic()
    try:
        run(["virtnbdbackup", "-U", daemon.uri, "-d", DOMAIN, "-l", level, "-i", "vdb", "-o", out, "-S", scratch,
             "-f", scratch / f"nbd-{level}.sock", "-n", "-q"], timeout=3600)
        seconds = time.monotonic() - start
    finally:
        with connect(daemon.uri) as conn:
            for xml in hidden:
                conn.domain(DOMAIN).checkpointCreateXML(xml, libvirt.VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE)
    data = [p for p in out.iterdir() if p.name.startswith(f"vdb.{level}") and p.name.endswith(".data")]
    moved = sum(p.stat().st_size for p in data)
    return Side(f"virtnbdbackup {level}", seconds, moved, ", ".join(sorted(p.name for p in data)))


def protect_app(daemon, work: Path, state: Path) -> float:
    """Protect a one-VM application whose component is the running domain (``vmferry protect``: the
    first point, a full copy, and the replica's definition); its time."""
    import yaml

    own = (daemon.uid, daemon.gid)
    for site in ("dc1", "dr"):
        (work / site).mkdir()
        os.chown(work / site, *own)
    manifest = work.parent / "app.yaml"
    lib = {"uri": daemon.uri}
    manifest.write_text(yaml.safe_dump({
        "name": APP, "components": {"db": {"source": {"domain": DOMAIN}}},
        "sites": {"dc1": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dc1"),
                                                             "networks": {"VM Network": "dc1-lan"}}},
                  "dr": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dr"),
                                                            "networks": {"VM Network": "dr-lan"}}}}}))
    start = time.monotonic()
    vmferry("protect", manifest, "--from", "dc1", "--to", "dr", "--rpo", "15m", "--keep", "3",
            "--domain-type", "qemu", "--json", state=state)
    return time.monotonic() - start


def vmferry_env(state: Path) -> dict[str, str]:
    """The environment of the ``vmferry`` commands: their own state directory, and their modules'
    bytecode kept (in a directory beside the state, ``PYTHONPYCACHEPREFIX``) as an installed package has
    it — a ``PYTHONDONTWRITEBYTECODE`` set around the bench would make every command compile all its
    modules again, which no installed ``vmferry`` does."""
    return {"VMFERRY_STATE": str(state), "PYTHONPATH": os.pathsep.join(sys.path),
            "PYTHONPYCACHEPREFIX": str(state.parent / "pycache"), "PYTHONDONTWRITEBYTECODE": ""}


def compile_vmferry(state: Path) -> None:
    """What ``pip install`` does: the package's bytecode, compiled once before any command runs."""
    import vmferry

    run([sys.executable, "-m", "compileall", "-q", os.path.dirname(vmferry.__file__)], env=vmferry_env(state),
        timeout=600)


def vmferry(*args, state: Path) -> str:
    """``python -m vmferry ARGS`` with its own state directory (no Temporal configured: the library runs
    in the command itself); its standard output."""
    return run([sys.executable, "-m", "vmferry", *map(str, args)], env=vmferry_env(state), timeout=3600).stdout


def vmferry_sync_cli(state: Path) -> Side:
    start = time.monotonic()
    point = json.loads(vmferry("sync", APP, "--json", state=state))
    return Side("vmferry sync (CLI)", time.monotonic() - start, point["bytes_read"],
                f"point {point['point_id']}, {point['consistency']}-consistent, "
                f"{point['bytes_written']} bytes written, {point['seconds']:.2f} s from the moment to the seal")


def full_copy_over_nbd(daemon, scratch: Path, target: Path, size: int) -> Side:
    """The consistent full copy of the running disk: a full pull-mode backup (no checkpoint) of vdb and
    ``qemu-img convert`` of its NBD export, timed from the job's start to its end."""
    sock = scratch / "full.sock"
    xml = (f"<domainbackup mode='pull'><server transport='unix' socket='{sock}'/><disks>"
           f"<disk name='vda' backup='no'/><disk name='vdb' backup='yes' type='file'>"
           f"<scratch file='{scratch / 'full.scratch'}'/></disk></disks></domainbackup>")
    start = time.monotonic()
    with connect(daemon.uri) as conn:
        dom = conn.domain(DOMAIN)
        dom.backupBegin(xml, None, 0)
        try:
            run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", f"nbd+unix:///vdb?socket={sock}", target],
                timeout=3600)
        finally:
            dom.abortJob()
    return Side("qemu-img convert NBD", time.monotonic() - start, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=4)
    parser.add_argument("--percent", type=float, default=1)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--cache", choices=("cold", "warm"), default="cold",
                        help="cold: the source disk's page cache is dropped before each measured side (default); "
                             "warm: left as it is (the data disk was just filled: a full copy reads from memory)")
    args = parser.parse_args(argv)
    size = int(args.size_gib * GIB) // BLOCK * BLOCK
    blocks = sorted(random.Random(args.seed).sample(range(size // BLOCK), int(size // BLOCK * args.percent / 100)))
    changed = len(blocks) * BLOCK

    daemon, proc = private_libvirtd.start()
    try:
        work = daemon.workdir
        own = (daemon.uid, daemon.gid)
        for sub in ("cap", "scratch"):
            (work / sub).mkdir()
            os.chown(work / sub, *own)
        out = Path(work.parent / "out")

        def filled(disk: Path) -> None:
            t = time.monotonic()
            fill(disk, size)
            print(f"data disk  {size / GIB:.2f} GiB qcow2, filled in {time.monotonic() - t:.1f} s", flush=True)

        with sg.running_guest(daemon, DOMAIN, size, prepare=filled) as guest:
            console, data = guest.console, guest.data
            base = {d: out / f"p1-{d}.qcow2" for d in ("vda", "vdb")}
            new = {d: out / f"p2-{d}.qcow2" for d in ("vda", "vdb")}
            out.mkdir()
            backup = out / "virtnbdbackup"
            nbase = virtnbdbackup(daemon, "full", backup, work / "scratch")
            print(f"base       virtnbdbackup full {nbase.seconds:.1f} s, {nbase.moved / GIB:.2f} GiB", flush=True)
            state = out / "state"
            compile_vmferry(state)
            protected = protect_app(daemon, work, state)
            print(f"base       vmferry protect (first point of the application) {protected:.1f} s", flush=True)
            vbase, s1 = vmferry_point(daemon, work / "cap", "p1", None, base, None)
            print(f"base       vmferry first point (full copy over NBD) {vbase.seconds:.1f} s, "
                  f"{vbase.moved / GIB:.2f} GiB", flush=True)

            t = time.monotonic()
            runs = [blocks[i:i + 256] for i in range(0, len(blocks), 256)]
            for part in runs:
                assert console.run(sg.write_blocks_command("/dev/vdb", part, BLOCK), timeout=1200) == 0
            print(f"change     the guest rewrote {len(blocks)} blocks of 64 KiB ({args.percent:g}%, "
                  f"{changed / (1 << 20):.1f} MiB) in {time.monotonic() - t:.1f} s", flush=True)

            cold = (lambda: evict(data)) if args.cache == "cold" else (lambda: None)
            cold()
            a, _ = vmferry_point(daemon, work / "cap", "p2", tracking.checkpoint_of(s1), new, base)
            print(f"(a)        vmferry data path {a.seconds:.2f} s, {a.moved} bytes (seconds: {a.note})", flush=True)
            cold()
            a2 = vmferry_sync_cli(state)
            print(f"(a')       vmferry sync {APP} (CLI) {a2.seconds:.2f} s, {a2.moved} bytes ({a2.note})", flush=True)
            cold()
            b = virtnbdbackup(daemon, "inc", backup, work / "scratch")
            print(f"(b)        virtnbdbackup inc {b.seconds:.2f} s, {b.moved} bytes ({b.note})", flush=True)
            full = out / "full.qcow2"
            cold()
            t = time.monotonic()
            run(["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "qcow2", data, full], timeout=3600)
            c1 = Side("qemu-img convert file", time.monotonic() - t, size)
            print(f"(c1)       qemu-img convert -U of the live qcow2 file {c1.seconds:.1f} s, {c1.moved} bytes",
                  flush=True)
            full_nbd = out / "full-nbd.qcow2"
            cold()
            c2 = full_copy_over_nbd(daemon, work / "scratch", full_nbd, size)
            print(f"(c2)       qemu-img convert from a full pull-backup export {c2.seconds:.1f} s, {c2.moved} bytes",
                  flush=True)
            cli_point = next((work / "dr" / APP / "points" / a2.note.split()[1].rstrip(",")).glob("*.vdb.qcow2"))
            same = all(run(["qemu-img", "compare", "-q", "-f", "qcow2", "-F", "qcow2", mine, f],
                           check=False).returncode == 0 for f in (full, full_nbd) for mine in (new["vdb"], cli_point))
        print()
        print(f"bytes changed by the guest: {changed} ({changed / (1 << 20):.1f} MiB); source disk page cache: "
              f"{args.cache}")
        print(f"{'':24} {'seconds':>9} {'bytes moved':>14} {'moved/changed':>14} {'c1 time/this':>13} "
              f"{'c2 time/this':>13}")
        for side in (a, a2, b, c1, c2):
            print(f"{side.name:24} {side.seconds:>9.2f} {side.moved:>14} {side.moved / changed:>14.3f} "
                  f"{c1.seconds / side.seconds:>13.1f} {c2.seconds / side.seconds:>13.1f}")
        print(f"the new points of (a) and (a') equal both full copies (qemu-img compare): {'yes' if same else 'NO'}")
        goals = []
        for v in (a, a2):
            goals += [(f"{v.name}: bytes moved <= 1.1x bytes changed", v.moved <= 1.1 * changed),
                      (f"{v.name}: time <= virtnbdbackup incremental time", v.seconds <= b.seconds)]
        for c in (c1, c2):
            goals += [(f"{v.name} >= 10x faster than the full copy ({c.name})", c.seconds >= 10 * v.seconds)
                      for v in (a, a2, b)]
        for text, ok in goals:
            print(f"goal: {text}: {'met' if ok else 'NOT met'}")
        return 0 if same else 1
    finally:
        private_libvirtd.stop(proc, daemon.workdir.parent)
        shutil.rmtree(daemon.workdir.parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
