"""Helpers of the replication tests: a VMware-style OVA made from a raw disk image, a state directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.guest.test_end_to_end import OVF


def make_ova(raw: Path, work: Path, name: str, ip: str = "10.9.8.7") -> Path:
    """``raw`` packed as VMware would export it (streamOptimized VMDK in an OVA) at ``work/name.ova``,
    replacing any earlier one: a package refreshed from time to time."""
    from vmferry.disks.convert import convert_disk, open_disk
    from vmferry.disks.packdir import pack_directory

    pkg = work / f"{name}.pkg"
    shutil.rmtree(pkg, ignore_errors=True)
    pkg.mkdir(parents=True)
    convert_disk(open_disk(raw), pkg / "guest.vmdk", "vmdk-stream")
    (pkg / f"{name}.ovf").write_text(OVF.format(name=name, capacity=os.path.getsize(raw), ip=ip))
    ova = work / f"{name}.ova"
    pack_directory(pkg, ova, force=True)
    shutil.rmtree(pkg)
    return ova


@pytest.fixture
def state(tmp_path, monkeypatch) -> Path:
    """A private state directory (``$VMFERRY_STATE``) for the library and the child vmferry processes."""
    root = tmp_path / "state"
    monkeypatch.setenv("VMFERRY_STATE", str(root))
    return root
