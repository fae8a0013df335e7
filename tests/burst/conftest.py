"""Fixtures of the burst tests: the privileged private libvirtd (networks need it), as in tests/recovery."""

from __future__ import annotations

import os

import pytest

from tests.guest import libvirtd as _libvirtd


@pytest.fixture(scope="module")
def netlibvirtd():
    if os.geteuid() != 0:
        pytest.skip("libvirt networks need a privileged libvirtd (root)")
    daemon, proc = _libvirtd.start_system()
    try:
        yield daemon
    finally:
        _libvirtd.stop(proc, daemon.workdir.parent)
