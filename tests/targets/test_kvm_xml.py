"""`convert --to kvm`: the domain XML of every sample is valid for libvirt (virt-xml-validate) and is
defined by libvirt's test driver; choices follow the source and the options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import ALL_SAMPLES, COT, run_vmferry
from vmferry.tools.proc import run


def kvm(src, out, *extra) -> dict:
    result = run_vmferry("convert", src, "--to", "kvm", "-o", out, "--descriptor-only", "--domain-type", "qemu",
                         "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("src", ALL_SAMPLES, ids=lambda p: p.name)
def test_domain_xml_validates_and_defines_on_test_driver(tmp_path, src):
    import libvirt

    doc = kvm(src, tmp_path / "out")
    (xml_path,) = doc["domains"]
    run(["virt-xml-validate", xml_path, "domain"])
    conn = libvirt.open("test:///default")
    try:
        name = etree.parse(xml_path).findtext("name")
        if name in conn.listDefinedDomains() or name in [d.name() for d in conn.listAllDomains()]:
            old = conn.lookupByName(name)  # the test driver's own sample domain is called "test"
            if old.isActive():
                old.destroy()
            old.undefine()
        dom = conn.defineXML(Path(xml_path).read_text())
        assert dom.name() == etree.parse(xml_path).findtext("name")
        dom.undefine()
    finally:
        conn.close()


def test_cpus_memory_nics_and_disks_follow_the_default_profile(tmp_path):
    doc = kvm(COT / "csr1000v.ovf", tmp_path / "csr", "--network-map", "GigabitEthernet1=mgmt")
    root = etree.parse(doc["domains"][0]).getroot()
    assert root.findtext("vcpu") == "1" and root.findtext("memory") == "4096"
    nets = [i.find("source").get("network") for i in root.iter("interface")]
    assert nets == ["mgmt", "default", "default"]
    rules = [f["rule"] for f in doc["findings"]]
    assert rules.count("VMF-KVM-001") == 2  # two unmapped networks
    disks = [d.find("source").get("file") for d in root.iter("disk") if d.get("device") == "disk"]
    assert disks == [str(tmp_path / "csr" / "input.qcow2")]


def test_profile_choice_and_new_macs(tmp_path):
    doc = kvm(COT / "csr1000v.ovf", tmp_path / "csr", "--profile", "4CPU-8GB", "--new-macs")
    root = etree.parse(doc["domains"][0]).getroot()
    assert root.findtext("vcpu") == "4" and root.findtext("memory") == "8192"
    macs = [i.find("mac").get("address") for i in root.iter("interface")]
    assert all(m.startswith("52:54:00:") for m in macs) and len(set(macs)) == 3


def test_vmware_source_keeps_macs_and_topology(tmp_path):
    doc = kvm(COT / "vmware.ovf", tmp_path / "vm")
    root = etree.parse(doc["domains"][0]).getroot()
    topo = root.find("cpu/topology")
    assert (topo.get("sockets"), topo.get("cores")) == ("1", "2")  # vmw:CoresPerSocket 2 of 2 vCPUs
    assert root.find("os/type").get("machine") == "q35"


def test_ide_source_without_inspection_stays_on_ide_and_says_so(tmp_path):
    doc = kvm(COT / "iosv.ovf", tmp_path / "iosv")
    assert doc["choices"][0]["disk_bus"] == "ide"
    assert any(f["rule"] == "VMF-KVM-002" for f in doc["findings"])


def test_forced_bus_and_model(tmp_path):
    doc = kvm(COT / "vmware.ovf", tmp_path / "vm", "--disk-bus", "virtio", "--nic-model", "virtio")
    root = etree.parse(doc["domains"][0]).getroot()
    assert {d.find("target").get("bus") for d in root.iter("disk")} == {"virtio"}
    assert {i.find("model").get("type") for i in root.iter("interface")} == {"virtio"}


def test_bad_network_map_is_a_usage_error(tmp_path):
    result = run_vmferry("convert", COT / "vmware.ovf", "--to", "kvm", "-o", tmp_path / "x", "--descriptor-only",
                         "--network-map", "nonsense")
    assert result.returncode == 2 and "SRC=DST" in result.stderr
    assert not (tmp_path / "x").exists()


def test_domain_type_is_not_read_from_the_converting_machine(tmp_path):
    """Without a target connection the XML is written for a KVM host, whatever /dev/kvm says here."""
    result = run_vmferry("convert", COT / "input.ovf", "--to", "kvm", "-o", tmp_path / "out", "--descriptor-only",
                         "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (choice,) = doc["choices"]
    assert choice["domain_type"] == "kvm" and choice["fitted_to"] is None
    root = etree.parse(doc["domains"][0]).getroot()
    assert root.get("type") == "kvm" and root.find("cpu").get("mode") == "host-model"


def test_domain_fitted_to_a_host_without_kvm(tmp_path):
    """fit_to_host with the capabilities captured from a real libvirtd without KVM: the same fit as
    deploy (qemu, qemu64 CPU, the host's emulator), each change listed, the compromise a VMF-KVM-005."""
    from tests.guest.test_libvirt_host import tcg_only_facts
    from vmferry.targets.kvm import KvmReport, fit_to_host

    doc = kvm(COT / "input.ovf", tmp_path / "out", "--domain-type", "kvm")
    text = Path(doc["domains"][0]).read_text()
    facts = tcg_only_facts()
    report = KvmReport("src", "out", None)
    xml, dtype, machine = fit_to_host(text, facts, None, "vm1", report)
    root = etree.fromstring(xml.encode())
    assert dtype == root.get("type") == "qemu" and machine == root.find("os/type").get("machine")
    assert root.findtext("cpu/model") == "qemu64" and root.findtext("devices/emulator") == facts.types["qemu"].emulator
    assert [f.rule for f in report.findings] == ["VMF-KVM-005"] and "TCG" in report.findings[0].message
    assert any(c.kind == "fitted" and "domain type kvm -> qemu" in c.detail for c in report.changes)
    forced = KvmReport("src", "out", None)
    assert fit_to_host(text, facts, "qemu", "vm1", forced)[1] == "qemu" and not forced.findings   # asked for
