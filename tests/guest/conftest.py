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
