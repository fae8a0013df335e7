"""Fixtures of the guest tests: the built test guests (cached), a private libvirtd, one inspection each."""

from __future__ import annotations

import pytest

from tests.guest import libvirtd as _libvirtd
from tests.guestimage import build as _build


@pytest.fixture(scope="session")
def guest_virtio() -> _build.BuiltGuest:
    return _build.build("virtio")


@pytest.fixture(scope="session")
def guest_legacy() -> _build.BuiltGuest:
    return _build.build("legacy")


@pytest.fixture(scope="session")
def libvirtd():
    daemon, proc = _libvirtd.start()
    try:
        yield daemon
    finally:
        _libvirtd.stop(proc, daemon.workdir.parent)


def _inspect(guest: _build.BuiltGuest, *extra: str) -> tuple[int, dict]:
    import json

    from tests.conftest import run_vmferry

    res = run_vmferry("guest", guest.image, "--json", *extra, timeout=900)
    assert res.returncode in (0, 1), res.stderr
    assert res.stderr == ""
    return res.returncode, json.loads(res.stdout)


@pytest.fixture(scope="session")
def inspected_virtio(guest_virtio):
    """``vmferry guest --json`` on the virtio guest (one libguestfs appliance, shared by the tests)."""
    return _inspect(guest_virtio)


@pytest.fixture(scope="session")
def inspected_legacy(guest_legacy):
    """``vmferry guest --json`` with every --target spelled out, on the legacy guest."""
    return _inspect(guest_legacy, *[a for t in ("kvm", "vmware", "virtualbox", "xen", "hyperv")
                                    for a in ("--target", t)])
