"""Disaster failover (library): the serving test guest launched at dr from its newest recovery point on
the site's production libvirt network, proved, left running, with the data-loss window reported; a
second failover is refused (no VM started twice) and the point is never written."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from tests.recovery import replicas, serviceguest
from vmferry.recovery.failover import failover_disaster
from vmferry.recovery.model import Probe, TargetNetwork, VmNic
from vmferry.recovery.report import render_text
from vmferry.tools import libvirt as lv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
PROD = ("<network><name>dr-lan</name><bridge name='vmfprod0' stp='off'/><dns enable='no'/>"
        "<ip address='10.78.0.1' prefix='24'/></network>")


def test_disaster_failover_runs_the_newest_point_on_production_networks(netlibvirtd, tmp_path):
    storage = netlibvirtd.workdir / "dr-failover"
    storage.mkdir()
    netlibvirtd.own(storage)
    vm = replicas.vm_spec(storage, "shop", "web", serviceguest.service_image(), 13, (Probe("http", 80, "/"),))
    vm = replace(vm, nics=(VmNic(0, "dr-app", "10.78.0.13", 24),))
    taken = datetime.now(UTC) - timedelta(seconds=120)
    plan = replace(replicas.plan_for("shop", netlibvirtd.uri, storage, [vm], []),
                   networks=(TargetNetwork("dr-app", "10.78.0.0/24", "10.78.0.1"),),
                   taken_at=taken.isoformat(timespec="seconds"))
    with lv.connect(netlibvirtd.uri) as conn:
        conn.define_network(PROD)
    try:
        report = failover_disaster(plan, tmp_path / "state", production={"dr-app": "dr-lan"})
        assert report.ok, render_text(report)
        assert 119 <= report.data_loss_seconds <= 180
        assert "data-loss window: " in render_text(report) and report.to_dict()["data_loss_seconds"] >= 119
        assert report.vms[0].proved and report.vms[0].domain == "web" and report.replicas_unchanged
        assert report.networks == [{"name": "dr-lan", "bridge": None, "target_network": "dr-app",
                                    "subnet": "10.78.0.0/24", "host_address": None, "isolated": False}]
        with lv.connect(netlibvirtd.uri) as conn:
            assert conn.info("web").active                     # it stays: the application runs at dr now
            live = etree.fromstring(conn.domain("web").XMLDesc())
            assert [s.get("network") for s in live.findall("devices/interface/source")] == ["dr-lan"]
            disk = live.find("devices/disk[@device='disk']/source").get("file")
            assert f"shop.failover-{report.run_id}" in disk
        again = failover_disaster(plan, tmp_path / "state", production={"dr-app": "dr-lan"})
        assert not again.ok and "already has a domain 'web'" in again.error and again.vms == []
        missing = failover_disaster(plan, tmp_path / "state", production={})
        assert not missing.ok and "maps to no active libvirt network" in missing.error
        assert len(list(storage.glob("shop.failover-*"))) == 1     # refused runs made nothing
    finally:
        with lv.connect(netlibvirtd.uri) as conn:
            if "web" in conn.names():
                conn.undefine("web")
            conn.remove_network("dr-lan")
        for d in storage.glob("shop.failover-*"):
            shutil.rmtree(d)
