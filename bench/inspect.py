#!/usr/bin/env python3
"""Benchmark `vmferry inspect` against COT 2.2.1's `cot info` on the same descriptors, in one run.

Prints:
  1. whole-process time per descriptor (median of repeated runs) for both tools, and the ratio;
  2. `vmferry inspect --json` over 1,000 descriptors in one process vs 1,000 `cot info` runs
     (COT's per-run time is the median measured in step 1 times 1,000: running it 1,000 times would
     take ~15 minutes and tell nothing more);
  3. the in-process parse rate (descriptors/s) for a 20 KB descriptor (csr1000v.ovf).

COT is installed by this script into its own virtualenv (bench/.work/cot-venv) from PyPI.
Usage: .venv/bin/python bench/inspect.py [--runs N]
"""

from __future__ import annotations

import sys

# this file is called inspect.py: keep its folder off sys.path so the standard library's `inspect` wins
sys.path[:] = [p for p in sys.path if p and __import__("os").path.abspath(p) != __import__("os").path.dirname(
    __import__("os").path.abspath(__file__))]

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
SAMPLES = [ROOT / "tests/data/cot" / n for n in ("vmware.ovf", "input.ovf", "csr1000v.ovf", "iosv.ovf",
                                                 "ubuntu.2.0.ovf", "v0.9.ovf")] + \
          [ROOT / "tests/data/virt-v2v/test-i-ova.ovf"]


def cot_binary() -> Path:
    venv = WORK / "cot-venv"
    cot = venv / "bin" / "cot"
    if not cot.exists():
        print("installing COT 2.2.1 into", venv, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "cot==2.2.1"], check=True)
    return cot


# as installed software runs: byte-code caches written and used (some shells set PYTHONDONTWRITEBYTECODE,
# which would make both tools recompile every module on every run)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str], runs: int) -> float:
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=ENV)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=ENV)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="runs per descriptor and tool (median taken)")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    cot = str(cot_binary())
    vmferry = [sys.executable, "-m", "vmferry"]
    python_floor = timed([sys.executable, "-c", "pass"], args.runs)
    print(f"\n1. whole process per descriptor (median of {args.runs}); interpreter start-up alone: "
          f"{python_floor * 1000:.0f} ms")
    print(f"   {'descriptor':<28}{'vmferry inspect':>16}{'cot info':>12}{'ratio':>8}")
    cot_times, vmf_times = [], []
    for path in SAMPLES:
        v = timed([*vmferry, "inspect", str(path)], args.runs)
        c = timed([cot, "info", str(path)], max(3, args.runs // 2))
        vmf_times.append(v)
        cot_times.append(c)
        print(f"   {path.name:<28}{v * 1000:>13.0f} ms{c * 1000:>9.0f} ms{c / v:>7.1f}x")
    v_med, c_med = statistics.median(vmf_times), statistics.median(cot_times)
    print(f"   {'median':<28}{v_med * 1000:>13.0f} ms{c_med * 1000:>9.0f} ms{c_med / v_med:>7.1f}x"
          "   (goal >= 3x)")

    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        paths = []
        for i in range(1000):
            src = SAMPLES[i % len(SAMPLES)]
            dst = Path(tmp) / f"d{i:04d}.ovf"
            shutil.copyfile(src, dst)
            paths.append(str(dst))
        t0 = time.perf_counter()
        subprocess.run([*vmferry, "inspect", "--json", *paths], stdout=subprocess.DEVNULL, check=True, env=ENV)
        batch = time.perf_counter() - t0
    cot_1000 = c_med * 1000
    print(f"\n2. 1,000 descriptors: vmferry inspect --json in one process {batch:.2f} s; "
          f"1,000 cot info runs ~{cot_1000:.0f} s (median x 1000); ratio {cot_1000 / batch:.0f}x (goal >= 50x)")

    sys.path.insert(0, str(ROOT / "src"))
    from vmferry.ovf import Envelope
    from vmferry.summary import summarize_envelope

    data = (ROOT / "tests/data/cot/csr1000v.ovf").read_bytes()

    def rate_of(work) -> float:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 3.0:
            work()
            n += 1
        return n / (time.perf_counter() - t0)

    parse = rate_of(lambda: Envelope.from_bytes(data).systems)
    full = rate_of(lambda: summarize_envelope(Envelope.from_bytes(data), path="x", container="ovf"))
    print(f"\n3. in process, a {len(data) / 1024:.0f} KB descriptor (csr1000v.ovf, 4 profiles, 27 properties):")
    print(f"   parsed into the model (safe XML parse, envelope, systems): {parse:,.0f} descriptors/s "
          "(goal >= 1,000/s)")
    print(f"   parsed and fully summarised (every profile, property, dialect, findings): {full:,.0f} descriptors/s")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "0")
    sys.exit(main())
