"""Fixtures of the guest tests: the built test guests (cached), a private libvirtd, one inspection each."""

from __future__ import annotations

import pytest

from tests.conftest import RULE_ID, TRIGGERED
from tests.guest import libvirtd as _libvirtd
from tests.guestimage import build as _build


@pytest.fixture(scope="session")
def guests() -> dict[str, _build.BuiltGuest]:
    """Both test guests, built in parallel (each is mostly one libguestfs appliance run)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(_build.build, name) for name in ("virtio", "legacy")}
        return {name: f.result() for name, f in futures.items()}


@pytest.fixture(scope="session")
def guest_virtio(guests) -> _build.BuiltGuest:
    return guests["virtio"]


@pytest.fixture(scope="session")
def guest_legacy(guests) -> _build.BuiltGuest:
    return guests["legacy"]


@pytest.fixture(scope="session")
def libvirtd():
    daemon, proc = _libvirtd.start()
    try:
        yield daemon
    finally:
        _libvirtd.stop(proc, daemon.workdir.parent)


ALL_TARGETS = [a for t in ("kvm", "vmware", "virtualbox", "xen", "hyperv") for a in ("--target", t)]


@pytest.fixture(scope="session")
def inspections(guests) -> dict[str, tuple[int, dict]]:
    """``vmferry guest --json`` on both guests, the two appliances running at the same time.

    The legacy guest is inspected with every --target spelled out (exit status 1 expected), the virtio
    guest with none (exit status 0).
    """
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "VMFERRY_DEBUG"}
    procs = {name: subprocess.Popen([sys.executable, "-m", "vmferry", "guest", guests[name].image, "--json",
                                     *(ALL_TARGETS if name == "legacy" else [])],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for name in ("virtio", "legacy")}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=900)
        TRIGGERED.update(RULE_ID.findall(stdout))  # the rule ids this command printed (docs/rules.md check)
        assert proc.returncode in (0, 1), stderr
        assert stderr == ""
        assert stdout.count("\n") == 1 and stdout.endswith("\n")   # one document, one line (docs/json.md)
        out[name] = (proc.returncode, json.loads(stdout))
    return out


@pytest.fixture(scope="session")
def inspected_virtio(inspections):
    return inspections["virtio"]


@pytest.fixture(scope="session")
def inspected_legacy(inspections):
    return inspections["legacy"]
