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


def test_convert_fits_the_domain_to_the_target_host_not_to_the_converting_machine(libvirtd, tmp_path):
    """``convert --connect``: the domain type is what the target daemon offers (here: root can open
    /dev/kvm, the daemon's user cannot, so libvirt offers only qemu), and the XML it writes is defined
    and started there by libvirt itself, with no fitting left for deploy to do."""
    from tests.conftest import COT

    with lv.connect(libvirtd.uri) as conn:
        facts = probe(conn)
    out = tmp_path / "out"
    res = run_vmferry("convert", COT / "input.ovf", "--to", "kvm", "-o", out, "--descriptor-only", "--json",
                      "--connect", libvirtd.uri, "--network-map", "VM Network=user")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    (choice,) = doc["choices"]
    assert choice["domain_type"] == facts.best_type and choice["fitted_to"] == libvirtd.uri
    root = etree.parse(doc["domains"][0]).getroot()
    assert root.get("type") == facts.best_type
    assert root.findtext("devices/emulator") == facts.types[facts.best_type].emulator
    if facts.best_type == "qemu":
        assert any(f["rule"] == "VMF-KVM-005" for f in doc["findings"])
        assert root.findtext("cpu/model") == "qemu64"
    for disk in root.findall("devices/disk"):        # descriptor only: no disk files to open
        root.find("devices").remove(disk)
    root.find("devices/serial/log").set("file", str(libvirtd.workdir / "convert-fit.log"))
    with lv.connect(libvirtd.uri) as conn:
        info = conn.define(etree.tostring(root, encoding="unicode"))    # libvirt's own define, no fit
        try:
            assert conn.start(info.name).state == "running"
        finally:
            conn.undefine(info.name)
    bad = run_vmferry("convert", COT / "input.ovf", "--to", "kvm", "-o", tmp_path / "bad", "--descriptor-only",
                      "--connect", "bogus:///no-such-driver")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and not (tmp_path / "bad").exists()
