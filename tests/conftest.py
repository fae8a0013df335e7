"""Shared fixtures: paths to the real sample packages and a runner for the vmferry command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
COT = DATA / "cot"
V2V = DATA / "virt-v2v"
ALL_SAMPLES = sorted(p for p in DATA.glob("*/*.ovf") if p.name != "ersatz_ovf_3.0.ovf")


def run_vmferry(*args, cwd=None, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run the real ``vmferry`` command in a child process."""
    full_env = dict(os.environ)
    full_env.pop("VMFERRY_DEBUG", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "vmferry", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)


@pytest.fixture
def vmferry():
    return run_vmferry
