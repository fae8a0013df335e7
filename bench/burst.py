"""Benchmark of issue 14: how long a burst takes to serve, and what a copy costs on disk.

In one run, on a privileged private libvirtd (tests/guest/libvirtd.py, QEMU under TCG) with HAProxy, BIND
and the locator on 127.0.0.1 (tests/burst/site.py), a bounded load generator (only 127.0.0.1) sends 20
requests/s to HAProxy, whose pool holds the web component's production server; the burst policy (rate, up
6 per server, step 2, max 2) runs its control loop (``vmferry.burst.policy.watch_round`` every 0.5 s).

Printed, from the threshold crossing (the load starts at 20/s: HAProxy's one-second session rate is over
the threshold from its first second) to the first request a new copy served (seen by the load generator):

* decision: until the control loop decided to add (HAProxy's rate window + the loop's interval);
* launch: overlays, generalization (one libguestfs appliance per copy, in parallel), OVF environment,
  define and start;
* boot to health: until the copy's guest agent and health check answered;
* registration: HAProxy add/ready/up, DNS, locator;
* first served: until the load generator got an answer from a new copy.

Cost per extra copy: the overlay's bytes on disk after it served, against a full copy of the ready image
(``qemu-img convert`` of the point's chain into one standalone qcow2, measured in the same run, with the
time it takes: what launching from full copies would add per copy).

Run as root: ``PYTHONPATH=src .venv/bin/python bench/burst.py``. Not part of ``make test``.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from tests.burst.servers import LoadGenerator  # noqa: E402
from tests.burst.site import burst_site  # noqa: E402
from tests.guest import libvirtd as private_libvirtd  # noqa: E402
from vmferry.burst import policy, scale, store  # noqa: E402
from vmferry.tools.proc import run  # noqa: E402


def disk_bytes(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def main() -> int:
    if os.geteuid() != 0:
        print("bench/burst.py needs root (a privileged private libvirtd makes the network)", file=sys.stderr)
        return 2
    daemon, proc = private_libvirtd.start_system()
    tmp = Path(tempfile.mkdtemp(prefix="vmferry-bench-burst-"))
    state = tmp / "state"
    try:
        with burst_site(daemon, tmp) as site:
            target = site.target
            gen = LoadGenerator(site.haproxy.port, rate=20, total=4000).start()
            t0 = time.monotonic()
            try:
                result = policy.WatchResult()
                decided = None
                while decided is None and time.monotonic() - t0 < 60:
                    t_round = time.monotonic()
                    d = policy.watch_round(target, state, result=result)
                    if d.action == "add":
                        decided = t_round
                        break
                    time.sleep(0.5)
                if decided is None:
                    print("the policy did not add copies within 60 s", file=sys.stderr)
                    return 1
                t_done = time.monotonic()
                record = store.load(state, "shop", "web", "cloud")
                copies = record.serving()
                names = {c.hostname for c in copies}
                while not (names & set(gen.first_seen)) and time.monotonic() - t_done < 60:
                    time.sleep(0.05)
                first = min((gen.first_seen[n] for n in names if n in gen.first_seen), default=None)
                overlay_bytes = [disk_bytes(Path(c.overlays[0])) for c in copies]
                full = tmp / "full.qcow2"
                t = time.monotonic()
                run(["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "qcow2", str(site.top), str(full)])
                full_seconds = time.monotonic() - t
                full_bytes = disk_bytes(full)
                info = run(["qemu-img", "info", "-U", "--output=json", str(site.top)]).stdout
                virtual = json.loads(info)["virtual-size"]
                scale.remove_copies(target, state, count=None)
            finally:
                gen.stop()
            crossing = result.crossings[-1]
            decision = decided - t0 + crossing["decision"]
            print(f"copies                  {len(copies)} ({', '.join(sorted(names))}), TCG guests")
            print(f"decision                {decision:7.2f} s  (load start -> the loop decided to add)")
            print(f"launch                  {crossing['launch']:7.2f} s  (of which generalize "
                  f"{crossing['generalize']:.2f} s, parallel)")
            print(f"boot to health          {crossing['boot_to_health']:7.2f} s")
            print(f"registration            {crossing['registration']:7.2f} s  (HAProxy, DNS, locator)")
            if first is not None:
                print(f"first served by a copy  {first - t0:7.2f} s  after the threshold crossing "
                      f"({first - t_done:+.2f} s after registration ended)")
            else:
                print("first served by a copy  not seen within 60 s")
            print(f"requests                {gen.sent} sent, {len(gen.errors)} failed, by instance "
                  f"{dict(gen.by_instance)}")
            mean = sum(overlay_bytes) / len(overlay_bytes)
            print(f"disk per copy           {mean / 2**20:7.2f} MiB overlay (after boot and serving) vs "
                  f"{full_bytes / 2**20:.2f} MiB full copy ({virtual / 2**20:.0f} MiB virtual): "
                  f"{full_bytes / mean:.1f}x less")
            print(f"full copy baseline      {full_seconds:7.2f} s per copy to write it (an overlay: "
                  f"{copies[0].timings.get('overlays', 0):.2f} s)")
            return 0 if not gen.errors else 1
    finally:
        private_libvirtd.stop(proc, daemon.workdir.parent)


if __name__ == "__main__":
    sys.exit(main())
