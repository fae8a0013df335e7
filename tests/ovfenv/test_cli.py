"""``vmferry env``: the command line, its errors and its outputs."""

from __future__ import annotations

import base64
import json
import os

import pytest

from tests.conftest import COT
from tests.ovfenv.conftest import DATA
from vmferry.ovfenv import parse_environment, read_iso_file, volume_label


def _one_line_error(got, *needles):
    assert got.returncode == 2, got.stdout + got.stderr
    assert got.stdout == ""
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmferry: error:"), got.stderr
    for n in needles:
        assert n in lines[0]


def test_iso_and_xml_only(vmferry, tmp_path):
    iso, xml = tmp_path / "seed.iso", tmp_path / "ovf-env.xml"
    assert vmferry("env", DATA / "vapp.ovf", "-o", iso, "--set", "ssh-enabled=TRUE").returncode == 0
    assert vmferry("env", DATA / "vapp.ovf", "-o", xml, "--xml-only", "--set", "ssh-enabled=TRUE").returncode == 0
    assert volume_label(iso) == "OVF ENV"
    from_iso = parse_environment(read_iso_file(iso))
    assert from_iso.properties == parse_environment(xml.read_bytes()).properties
    assert from_iso.id == "appliance" and from_iso.properties["ssh-enabled"] == "true"
    assert sorted(os.listdir(tmp_path)) == ["ovf-env.xml", "seed.iso"]


def test_json_report_masks_passwords(vmferry, tmp_path):
    got = vmferry("env", DATA / "vapp.ovf", "-o", tmp_path / "s.iso", "--json", "--set", "root-password=s3cret",
                  "--set", "vami.ip0.Appliance=192.0.2.99")
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    assert doc["properties"]["root-password"] == "********"
    assert doc["set"] == ["root-password", "vami.ip0.Appliance"]
    assert doc["network"]["0"]["address"] == "192.0.2.99" and doc["network"]["0"]["origin"] == "vmware-vapp"
    env = parse_environment(read_iso_file(tmp_path / "s.iso"))
    assert env.properties["root-password"] == "s3cret"      # the guest gets the real value
    assert (tmp_path / "s.iso").stat().st_mode & 0o777 == 0o600
    assert vmferry("env", DATA / "vapp.ovf", "-o", tmp_path / "p.iso").returncode == 0
    assert (tmp_path / "p.iso").stat().st_mode & 0o777 == 0o644
    assert json.loads(base64.b64decode(env.properties["network-config"]))["network"]["config"][0]["subnets"][0][
        "address"] == "192.0.2.99/24"


@pytest.mark.parametrize("args, needles", [
    (["--set", "no-such-key=1"], ["no such property", "--allow-new", "vapp.ovf"]),
    (["--set", "ssh-enabled=maybe"], ["not a boolean"]),
    (["--set", "novalue"], ["expected KEY=VALUE"]),
    (["--profile", "huge"], ["no deployment profile 'huge'", "production, lab"]),
    (["--system", "other"], ["no virtual system 'other'"]),
])
def test_bad_arguments(vmferry, tmp_path, args, needles):
    out = tmp_path / "seed.iso"
    _one_line_error(vmferry("env", DATA / "vapp.ovf", "-o", out, *args), *needles)
    assert not out.exists() and os.listdir(tmp_path) == []


def test_bad_package(vmferry, tmp_path):
    bad = tmp_path / "bad.ovf"
    bad.write_text("<Envelope><oops")
    _one_line_error(vmferry("env", bad, "-o", tmp_path / "seed.iso"), "bad.ovf")
    _one_line_error(vmferry("env", tmp_path / "missing.ovf", "-o", tmp_path / "seed.iso"), "missing.ovf")
    assert os.listdir(tmp_path) == ["bad.ovf"]


def test_existing_output_needs_force(vmferry, tmp_path):
    out = tmp_path / "seed.iso"
    out.write_bytes(b"keep me")
    _one_line_error(vmferry("env", DATA / "vapp.ovf", "-o", out), "exists", "--force")
    assert out.read_bytes() == b"keep me"
    assert vmferry("env", DATA / "vapp.ovf", "-o", out, "--force").returncode == 0
    assert volume_label(out) == "OVF ENV"


def test_error_findings_write_nothing(vmferry, tmp_path):
    out = tmp_path / "seed.iso"
    got = vmferry("env", COT / "csr1000v.ovf", "-o", out, "--set", "mgmt-ipv4-addr=10.1.1.999/24")
    assert got.returncode == 1
    assert "VMF-NETCFG-001" in got.stdout and "mgmt-ipv4-addr" in got.stdout
    assert not out.exists() and os.listdir(tmp_path) == []


def test_ambiguous_plain_key(vmferry, tmp_path):
    text = (DATA / "vapp.ovf").read_text().replace(
        "    <ProductSection>\n", '    <ProductSection ovf:class="other">\n'
        '      <Info>x</Info><Property ovf:key="hostname" ovf:type="string" ovf:value=""/>\n', 1)
    pkg = tmp_path / "two.ovf"
    pkg.write_text(text)
    _one_line_error(vmferry("env", pkg, "-o", tmp_path / "a.iso", "--set", "hostname=h1"),
                    "ambiguous", "vami.hostname.Appliance", "other.hostname")
    got = vmferry("env", pkg, "-o", tmp_path / "a.iso", "--set", "other.hostname=h2", "--json")
    assert got.returncode == 0, got.stderr
    props = json.loads(got.stdout)["properties"]
    assert props["other.hostname"] == "h2" and props["vami.hostname.Appliance"] == "app1"


