"""`convert --to kvm`: stable NIC identity (derived MACs), the cloud-init network config matching NICs by
that MAC (read by cloud-init's own OVF datasource), and the OVF-environment keys that findings promise."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from lxml import etree

from tests.conftest import run_vmferry
from tests.ovfenv.conftest import DATA
from vmferry.dialects import read_package
from vmferry.ovfenv import parse_environment
from vmferry.package import open_package
from vmferry.targets.macs import derived_mac, nic_macs


def _no_mac(tmp_path: Path) -> Path:
    text = (DATA / "vapp.ovf").read_text()
    out = tmp_path / "nomac.ovf"
    out.write_text(re.sub(r"\s*<rasd:Address>[^<]*</rasd:Address>", "", text))
    return out


def _convert(src: Path, out: Path) -> tuple[dict, list[str], Path]:
    got = run_vmferry("convert", src, "--to", "kvm", "-o", out, "--domain-type", "qemu", "--json")
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    root = etree.parse(doc["domains"][0]).getroot()
    macs = [i.find("mac").get("address") for i in root.iter("interface")]
    (iso,) = out.glob("*-ovf-env.iso")
    return doc, macs, iso


def _env_xml(iso: Path, tmp_path: Path) -> bytes:
    dest = tmp_path / "env-extract"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(dest)], check=True,
                   capture_output=True)
    return (dest / "ovf-env.xml").read_bytes()


def test_derived_mac_is_stable_local_and_distinct():
    a = derived_mac("appliance", "3")
    assert a == derived_mac("appliance", "3")
    assert re.fullmatch(r"52:54:00(:[0-9a-f]{2}){3}", a)
    assert len({a, derived_mac("appliance", "4"), derived_mac("other", "3")}) == 3
    vm = read_package(open_package(DATA / "vapp.ovf").envelope).systems[0]
    assert nic_macs(vm) == ["00:50:56:ab:cd:01"]        # the source's own MAC, normalised


def test_no_source_mac_gives_the_same_derived_mac_on_every_conversion(tmp_path, cloud_init_read):
    src = _no_mac(tmp_path)
    vm = read_package(open_package(src).envelope).systems[0]
    expected = nic_macs(vm, "production")
    assert expected == [derived_mac("appliance", "3")]
    _, first, iso = _convert(src, tmp_path / "a")
    _, second, _ = _convert(src, tmp_path / "b")
    assert first == second == expected
    got = cloud_init_read(iso)
    (iface,) = got["interfaces"]
    assert iface["mac"] == expected[0]                    # matched by the domain's MAC, not assumed eth0
    assert f"macaddress: {expected[0]}" in got["netplan"] and "set-name:" in got["netplan"]
    assert iface["subnets"][0]["address"] == "192.0.2.10"


def test_keys_that_findings_promise_are_in_the_written_environment(tmp_path):
    doc, macs, iso = _convert(DATA / "vapp.ovf", tmp_path / "out")
    assert macs == ["00:50:56:ab:cd:01"]
    promised = [f for f in doc["findings"] if "vmferry.net.N" in (f["fix"] or "")]
    assert [f["rule"] for f in promised] == ["VMF-PROP-010"]
    env = parse_environment(_env_xml(iso, tmp_path))
    for f in promised:
        n = re.search(r"NIC (\d+)", f["message"]).group(1)
        keys = {k for k in env.properties if k.startswith(f"vmferry.net.{n}.")}
        assert {f"vmferry.net.{n}.address", f"vmferry.net.{n}.gateway", f"vmferry.net.{n}.dns"} <= keys
    assert env.properties[f"vmferry.net.{n}.address"] == "192.0.2.10/24"
    assert "network-config" in env.properties
