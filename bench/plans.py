#!/usr/bin/env python3
"""Benchmark `vmferry plan` on generated applications, with baselines measured in the same run.

Prints:
  1. manifest loading with N components sharing the example's two packages, against the baseline
     of reading each component's package once per component (what a loader without the per-load
     package cache does): the ratio is the saving;
  2. plan building for N and 10*N components: the time ratio (10 means linear scaling; a quadratic
     step would show ~100).

Usage: .venv/bin/python bench/plans.py [--components N] [--runs R]
"""

from __future__ import annotations

import os
import sys

# bench/ holds an inspect.py: keep this folder off sys.path so the standard library's `inspect` wins
sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != os.path.dirname(os.path.abspath(__file__))]

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from vmferry.dialects import read_package  # noqa: E402
from vmferry.package import open_package  # noqa: E402
from vmferry.plans import build_plan, load_app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "three-tier"


def manifest(directory: Path, n: int) -> Path:
    """An application of n components: web/app/db thirds, subnet and pool re-addressing, DNS, LB, firewall."""
    comps, deps, records, members, rules = {}, [], [], [], []
    for i in range(n):
        tier = ("web", "app", "db")[i % 3]
        host = f"10.{1 + i // 60000}.{(i // 250) % 240}.{10 + i % 240}"
        if tier == "db":
            comps[f"db{i}"] = {"package": "packages/backend.ovf", "system": "db", "nics": [{"address": host + "/16"}]}
        elif tier == "app":
            comps[f"app{i}"] = {"package": "packages/backend.ovf", "system": "app",
                                "nics": [{"network": "back", "address": host + "/16"},
                                         {"network": "data", "address": f"172.16.{(i // 250) % 240}.{10 + i % 240}/16"}]}
            deps.append({"from": f"app{i}", "to": f"db{i + 1}" if i + 1 < n else "ldap-less", "port": 5432})
        else:
            comps[f"web{i}"] = {"package": "packages/web.ovf", "nics": [{"address": host + "/16"}]}
            members.append(f"web{i}")
            if i + 1 < n:
                deps.append({"from": f"web{i}", "to": f"app{i + 1}", "port": 8080})
        records.append({"name": f"{tier}{i}", "type": "A", "component": f"{tier}{i}"})
        rules.append({"name": f"r{i}", "from": "any", "to": f"{tier}{i}", "port": 443})
    deps = [d for d in deps if d["to"] in comps]
    doc = {
        "name": "big", "zone": "big.example.test", "components": comps, "dependencies": deps,
        "dns": {"records": records}, "load_balancer": {"pools": [{"name": "web", "port": 80, "members": members}]},
        "firewall": rules,
        "sites": {
            "a": {"networks": {"front": {"subnet": "10.0.0.0/8"}, "back": {"subnet": "10.0.0.0/8"},
                               "data": {"subnet": "172.16.0.0/16"}}},
            "b": {"networks": {"front": {"subnet": "11.0.0.0/8"}, "back": {"subnet": "11.0.0.0/8"},
                               "data": {"subnet": "172.17.0.0/16", "pool": "172.17.0.10-172.17.255.200"}}},
        },
        "moves": [{"from": "a", "to": "b", "readdress": [{"from": "10.0.0.0/8", "to": "11.0.0.0/8"}, {"pool": "data"}]}],
    }
    shutil.copytree(EXAMPLE / "packages", directory / "packages", dirs_exist_ok=True)
    path = directory / f"big-{n}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def timed(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n = args.components
    with tempfile.TemporaryDirectory() as tmp:
        small, large = manifest(Path(tmp), n), manifest(Path(tmp), 10 * n)
        app = load_app(small)
        packages = [c.package for c in app.components.values()]
        t_load = timed(lambda: load_app(small), args.runs)
        t_naive = timed(lambda: [read_package(open_package(p).envelope) for p in packages], args.runs)
        print(f"1. load {n} components: {t_load * 1000:.1f} ms; baseline (one package read per component) "
              f"{t_naive * 1000:.1f} ms for the reads alone; ratio baseline/vmferry = {t_naive / t_load:.1f}x")
        big = load_app(large)
        t_small = timed(lambda: build_plan(app, "a", "b"), args.runs)
        t_large = timed(lambda: build_plan(big, "a", "b"), args.runs)
        plan = build_plan(big, "a", "b")
        print(f"2. plan {n} components: {t_small * 1000:.1f} ms; {10 * n} components: {t_large * 1000:.1f} ms "
              f"({len(plan.nics)} NICs, {len(plan.dns)} DNS, {len(plan.firewall)} rules, "
              f"{len(plan.boot_order)} boot groups); ratio = {t_large / t_small:.1f} (linear: 10)")


if __name__ == "__main__":
    main()
