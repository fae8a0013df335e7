#!/usr/bin/env python3
"""Benchmark `vmferry env` against its floor, measured in the same run.

Prints:
  1. whole-process time of `vmferry env csr1000v.ovf --set ... -o seed.iso` (read the package, detect the
     network convention, build ovf-env.xml, make the ISO) against the bare `genisoimage` run that makes
     the same image from a ready ovf-env.xml (the floor: what any tool must pay), and the ratio, also
     net of the interpreter's start-up and imports;
  2. in-process: building the environment of an already-read package (convention detection, network
     config, XML) against serialising the same properties as a bare lxml element tree, and the ratio.

Usage: .venv/bin/python bench/ovfenv.py [--runs N]
"""

from __future__ import annotations

import os
import sys

# bench/ holds an inspect.py: keep this folder off sys.path so the standard library's `inspect` wins
sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != os.path.dirname(os.path.abspath(__file__))]

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from lxml import etree  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "tests/data/cot/csr1000v.ovf"
SETS = ["--set", "mgmt-ipv4-addr=10.1.1.100/24", "--set", "mgmt-ipv4-gateway=10.1.1.1", "--set", "hostname=r1"]


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    from vmferry.ovfenv import apply_sets, build_environment, package_properties, parse_sets
    from vmferry.ovfenv.document import OE_NS

    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        out = tmpd / "seed.iso"

        def vmferry_env():
            subprocess.run([sys.executable, "-m", "vmferry", "env", str(PKG), *SETS, "-o", str(out), "--force"],
                           check=True, capture_output=True)

        vmferry_env()
        tree = tmpd / "root"
        tree.mkdir()
        sp = package_properties(PKG)
        apply_sets(sp, parse_sets([s for s in SETS if s != "--set"]))
        (tree / "ovf-env.xml").write_bytes(build_environment(sp.system_id, sp.properties).environment.to_xml())

        def bare_genisoimage():
            subprocess.run(["genisoimage", "-quiet", "-input-charset", "utf-8", "-V", "OVF ENV", "-J", "-r",
                            "-o", str(tmpd / "floor.iso"), str(tree)], check=True, capture_output=True)

        def startup():
            subprocess.run([sys.executable, "-c", "import vmferry.cli.main, vmferry.cli.env_cmd, vmferry.ovfenv, "
                            "vmferry.dialects.reader, vmferry.package"], check=True, capture_output=True)

        t_env = median_time(vmferry_env, args.runs)
        t_floor = median_time(bare_genisoimage, args.runs)
        t_start = median_time(startup, args.runs)
        print(f"1. whole process, median of {args.runs}: vmferry env {t_env * 1000:.1f} ms, "
              f"bare genisoimage {t_floor * 1000:.1f} ms, ratio {t_env / t_floor:.2f}x; "
              f"of which interpreter start-up and imports {t_start * 1000:.1f} ms, "
              f"so the work itself costs {(t_env - t_start) / t_floor:.2f}x the bare genisoimage run")

        n = 2000

        def build_n():
            for _ in range(n):
                build_environment(sp.system_id, sp.properties).environment.to_xml()

        def bare_n():
            for _ in range(n):
                root = etree.Element(f"{{{OE_NS}}}Environment", nsmap={None: OE_NS, "oe": OE_NS})
                section = etree.SubElement(root, f"{{{OE_NS}}}PropertySection")
                for p in sp.properties:
                    el = etree.SubElement(section, f"{{{OE_NS}}}Property")
                    el.set(f"{{{OE_NS}}}key", p.full_key)
                    el.set(f"{{{OE_NS}}}value", p.value)
                etree.tostring(root, xml_declaration=True, encoding="UTF-8")

        t_build = median_time(build_n, 3)
        t_bare = median_time(bare_n, 3)
        print(f"2. in process, {len(sp.properties)} properties: build_environment {n / t_build:,.0f}/s, "
              f"bare lxml tree {n / t_bare:,.0f}/s, ratio {t_build / t_bare:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
