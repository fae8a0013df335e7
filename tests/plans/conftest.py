"""Fixtures of the plans tests: the three-tier example copied to a temp dir, and real servers.

Servers run on 127.0.0.1, on free ports, with their files in temporary directories: BIND 9 (the
locator's ``Named`` helper), HAProxy from Debian with an admin socket (tests/plans/servers.py).
The apply tests re-address the ``cloud`` site into 127.20.0.0/16 so that HAProxy's health checks of
the new members never leave the machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.plans.servers import EXAMPLE, ZONE, HAProxy
from vmferry.locator.devservers import Named


@pytest.fixture
def example(tmp_path) -> Path:
    """A private copy of examples/three-tier; returns the manifest path."""
    dst = tmp_path / "three-tier"
    shutil.copytree(EXAMPLE, dst)
    return dst / "app.yaml"


@pytest.fixture
def named(tmp_path):
    server = Named(tmp_path / "named", zone=ZONE).start()
    yield server
    server.close()


@pytest.fixture
def haproxy(tmp_path):
    server = HAProxy(tmp_path / "haproxy", {"web1": "10.1.1.11:80"}).start()   # web2 is missing: added
    yield server
    server.close()
