"""Benchmark: the retention merge of a sync at steady state, the base's digest re-read in full vs only
where the merge changed it (replication/retention.py).

Once an application has ``keep`` points, every sync ends with a merge: the oldest point's layer (the
base, as large as the disk's data) takes in the next point's layer (``qemu-img commit``) and its file
digest is recorded again. In one run, on real files: a qcow2 base of ``--size-gib`` (``--fill`` of its
64 KiB clusters written with random data) and a top layer over it rewriting ``--percent`` of the disk's
clusters (random data, some zeroed), made twice alike; then

* baseline: ``qemu-img commit`` + the digest of the whole merged file (``imageio.layer_pieces``: what
  retention did before);
* vmferry: ``qemu-img commit`` + ``retention.merged_pieces`` (only what the merge may change is read).

vmferry's digest must equal a full read of its merged file, and both merged disks must be equal
(``qemu-img compare``; the files differ: commit copies in parallel, so clusters land in different places). Each side starts with the base's page cache dropped
(a DR site's storage does not hold the base in memory: ``--cache warm`` leaves it). Printed: time of each,
bytes read for the digest, ratio. Goal: the merge's time no longer grows with the disk: ratio well below 1.

Run: ``PYTHONPATH=src .venv/bin/python bench/retention.py [--size-gib 4] [--fill 50] [--percent 1]``.
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from bench.pagecache import evict  # noqa: E402

from vmferry.disks.qcow2_map import held_clusters  # noqa: E402
from vmferry.replication import imageio, retention  # noqa: E402

C = 64 * 1024
GIB = 1 << 30


def qemu_io(path: str, commands: list[str]) -> None:
    for i in range(0, len(commands), 2000):
        script = "\n".join(commands[i:i + 2000]) + "\n"
        subprocess.run(["qemu-io", "-f", "qcow2", path], input=script.encode(), check=True,
                       stdout=subprocess.DEVNULL)


def write_base(path: str, size: int, fill: float, rnd: random.Random) -> None:
    """A qcow2 base whose first ``fill`` of the clusters hold random data (written as a raw image then
    converted: faster than qemu-io cluster by cluster)."""
    raw = path + ".raw"
    with open(raw, "wb") as f:
        data_bytes = int(size * fill) // C * C
        left = data_bytes
        while left:
            n = min(left, 16 << 20)
            f.write(rnd.randbytes(n))
            left -= n
        f.truncate(size)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=65536", raw, path],
                   check=True)
    os.unlink(raw)


def write_top(path: str, base: str, size: int, percent: float, rnd: random.Random) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=65536", "-F", "qcow2", "-b",
                    os.path.abspath(base), path], check=True)
    clusters = size // C
    chosen = rnd.sample(range(clusters), int(clusters * percent / 100))
    cmds = [(f"write -z {c * C} {C}" if i % 10 == 0 else f"write -P {rnd.randrange(1, 255)} {c * C} {C}")
            for i, c in enumerate(sorted(chosen))]
    qemu_io(path, cmds)


def merge(base: str, top: str, incremental: bool, cold: bool) -> tuple[float, float, str, int]:
    """(commit seconds, digest seconds, digest, bytes read for the digest)."""
    before = imageio.layer_pieces(base) if incremental else None     # the .pieces file the seal wrote
    held = held_clusters(top)
    whole = os.path.getsize(base) // C
    if cold:
        evict(base)
        evict(top)
    t0 = time.perf_counter()
    subprocess.run(["qemu-img", "commit", "-q", "-d", "-f", "qcow2", top], check=True)
    t1 = time.perf_counter()
    if cold:
        evict(base)      # what commit wrote is on disk; the digest reads as the next sync would
    read_before = _read_bytes()
    pieces = retention.merged_pieces(base, before, held, whole) if incremental else imageio.layer_pieces(base)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, imageio.pieces_digest(pieces), _read_bytes() - read_before


def _read_bytes() -> int:
    with open("/proc/self/io") as fh:
        for line in fh:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gib", type=float, default=4)
    ap.add_argument("--fill", type=float, default=50, help="percent of the base's clusters holding data")
    ap.add_argument("--percent", type=float, default=1, help="percent of the disk the top layer rewrites")
    ap.add_argument("--cache", choices=("cold", "warm"), default="cold")
    ap.add_argument("--dir")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    size = int(args.size_gib * GIB) // C * C
    work = tempfile.mkdtemp(prefix="vmferry-bench-retention-", dir=args.dir)
    try:
        rnd = random.Random(args.seed)
        base, top = os.path.join(work, "base.qcow2"), os.path.join(work, "top.qcow2")
        t = time.perf_counter()
        write_base(base, size, args.fill / 100, rnd)
        write_top(top, base, size, args.percent, rnd)
        print(f"base {args.size_gib:g} GiB qcow2 ({args.fill:g}% data, {os.path.getsize(base) / GIB:.2f} GiB file), "
              f"top rewrites {args.percent:g}% ({os.path.getsize(top) / (1 << 20):.0f} MiB file); made in "
              f"{time.perf_counter() - t:.1f} s; page cache {args.cache}", flush=True)
        copies = {}
        for side in ("baseline", "vmferry"):
            d = os.path.join(work, side)
            os.mkdir(d)
            shutil.copyfile(base, os.path.join(d, "base.qcow2"))
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2",
                            os.path.join(d, "top.qcow2")], check=True, cwd=d)
            shutil.copyfile(top, os.path.join(d, "top.data"))
            copies[side] = d
        os.unlink(base)
        results = {}
        for side, incremental in (("baseline", False), ("vmferry", True)):
            d = copies[side]
            # the same top layer, re-pointed at this side's base (its data as written above)
            os.replace(os.path.join(d, "top.data"), os.path.join(d, "top.qcow2"))
            subprocess.run(["qemu-img", "rebase", "-u", "-F", "qcow2", "-b", "base.qcow2", "top.qcow2"], check=True,
                           cwd=d)
            results[side] = merge(os.path.join(d, "base.qcow2"), os.path.join(d, "top.qcow2"), incremental,
                                  args.cache == "cold")
        # qemu-img commit copies in parallel: where clusters land in the file differs between two runs, so
        # each side's digest is checked against a full read of its own file, and the disks they hold against
        # each other
        same = results["vmferry"][2] == imageio.layer_digest(os.path.join(copies["vmferry"], "base.qcow2"))
        same_disk = subprocess.run(["qemu-img", "compare", "-q", "-f", "qcow2", "-F", "qcow2",
                                    *(os.path.join(copies[s], "base.qcow2") for s in ("baseline", "vmferry"))]
                                   ).returncode == 0
        print(f"  {'side':<10} {'commit s':>9} {'digest s':>9} {'total s':>8} {'digest read':>12}")
        for side, (commit, digest, _d, read) in results.items():
            print(f"  {side:<10} {commit:>9.2f} {digest:>9.2f} {commit + digest:>8.2f} {read / (1 << 20):>9.0f} MiB")
        b, v = results["baseline"], results["vmferry"]
        print(f"  merge time ratio vmferry/baseline: {(v[0] + v[1]) / (b[0] + b[1]):.3f}; digest time ratio "
              f"{v[1] / b[1]:.3f}; vmferry's digest equal to a full read: {same}; both merged disks equal: "
              f"{same_disk}")
        return 0 if same and same_disk else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
