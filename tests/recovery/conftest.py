"""Fixtures of the recovery tests: a privileged private libvirtd that can create networks
(tests/guest/libvirtd.py ``start_system``), and replicas laid out as protect lays them out."""

from __future__ import annotations

import os

import pytest

from tests.guest import libvirtd as _libvirtd


@pytest.fixture(scope="session")
def netlibvirtd():
    if os.geteuid() != 0:
        pytest.skip("isolated libvirt networks need a privileged libvirtd (root)")
    daemon, proc = _libvirtd.start_system()
    try:
        yield daemon
    finally:
        _libvirtd.stop(proc, daemon.workdir.parent)
