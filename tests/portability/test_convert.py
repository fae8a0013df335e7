"""`vmferry convert` between dialects, checked by re-reading the output with vmferry, against the DMTF
XSD, and with a real third-party reader (COT 2.2.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import ALL_SAMPLES, COT, run_vmferry
from vmferry.ovf import names as N
from vmferry.summary import summarize
from vmferry.validate import validate_package

DMTF_NAMESPACES = {N.OVF_1, N.RASD, N.VSSD, N.XSI, N.CIM, "http://www.w3.org/XML/1998/namespace"}
TARGETS = ("dmtf", "vmware", "virtualbox", "xen")


def facts(path) -> list[tuple]:
    """What must survive a conversion: CPUs, memory, disks (count, capacities), NICs, networks, OS."""
    s = summarize(path)
    out = []
    caps = sorted(d.capacity_bytes or 0 for d in s.disks)
    for sy in s.systems:
        out.append((sy.cpus, sy.memory_mib, len(sy.disks), caps, [n.network for n in sy.nics], _cim(sy.os),
                    [(p.id, p.cpus, p.memory_mib, p.nics) for p in sy.profiles]))
    return out


def _cim(os) -> int | None:
    """The CIM OS code, or the one of the oVirt OS name an oVirt descriptor gives instead."""
    from vmferry.tables.os_ovirt import from_ovirt

    row = from_ovirt(os.vendor_type) if os.cim_id is None else None
    return row.cim if row is not None else os.cim_id


def convert(src, target, out) -> Path:
    """The library call behind `vmferry convert --descriptor-only` (the CLI is exercised below)."""
    from vmferry.conversion import convert_package

    convert_package(src, target, out, descriptor_only=True)
    return Path(out)


@pytest.mark.parametrize("src", ALL_SAMPLES, ids=lambda p: p.name)
def test_dmtf_profile_is_standard_and_keeps_the_vm(tmp_path, src):
    out = convert(src, "dmtf", tmp_path / "out.ovf")
    report = validate_package(out, descriptor_only=True, strict=True)
    assert not [f for f in report.findings if f.rule == "VMF-XSD-001"], [str(f) for f in report.findings]
    namespaces = {el.tag[1:].split("}")[0] for el in etree.parse(str(out)).iter() if str(el.tag).startswith("{")}
    attr_ns = {k[1:].split("}")[0] for el in etree.parse(str(out)).iter() for k in el.attrib if k.startswith("{")}
    assert namespaces | attr_ns <= DMTF_NAMESPACES
    source, result = facts(src), facts(out)
    if src.name == "invalid.ovf":  # its disk Item names no disk: dropped, reported; the rest is kept
        source = [(c, m, 0, d, n, o, p) for (c, m, _, d, n, o, p) in source]
    assert result == source


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("src", ALL_SAMPLES, ids=lambda p: p.name)
def test_every_target_keeps_profiles_and_properties(tmp_path, src, target):
    out = convert(src, target, tmp_path / "out.ovf")
    before, after = summarize(src).systems, summarize(out).systems
    for b, a in zip(before, after, strict=True):
        assert [(p.id, p.label, p.default) for p in a.profiles] == [(p.id, p.label, p.default) for p in b.profiles]
        source_props = [(p.full_key, p.type, p.value, p.user_configurable, p.password) for p in b.properties]
        converted = [(p.full_key, p.type, p.value, p.user_configurable, p.password) for p in a.properties]
        assert converted[:len(source_props)] == source_props


def test_virtualbox_ubuntu_to_vmware(tmp_path):
    out = convert(COT / "ubuntu.2.0.ovf", "vmware", tmp_path / "ubuntu.ovf")
    tree = etree.parse(str(out))
    root = tree.getroot()
    assert root.tag == f"{{{N.OVF_1}}}Envelope"
    assert not any(str(el.tag).startswith(f"{{{N.VBOX}}}") for el in root.iter())
    assert not any(str(el.tag).endswith(("}StorageItem", "}EthernetPortItem")) for el in root.iter())
    s = summarize(out)
    system = s.systems[0]
    assert system.hardware_family and all(f.startswith("vmx-") for f in system.hardware_family)
    assert system.os.vendor_type == "ubuntu64Guest"
    assert [(d.controller, d.controller_model) for d in system.disks] == [("sata", "vmware.sata.ahci")]
    assert s.dialect["name"] == "vmware"


def test_vmware_to_virtualbox(tmp_path):
    out = convert(COT / "vmware.ovf", "virtualbox", tmp_path / "vb.ovf")
    system = summarize(out).systems[0]
    assert system.hardware_family == ["virtualbox-2.2"]
    assert system.os.vendor_type == "RedHat6_64"
    assert summarize(out).dialect["name"] == "virtualbox"


def test_csr1000v_keeps_all_profiles_and_properties_everywhere(tmp_path):
    src = COT / "csr1000v.ovf"
    source = summarize(src).systems[0]
    for target in TARGETS:
        out = convert(src, target, tmp_path / f"{target}.ovf")
        system = summarize(out).systems[0]
        assert [(p.id, p.cpus, p.memory_mib, p.nics) for p in system.profiles] == \
            [(p.id, p.cpus, p.memory_mib, p.nics) for p in source.profiles]
        assert len(system.properties) >= 27
        assert {p.full_key for p in source.properties} <= {p.full_key for p in system.properties}


def test_report_lists_changes_and_dropped_vendor_elements():
    result = run_vmferry("convert", COT / "vmware.ovf", "--to", "dmtf", "-o", "/dev/null/x.ovf",
                         "--descriptor-only", "--json")
    assert result.returncode == 2  # cannot write there: one line, no traceback
    assert "Traceback" not in result.stderr


def test_report_json(tmp_path):
    result = run_vmferry("convert", COT / "vmware.ovf", "--to", "dmtf", "-o", tmp_path / "x.ovf",
                         "--descriptor-only", "--json")
    doc = json.loads(result.stdout)
    dropped = [c for c in doc["changes"] if c["kind"] == "dropped"]
    assert any("vmw:Config" in c["what"] for c in dropped)
    assert doc["target"] == "dmtf" and doc["dialect"] == "vmware"


@pytest.fixture(scope="session")
def cot(tmp_path_factory):
    """COT 2.2.1 from PyPI in its own virtualenv: a real third-party OVF reader."""
    cache = Path(os.environ.get("VMFERRY_TEST_CACHE", Path.home() / ".cache" / "vmferry-test")) / "cot-venv"
    cot_bin = cache / "bin" / "cot"
    if not cot_bin.exists():
        subprocess.run([sys.executable, "-m", "venv", str(cache)], check=True)
        subprocess.run([str(cache / "bin" / "pip"), "install", "-q", "cot==2.2.1"], check=True,
                       timeout=600)
    return cot_bin


@pytest.mark.parametrize("target", TARGETS)
def test_cot_reads_every_converted_output(tmp_path, cot, target):
    outs = [str(convert(src, target, tmp_path / f"{src.stem}-{target}.ovf")) for src in ALL_SAMPLES]
    result = subprocess.run([str(cot), "--force", "info", *outs], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:  # name the output COT refused
        for out in outs:
            one = subprocess.run([str(cot), "--force", "info", out], capture_output=True, text=True, timeout=120)
            assert one.returncode == 0, (out, one.stdout[-500:], one.stderr[-2000:])
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert all(out in result.stdout for out in outs)  # COT summarised every one of them
