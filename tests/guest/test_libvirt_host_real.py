"""The domain fits the host, on the private real libvirtd (tests/guest/libvirtd.py): a kvm domain deployed
where libvirt offers no KVM runs under TCG with a warning, and a host that claims KVM but cannot run a
kvm guest (the nested case) falls back to TCG on the first failure."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from lxml import etree

from tests.conftest import run_vmferry
from vmferry.sites.libvirt_host import define_and_start, probe
from vmferry.targets.libvirt_xml import DomainPlan, NicPlan, domain_xml
from vmferry.tools import libvirt as lv

pytestmark = pytest.mark.slow


def _xml(daemon, name: str) -> str:
    """A diskless domain (SeaBIOS finds nothing to boot and waits): enough to prove QEMU starts."""
    return domain_xml(DomainPlan(name=name, domain_type="kvm", machine="q35", vcpus=1, sockets=1, cores=1,
                                 memory_mib=64, nics=[NicPlan("", "e1000", None, "user")],
                                 console_log=str(daemon.workdir / f"{name}.log")))


def test_kvm_domain_runs_under_what_the_host_offers(libvirtd, tmp_path):
    with lv.connect(libvirtd.uri) as conn:
        facts = probe(conn)
    assert "qemu" in facts.types and facts.types["qemu"].emulator
    xml = tmp_path / "vm.xml"
    xml.write_text(_xml(libvirtd, "vmferry-fit-real"))
    res = run_vmferry("deploy", xml, "--connect", libvirtd.uri, "--start", "--json")
    try:
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert doc["state"] == "running" and doc["domain_type"] == facts.best_type
        if facts.best_type == "qemu":            # this machine: /dev/kvm unusable by the daemon
            assert "no KVM" in res.stderr and doc["warnings"]
            with lv.connect(libvirtd.uri) as conn:
                live = etree.fromstring(conn._conn.lookupByName("vmferry-fit-real").XMLDesc())
            assert live.get("type") == "qemu" and live.findtext("cpu/model") == "qemu64"
    finally:
        with lv.connect(libvirtd.uri) as conn:
            if "vmferry-fit-real" in conn.names():
                conn.undefine("vmferry-fit-real")


def test_host_that_claims_kvm_but_cannot_run_it_falls_back_to_tcg(libvirtd):
    with lv.connect(libvirtd.uri) as conn:
        facts = probe(conn)
        if "kvm" in facts.types:
            pytest.skip("this host really runs kvm guests")
        # the nested case: the facts say kvm (as a nested host's may), libvirt itself then refuses it
        claimed = replace(facts, types={"kvm": replace(facts.types["qemu"], domain_type="kvm"), **facts.types})
        done = define_and_start(conn, _xml(libvirtd, "vmferry-nested"), start=True, facts=claimed)
        try:
            assert done.domain_type == "qemu" and done.info.state == "running"
            assert any("did not run under it" in w for w in done.warnings)
            assert conn._conn.lookupByName("vmferry-nested").XMLDesc().startswith("<domain type='qemu'")
        finally:
            conn.undefine("vmferry-nested")
