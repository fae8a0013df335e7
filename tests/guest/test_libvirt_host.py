"""The domain fits the host it lands on (vmferry.sites.libvirt_host): fast tests on libvirt capabilities
captured from a real libvirtd without KVM (tests/guest/data) and on the test driver's networks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import COT, run_vmferry
from vmferry.errors import TargetError
from vmferry.sites.libvirt_host import (
    HostFacts,
    TypeCaps,
    define_and_start,
    fit_domain,
    read_capabilities,
    read_domain_capabilities,
)
from vmferry.targets.libvirt_xml import DomainPlan, NicPlan, domain_xml
from vmferry.tools import libvirt as lv

DATA = Path(__file__).parent / "data"


def tcg_only_facts(networks=None) -> HostFacts:
    types = read_capabilities((DATA / "capabilities-tcg-only.xml").read_text())
    types["qemu"] = read_domain_capabilities((DATA / "domcaps-qemu.xml").read_text(), types["qemu"])
    return HostFacts("qemu:///captured", "x86_64", types, networks if networks is not None else {"default": True})


def plan_xml(domain_type="kvm", machine="q35", nets=(("network", "default"),), name="vmferry-fit") -> str:
    nics = [NicPlan(dst, "e1000", None, kind) for kind, dst in nets]
    return domain_xml(DomainPlan(name=name, domain_type=domain_type, machine=machine, vcpus=1, sockets=1, cores=1,
                                 memory_mib=64, nics=nics))


def test_captured_capabilities_offer_tcg_only():
    facts = tcg_only_facts()
    assert list(facts.types) == ["qemu"] and facts.best_type == "qemu"
    qemu = facts.types["qemu"]
    assert qemu.emulator == "/usr/bin/qemu-system-x86_64"
    assert qemu.machines["q35"].startswith("pc-q35-") and "pc" in qemu.machines
    assert "qemu64" in qemu.cpu_models and "host-passthrough" not in qemu.cpu_modes


def test_kvm_domain_on_a_host_without_kvm_becomes_tcg_with_a_warning():
    fit = fit_domain(plan_xml("kvm"), tcg_only_facts())
    root = etree.fromstring(fit.xml)
    assert fit.domain_type == root.get("type") == "qemu"
    assert root.find("cpu").get("mode") == "custom" and root.findtext("cpu/model") == "qemu64"
    assert root.find("cpu/topology") is not None
    assert root.findtext("devices/emulator") == "/usr/bin/qemu-system-x86_64"
    assert root.find("os/type").get("machine") == "q35"
    assert any("no KVM" in w for w in fit.warnings)
    assert "domain type kvm -> qemu" in fit.changes


def test_qemu_domain_on_a_kvm_host_becomes_kvm_with_host_model():
    facts = tcg_only_facts()
    kvm = replace(facts.types["qemu"], domain_type="kvm", cpu_modes=frozenset({"host-model", "custom"}))
    facts = replace(facts, types={"kvm": kvm, **facts.types})
    fit = fit_domain(plan_xml("qemu"), facts)
    root = etree.fromstring(fit.xml)
    assert fit.domain_type == "kvm" and root.find("cpu").get("mode") == "host-model"
    assert root.find("cpu/model") is None and not fit.warnings
    assert fit_domain(plan_xml("kvm"), facts, domain_type="qemu").domain_type == "qemu"   # asked for


def test_machine_the_emulator_lacks_is_replaced_with_a_warning():
    facts = tcg_only_facts()
    old = TypeCaps("qemu", "/usr/bin/qemu-system-x86_64", {"pc": "pc-i440fx-2.0", "pc-i440fx-2.0": "pc-i440fx-2.0"},
                   "pc-i440fx-2.0")
    fit = fit_domain(plan_xml("qemu", "q35"), replace(facts, types={"qemu": old}))
    assert fit.machine == "pc-i440fx-2.0" and any("q35 is not offered" in w for w in fit.warnings)


def test_network_choice():
    two = tcg_only_facts({"lan": True, "dmz": True, "old": False})
    with pytest.raises(TargetError) as err:
        fit_domain(plan_xml(), two)
    assert "no network 'default'" in str(err.value) and "dmz (active), lan (active), old (inactive)" in str(err.value)
    one = tcg_only_facts({"lan": True, "old": False})
    fit = fit_domain(plan_xml(), one)
    assert etree.fromstring(fit.xml).find("devices/interface/source").get("network") == "lan"
    assert any("only active network" in w for w in fit.warnings)
    with pytest.raises(TargetError, match="no network 'mgmt'"):          # an explicit mapping is never guessed
        fit_domain(plan_xml(nets=(("network", "mgmt"),)), one)
    user = fit_domain(plan_xml(nets=(("user", ""),)), tcg_only_facts({}))
    assert not [w for w in user.warnings if "network" in w]


def test_networks_read_from_the_test_driver():
    with lv.connect("test:///default") as conn:
        assert conn.networks() == {"default": True}
        raw = conn._conn
        lan = raw.networkDefineXML("<network><name>vmferry-lan</name><bridge name='vmfbr0'/></network>")
        lan.create()
        old = raw.networkLookupByName("default")
        old.destroy()
        try:
            facts = HostFacts("test:///default", "x86_64", {}, conn.networks())
            done = define_and_start(conn, plan_xml("test", nets=(("network", "default"),), name="vmferry-net"),
                                    start=False, facts=facts)
            try:
                dumped = etree.fromstring(raw.lookupByName("vmferry-net").XMLDesc())
                assert dumped.find("devices/interface/source").get("network") == "vmferry-lan"
                assert any("vmferry-lan" in w for w in done.warnings)
            finally:
                conn.undefine("vmferry-net")
        finally:
            old.create()
            lan.destroy()
            lan.undefine()


def test_deploy_command_fits_a_converted_domain_on_the_test_driver(tmp_path):
    got = run_vmferry("convert", COT / "csr1000v.ovf", "--to", "kvm", "-o", tmp_path / "csr", "--descriptor-only",
                      "--json")
    assert got.returncode == 0, got.stderr
    (xml,) = json.loads(got.stdout)["domains"]
    res = run_vmferry("deploy", xml, "--connect", "test:///default", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["state"] == "shutoff" and doc["warnings"] == [] and res.stdout.count("\n") == 1
    res = run_vmferry("deploy", xml, "--connect", "test:///default", "--domain-type", "kvm")
    assert res.returncode == 0, res.stderr      # the test driver states no x86_64 types: nothing to judge
