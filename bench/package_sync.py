"""Benchmark of issue 12, package sources: a refreshed OVA synced by block hashes, against a full re-import.

In one run: a raw disk of ``--size-mib`` MiB (half random data, half zeros), packed as a VMware-style OVA
(streamOptimized VMDK, tests/replication/conftest.py ``make_ova``); a protection record with its first point
(a full copy); then ``--percent`` % of the disk's 64 KiB blocks are rewritten, the OVA is packed again, and:

* (a) **vmferry package sync**: the new package disk read in place and hashed, only differing blocks
  written into the new point's qcow2 layer, the point sealed (block map, digests);
* (b) **full re-import**: ``qemu-img convert`` of the new package disk (read in place from the OVA) to a
  new qcow2 — what a tool that cannot tell what changed writes every time.

Printed: time and bytes written for each, bytes changed, the ratios, and whether the new point reads
exactly the new disk (qemu-img compare). ``PYTHONPATH=src .venv/bin/python bench/package_sync.py
[--size-mib 512] [--percent 1]``.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]   # bench/inspect.py shadows inspect
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import argparse  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

BS = 64 * 1024


def main(argv: list[str] | None = None) -> int:
    from tests.replication.conftest import make_ova
    from vmferry.replication import points
    from vmferry.replication.hashsync import package_disk
    from vmferry.replication.model import DiskRef
    from vmferry.replication.store import ProtectionGroup, ReplicaVm, Store
    from vmferry.tools.proc import run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--percent", type=float, default=1.0)
    args = ap.parse_args(argv)
    size = args.size_mib << 20
    rng = random.Random(12)
    with tempfile.TemporaryDirectory(prefix="vmferry-bench-pkgsync-") as tmp:
        tmp = Path(tmp)
        raw = tmp / "disk.raw"
        with open(raw, "wb") as fh:
            fh.write(os.urandom(size // 2))
            fh.truncate(size)
        ova = make_ova(raw, tmp, "web")
        store = Store(tmp / "state")
        ref = DiskRef("bench", "web", "bench-web", "vmdisk1", size)
        vm = ReplicaVm("web", "bench-web", "package", str(ova), "web", (ref,), "vms/x/domain.xml", None, False, "ready")
        store.save(ProtectionGroup("bench", "app.yaml", "a", "b", "test:///default", None, str(tmp / "replica"),
                                   900, 3, points.now_iso(), (vm,)))
        t = time.monotonic()
        draft = points.begin_point("bench", store=store)
        points.sync_disk(draft, ref, store=store)
        points.seal_point(draft, store=store)
        first = time.monotonic() - t

        blocks = rng.sample(range(size // BS), max(1, int(size // BS * args.percent / 100)))
        with open(raw, "r+b") as fh:
            for b in blocks:
                fh.seek(b * BS)
                fh.write(os.urandom(BS))
        make_ova(raw, tmp, "web")
        changed = len(blocks) * BS

        t = time.monotonic()
        draft = points.begin_point("bench", store=store)
        result = points.sync_disk(draft, ref, store=store)
        point = points.seal_point(draft, store=store)
        t_sync = time.monotonic() - t

        import contextlib

        with contextlib.ExitStack() as stack:
            spec = package_disk(vm, ref, str(tmp), stack)
            full = tmp / "full.qcow2"
            t = time.monotonic()
            run(["qemu-img", "convert", "-W", "-m", "8", *spec.argv(), "-O", "qcow2", str(full)], timeout=3600)
            t_full = time.monotonic() - t
        full_bytes = int(run(["qemu-img", "info", "--output=json", "-f", "qcow2", str(full)]).stdout.split(
            '"actual-size":')[1].split(",")[0])
        group = store.load("bench")
        same = run(["qemu-img", "compare", "-q", "-f", "raw", str(raw), *points.chain_spec(group, point,
                    ref.key).argv("-F")], check=False).returncode == 0
    print(f"disk {args.size_mib} MiB, {len(blocks)} blocks rewritten ({changed} bytes, {args.percent}%); "
          f"first point {first:.1f} s")
    print(f"(a) vmferry package sync: {t_sync:6.2f} s, {result.bytes_written:>12} bytes written")
    print(f"(b) full re-import      : {t_full:6.2f} s, {full_bytes:>12} bytes written (allocated)")
    print(f"bytes written / bytes changed: {result.bytes_written / changed:.3f} (goal <= 1.1)")
    print(f"bytes: full / sync = {full_bytes / max(1, result.bytes_written):.1f}x; "
          f"time: full / sync = {t_full / t_sync:.2f}x")
    print(f"new point equals the new disk: {same}")
    return 0 if same and result.bytes_written <= 1.1 * changed else 1


if __name__ == "__main__":
    sys.exit(main())
