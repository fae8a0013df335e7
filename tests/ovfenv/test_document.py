"""ovf-env.xml (DSP0243 environment document) and the ISO transport image."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from vmferry.errors import ToolFailed, UsageError, VmferryError, XmlError
from vmferry.ovfenv import (
    Adapter,
    Environment,
    EnvProperty,
    Platform,
    build_environment,
    instance_id,
    parse_environment,
    read_iso_file,
    volume_label,
    write_atomic,
    write_iso,
)
from vmferry.ovfenv.document import OE_NS, VE_NS

OE = f"{{{OE_NS}}}"


def test_document_structure():
    env = Environment("vm1", {"a.b.c": "x", "hostname": "h1"}, Platform(version="9", timezone=-60))
    root = etree.fromstring(env.to_xml())
    assert root.tag == f"{OE}Environment" and root.get(f"{OE}id") == "vm1"
    assert [c.tag for c in root] == [f"{OE}PlatformSection", f"{OE}PropertySection"]
    plat = root[0]
    assert [(c.tag[len(OE):], c.text) for c in plat] == [("Kind", "vmferry"), ("Version", "9"), ("Vendor", "vmferry"),
                                                        ("Locale", "en"), ("Timezone", "-60")]
    assert [(p.get(f"{OE}key"), p.get(f"{OE}value")) for p in root[1]] == [("a.b.c", "x"), ("hostname", "h1")]
    assert VE_NS.encode() not in env.to_xml()          # no VMware namespace unless adapters are asked for


def test_values_survive_xml_escaping():
    tricky = 'a "quoted" <tag> & \'apos\'\nsecond line\ttab ünïcødé'
    env = Environment("vm", {"k": tricky, "empty": ""})
    back = parse_environment(env.to_xml())
    assert back.properties == {"k": tricky, "empty": ""}
    assert back.id == "vm" and back.platform.kind == "vmferry"


def test_adapters_section_round_trip():
    env = Environment("vm", {}, adapters=[Adapter("00:50:56:aa:bb:cc", "VM Network", 7)])
    xml = env.to_xml()
    assert b"EthernetAdapterSection" in xml and VE_NS.encode() in xml
    assert parse_environment(xml).adapters == env.adapters


@pytest.mark.parametrize("data", [b"<nope", b"<Environment/>",
                                  b'<!DOCTYPE x [<!ENTITY e "boom">]><Environment xmlns="' + OE_NS.encode()
                                  + b'">&e;</Environment>'])
def test_parse_rejects(data):
    with pytest.raises(XmlError):
        parse_environment(data, path="x.xml")


def test_build_adds_cloud_init_keys_only_when_missing():
    props = [EnvProperty("ip0", "vami.ip0.A", "192.0.2.4"), EnvProperty("netmask0", "vami.netmask0.A", "24"),
             EnvProperty("hostname", "vami.hostname.A", "h")]
    r = build_environment("vm", props)
    assert r.added == ["network-config", "local-hostname", "instance-id"]
    assert r.environment.properties["instance-id"] == instance_id("vm", {p.full_key: p.value for p in props})
    again = build_environment("vm", props)
    assert again.environment.properties["instance-id"] == r.environment.properties["instance-id"]
    props[0].value = "192.0.2.5"
    assert build_environment("vm", props).environment.properties["instance-id"] != \
        r.environment.properties["instance-id"]
    secret = props + [EnvProperty("pw", "pw", "a", password=True)]
    other = [*props[:-1], props[-1], EnvProperty("pw", "pw", "b", password=True)]
    assert build_environment("vm", secret).environment.properties["instance-id"] == \
        build_environment("vm", other).environment.properties["instance-id"]
    mine = props + [EnvProperty("instance-id", "instance-id", "i-123"), EnvProperty("hostname", "hostname", "x")]
    r2 = build_environment("vm", mine)
    assert r2.added == ["network-config"] and r2.environment.properties["instance-id"] == "i-123"


def test_iso_image(tmp_path):
    xml = Environment("vm", {"k": "v"}).to_xml()
    iso = write_iso(xml, tmp_path / "seed.iso")
    assert volume_label(iso) == "OVF ENV"
    assert read_iso_file(iso) == xml
    assert sorted(os.listdir(tmp_path)) == ["seed.iso"]      # no temporary left behind
    with pytest.raises(VmferryError, match="exists"):
        write_iso(xml, iso)
    write_iso(b"<other/>", iso, force=True)
    assert read_iso_file(iso) == b"<other/>"


def test_iso_names_and_extensions(tmp_path):
    """Rock Ridge and Joliet carry the lower-case ovf-env.xml; plain ISO 9660 readers see OVF_ENV.XML,
    which cloud-init also looks for."""
    xml = Environment("vm", {"k": "v"}).to_xml()
    iso = write_iso(xml, tmp_path / "seed.iso")
    info = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True, check=True).stdout
    assert "Joliet" in info and "Rock Ridge" in info
    plain = subprocess.run(["isoinfo", "-i", str(iso), "-x", "/OVF_ENV.XML;1"], capture_output=True, check=True)
    assert plain.stdout == xml
    with pytest.raises(ToolFailed):
        read_iso_file(iso, "missing.xml")


def test_iso_failure_leaves_nothing(tmp_path):
    with pytest.raises(VmferryError):
        write_iso(b"<x/>", tmp_path / "seed.iso", extra_files={"../evil": b""})
    assert os.listdir(tmp_path) == []
    with pytest.raises(VmferryError, match="does not exist"):
        write_iso(b"<x/>", tmp_path / "nodir" / "seed.iso")


def test_write_atomic(tmp_path):
    out = write_atomic(b"abc", tmp_path / "ovf-env.xml")
    assert out.read_bytes() == b"abc" and os.listdir(tmp_path) == ["ovf-env.xml"]
    with pytest.raises(VmferryError):
        write_atomic(b"def", out)
    assert out.read_bytes() == b"abc"


def test_entities_round_trip():
    env = Environment("web", {"app.role": "web"}, entities={"db": {"app.role": "db", "ip0": "192.0.2.5"}})
    root = etree.fromstring(env.to_xml())
    assert [c.tag for c in root][-1] == f"{OE}Entity"
    back = parse_environment(env.to_xml())
    assert back.properties == env.properties and back.entities == env.entities


xml_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00").filter(
    lambda c: c in "\t\n\r" or ord(c) >= 0x20 and c not in "\ufffe\uffff"), max_size=30)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(xml_text.filter(bool), xml_text, max_size=5))
def test_any_text_round_trips(props):
    back = parse_environment(Environment("vm", props).to_xml())
    # XML normalises CR and CRLF in attribute values unless escaped; lxml escapes them, so all survive
    assert back.properties == props


def test_control_characters_are_a_usage_error():
    with pytest.raises(UsageError, match="'k'"):
        Environment("vm", {"k": "bell\x07"}).to_xml()
