"""Benchmark of issue 5 (guest side): the two design choices that make guest inspection fast enough.

In one run, each against its baseline measured in the same run:

* initramfs listing: vmferry's own reader (``vmferry.guest.initramfs``) vs Debian's ``lsinitramfs`` on
  the same real initramfs image (default: the newest ``/boot/initrd.img-*`` of this host);
  goal ratio <= 1.0 (no slower than the shell tool chain it replaces);
* libguestfs round trips: N probe commands (``is-file``) sent as one batch vs one ``guestfish --remote``
  call each, in the same appliance over the test guest; goal ratio <= 0.6 (the per-call cost is a process start plus a round trip; the batch saves both).

Run: ``.venv/bin/python bench/guest.py [--initrd PATH] [--probes 40] [--repeat 3]``. Not part of
``make test``. The best of ``--repeat`` runs counts, for both sides alike.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# bench/ holds a module named "inspect": keep it from shadowing the standard library's
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.join(HERE, ".."))

from vmferry.guest import initramfs  # noqa: E402
from vmferry.tools.guestfs import Appliance  # noqa: E402


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_initramfs(path: str, repeat: int) -> None:
    ours = initramfs.summarise(path, initramfs.read_file(path))
    listed = subprocess.run(["lsinitramfs", path], capture_output=True, text=True, check=True).stdout.split()
    theirs = sorted({os.path.basename(p).split(".ko")[0].replace("-", "_") for p in listed if ".ko" in p})
    assert list(ours.modules) == theirs, "vmferry and lsinitramfs disagree on the modules"
    t_ours = best(lambda: initramfs.read_file(path), repeat)
    t_base = best(lambda: subprocess.run(["lsinitramfs", path], capture_output=True, check=True), repeat)
    size = os.path.getsize(path) / (1 << 20)
    print(f"initramfs  {path} ({size:.1f} MiB, {len(ours.modules)} modules)")
    print(f"  vmferry reader {t_ours:.3f} s   lsinitramfs {t_base:.3f} s   ratio {t_ours / t_base:.2f} (goal <= 1.0)")


def bench_batch(image: str, probes: int, repeat: int) -> None:
    paths = [f"/etc/probe-{i}" for i in range(probes - 2)] + ["/etc/fstab", "/etc/os-release"]
    with Appliance([image], formats=["raw"]) as g:
        g.call("mount-ro", "/dev/sda1", "/")
        batched = g.batch([("is-file", p) for p in paths])
        single = [g.call("is-file", p) for p in paths]
        assert [b.strip() for b in batched] == [s.strip() for s in single]
        t_batch = best(lambda: g.batch([("is-file", p) for p in paths]), repeat)
        t_single = best(lambda: [g.call("is-file", p) for p in paths], repeat)
    print(f"guestfish  {probes} is-file probes in one appliance")
    print(f"  one batch {t_batch:.3f} s   one call each {t_single:.3f} s   ratio {t_batch / t_single:.3f} (goal <= 0.6)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    initrds = sorted(glob.glob("/boot/initrd.img-*"))
    parser.add_argument("--initrd", default=initrds[-1] if initrds else None)
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.initrd:
        bench_initramfs(args.initrd, args.repeat)
    from tests.guestimage import build

    bench_batch(build.build("virtio").image, args.probes, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
