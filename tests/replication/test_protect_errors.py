"""`vmferry protect` refuses bad input with one line and exit 2, leaving nothing behind (no record, no
replica directory, no staging directory); the checks run before any conversion."""

from __future__ import annotations

import os

import pytest
import yaml

from tests.conftest import run_vmferry
from tests.replication.conftest import make_ova


@pytest.fixture
def setup(tmp_path, state):
    raw = tmp_path / "disk.raw"
    raw.write_bytes(os.urandom(1 << 20) + bytes(3 << 20))
    make_ova(raw, tmp_path, "web")
    for site in ("dc1", "dr"):
        (tmp_path / site).mkdir()
    (tmp_path / "dr" / "other-app").mkdir()

    def manifest(dr_networks=None, dr_platform="libvirt", components=None, name="shop"):
        dr = {"platform": dr_platform, "libvirt": {"uri": "test:///default", "storage": "dr",
                                                   "networks": dr_networks or {"VM Network": "dr-lan"}}}
        if dr_platform is None:
            dr = {"networks": {"lan": {"subnet": "10.0.0.0/24"}}}
        doc = {"name": name, "components": components or {"web": {"package": "web.ova"}},
               "sites": {"dc1": {"platform": "libvirt", "libvirt": {"uri": "test:///default", "storage": "dc1"}},
                         "dr": dr}}
        path = tmp_path / "app.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    return tmp_path, manifest


def _nothing_left(tmp_path, state):
    assert sorted(os.listdir(tmp_path / "dr")) == ["other-app"]
    assert not (state / "groups").exists() or not [n for n in os.listdir(state / "groups") if n.endswith(".json")]


@pytest.mark.parametrize(("kwargs", "args", "message"), [
    ({}, ("--from", "dc1", "--to", "nowhere"), "no site 'nowhere'"),
    ({}, ("--from", "dc1", "--to", "dc1"), "same site"),
    ({"dr_platform": None}, ("--from", "dc1", "--to", "dr"), "runs no VMs"),
    ({}, ("--from", "dc1", "--to", "dr", "--rpo", "soon"), "not a duration"),
    ({}, ("--from", "dc1", "--to", "dr", "--keep", "0"), "at least one point"),
    ({}, ("--from", "dc1", "--to", "dr", "--max-rate", "fast"), "not a bandwidth"),
    ({}, ("--from", "dc1", "--to", "dr", "--max-rate", "1000"), "bandwidth limit of 1000 bytes/s is not possible"),
    ({"dr_networks": {"lan": "dr-lan"}}, ("--from", "dc1", "--to", "dr"), "maps no libvirt network for network 'VM Network'"),
    ({"components": {"db": {"source": {"domain": "nope"}}}}, ("--from", "dc1", "--to", "dr"), "domain"),
])
def test_refused_with_one_line_and_nothing_written(setup, state, kwargs, args, message):
    tmp_path, manifest = setup
    res = run_vmferry("protect", manifest(**kwargs), *args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr and res.stderr.count("\n") == 1, res.stderr
    _nothing_left(tmp_path, state)


def test_an_existing_replica_directory_is_not_vmferrys(setup, state):
    tmp_path, manifest = setup
    (tmp_path / "dr" / "shop").mkdir()
    (tmp_path / "dr" / "shop" / "theirs.txt").write_text("x")
    res = run_vmferry("protect", manifest(), "--from", "dc1", "--to", "dr")
    assert res.returncode == 2 and "not vmferry's to use" in res.stderr
    assert (tmp_path / "dr" / "shop" / "theirs.txt").read_text() == "x"
    assert not (state / "groups" / "shop.json").exists()


def test_bandwidth_limits_are_read_in_binary_units():
    from vmferry.replication.protect import parse_rate

    assert [parse_rate(t) for t in ("0", "512k", "50M", "50MiB/s", "1G", "65536", 70000)] == [
        0, 512 << 10, 50 << 20, 50 << 20, 1 << 30, 65536, 70000]


def test_sync_refuses_a_bad_bandwidth_before_anything_starts(state):
    res = run_vmferry("sync", "shop", "--max-rate", "lots")
    assert res.returncode == 2 and "not a bandwidth" in res.stderr and res.stderr.count("\n") == 1, res.stderr