def test_allow_new(vmferry, tmp_path):
    got = vmferry("env", COT / "minimal.ovf", "-o", tmp_path / "m.iso", "--allow-new", "--json",
                  "--set", "vmferry.net.0.mode=dhcp", "--set", "vmferry.hostname=m1")
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    assert doc["network"]["0"]["dhcp"] is True and doc["properties"]["local-hostname"] == "m1"


def test_adapters_section(vmferry, tmp_path):
    out = tmp_path / "ovf-env.xml"
    assert vmferry("env", DATA / "vapp.ovf", "-o", out, "--xml-only", "--adapters").returncode == 0
    (adapter,) = parse_environment(out.read_bytes()).adapters
    assert (adapter.mac, adapter.network) == ("00:50:56:AB:CD:01", "VM Network")


def test_the_edited_convention_wins(vmferry, tmp_path):
    text = (DATA / "vapp.ovf").read_text().replace(
        '<Property ovf:key="ssh-enabled"',
        '<Property ovf:key="vmferry.net.0.address" ovf:type="string" ovf:value="192.0.2.10/24"/>\n'
        '      <Property ovf:key="ssh-enabled"', 1)
    pkg = tmp_path / "both.ovf"
    pkg.write_text(text)
    got = vmferry("env", pkg, "-o", tmp_path / "a.iso", "--json", "--set", "ip0=192.0.2.44")
    doc = json.loads(got.stdout)
    assert doc["network"]["0"]["address"] == "192.0.2.44" and doc["network"]["0"]["origin"] == "vmware-vapp"
    assert [f["rule"] for f in doc["findings"]] == ["VMF-NETCFG-014"]
    got = vmferry("env", pkg, "-o", tmp_path / "b.iso", "--json", "--set", "vmferry.net.0.address=192.0.2.55/24")
    assert json.loads(got.stdout)["network"]["0"]["address"] == "192.0.2.55"


def test_from_ova(vmferry, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("input.ovf", "input.vmdk", "input.iso", "sample_cfg.txt"):
        (src / name).write_bytes((COT / name).read_bytes())
    ova = tmp_path / "input.ova"
    assert vmferry("pack", src, "-o", ova).returncode == 0
    got = vmferry("env", ova, "-o", tmp_path / "seed.iso", "--json", "--set", "mgmt-ipv4-addr=192.0.2.7/24")
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    assert doc["system"] == "test" and doc["network"]["0"]["address"] == "192.0.2.7"
    env = parse_environment(read_iso_file(tmp_path / "seed.iso"))
    assert env.properties["mgmt-ipv4-addr"] == "192.0.2.7/24"


def test_guestinfo_only_transport_is_reported(vmferry, tmp_path):
    pkg = tmp_path / "guestinfo.ovf"
    pkg.write_text((DATA / "vapp.ovf").read_text().replace('ovf:transport="iso"',
                                                            'ovf:transport="com.vmware.guestInfo"'))
    got = vmferry("env", pkg, "-o", tmp_path / "a.iso", "--json")
    assert got.returncode == 0, got.stderr
    assert [f["rule"] for f in json.loads(got.stdout)["findings"]] == ["VMF-ENV-001"]
    got = vmferry("env", DATA / "vapp.ovf", "-o", tmp_path / "b.iso", "--json")
    assert json.loads(got.stdout)["findings"] == []


def test_collection_needs_system(vmferry, tmp_path, cloud_init_read):
    text = (DATA / "vapp.ovf").read_text()
    start, end = text.index("  <VirtualSystem "), text.index("</VirtualSystem>") + len("</VirtualSystem>")
    vs = text[start:end]
    second = vs.replace('ovf:id="appliance"', 'ovf:id="second"').replace(
        'ovf:value="192.0.2.10"', 'ovf:value="192.0.2.11"')
    pkg = tmp_path / "pair.ovf"
    pkg.write_text(text[:start] + '  <VirtualSystemCollection ovf:id="pair">\n    <Info>two VMs</Info>\n'
                   '    <ProductSection ovf:class="app"><Info>shared</Info>'
                   '<Property ovf:key="db-host" ovf:type="string" ovf:value="db.example"/></ProductSection>\n'
                   + vs + "\n" + second + "\n  </VirtualSystemCollection>" + text[end:])
    _one_line_error(vmferry("env", pkg, "-o", tmp_path / "a.iso"), "2 virtual systems", "--system",
                    "appliance, second")
    got = vmferry("env", pkg, "-o", tmp_path / "a.iso", "--system", "second", "--json",
                  "--set", "app.db-host=db2.example")
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    assert doc["system"] == "second" and doc["network"]["0"]["address"] == "192.0.2.11"
    env = parse_environment(read_iso_file(tmp_path / "a.iso"))
    assert env.id == "second" and env.properties["app.db-host"] == "db2.example"
    # DSP0243: each sibling is an Entity carrying its properties
    assert list(env.entities) == ["appliance"]
    assert env.entities["appliance"]["vami.ip0.Appliance"] == "192.0.2.10"
    # cloud-init reads the system's own PropertySection, not the sibling's
    seen = cloud_init_read(tmp_path / "a.iso")
    assert seen["properties"]["vami.ip0.Appliance"] == "192.0.2.11"
    assert seen["interfaces"][0]["subnets"][0]["address"] == "192.0.2.11"


def test_unwritable_output_directory(vmferry, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):   # root ignores permissions: use a path under a regular file instead
            target = tmp_path / "file"
            target.write_text("x")
            out = target / "seed.iso"
            _one_line_error(vmferry("env", DATA / "vapp.ovf", "-o", out), "output directory does not exist")
        else:
            _one_line_error(vmferry("env", DATA / "vapp.ovf", "-o", ro / "seed.iso"), "cannot write")
    finally:
        ro.chmod(0o755)
