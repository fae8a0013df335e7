"""vmferry.netconv: vendor network conventions read into NetConfig and written back."""

from __future__ import annotations

import base64
import ipaddress
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmferry import netconv
from vmferry.netconv import (
    detect,
    netmask_from_prefix,
    parse_address,
    prefix_from_netmask,
    read_network,
    read_properties,
    write_properties,
)
from vmferry.portable import NetConfig


def rules(reading) -> list[str]:
    return [f.rule for f in reading.findings]


# -- netmask / prefix -------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", range(0, 33))
def test_ipv4_netmask_round_trip(prefix):
    mask = netmask_from_prefix(prefix)
    assert prefix_from_netmask(mask) == prefix
    assert ipaddress.ip_network(f"0.0.0.0/{mask}").prefixlen == prefix


@pytest.mark.parametrize("prefix", [0, 1, 48, 63, 64, 65, 127, 128])
def test_ipv6_netmask_round_trip(prefix):
    assert prefix_from_netmask(netmask_from_prefix(prefix, 6), 6) == prefix


@pytest.mark.parametrize("mask, version, expected", [
    ("255.255.255.0", 4, 24), ("24", 4, 24), ("/24", 4, 24), ("255.255.254.0", 4, 23), ("0.0.0.0", 4, 0),
    ("ffff:ffff:ffff:ffff::", 6, 64), ("64", 6, 64), ("/128", 6, 128)])
def test_prefix_from_netmask(mask, version, expected):
    assert prefix_from_netmask(mask, version) == expected


@pytest.mark.parametrize("mask, version", [("255.0.255.0", 4), ("33", 4), ("129", 6), ("255.255.255.0", 6),
                                           ("ffff::ffff", 6), ("banana", 4), ("", 4), ("-1", 4)])
def test_bad_netmasks(mask, version):
    with pytest.raises(ValueError):
        prefix_from_netmask(mask, version)


@pytest.mark.parametrize("text, expected", [
    ("10.1.1.100/24", ("10.1.1.100", 24)), ("10.1.1.100 255.255.255.0", ("10.1.1.100", 24)),
    ("10.1.1.100/255.255.255.128", ("10.1.1.100", 25)), (" 10.1.1.100 ", ("10.1.1.100", None)),
    ("2001:DB8::5/64", ("2001:db8::5", 64)), ("2001:db8::5", ("2001:db8::5", None))])
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "10.1.1", "10.1.1.300/24", "10.1.1.1 255.0.255.0", "a b c", "dhcp"])
def test_parse_address_rejects(text):
    with pytest.raises(ValueError):
        parse_address(text)


# -- VMware vApp / VAMI -----------------------------------------------------------------------------
VMW = {"ip0": "192.0.2.10", "netmask0": "255.255.255.0", "gateway": "192.0.2.1", "DNS": "192.0.2.53, 192.0.2.54",
       "domain": "corp.example.com", "searchPath": "a.example b.example", "hostname": "app1"}


def test_vmware_plain_keys():
    r = read_network(VMW)
    assert r.findings == []
    assert r.configs == {0: NetConfig(dhcp=False, address="192.0.2.10", prefix=24, gateway="192.0.2.1",
                                      dns_servers=["192.0.2.53", "192.0.2.54"],
                                      search_domains=["corp.example.com", "a.example", "b.example"],
                                      hostname="app1", origin="vmware-vapp")}


@pytest.mark.parametrize("style", ["guestinfo.{}", "vami.{}.VMware_Appliance", "guestinfo.vami.{}.x"])
def test_vmware_prefixed_keys(style):
    props = {style.format(k): v for k, v in VMW.items()}
    cfg = read_network(props).configs[0]
    assert (cfg.address, cfg.prefix, cfg.gateway, cfg.hostname) == ("192.0.2.10", 24, "192.0.2.1", "app1")
    assert detect(props)[0][1].name == "vmware"


def test_vmware_empty_ip_means_dhcp():
    cfg = read_network({"ip0": "", "netmask0": "", "hostname": "h"}).configs[0]
    assert cfg.dhcp is True and cfg.address is None and cfg.hostname == "h"


def test_vmware_two_nics_gateway_goes_to_its_subnet():
    r = read_network({"ip0": "10.0.0.5", "netmask0": "255.255.255.0", "ip1": "192.0.2.5", "netmask1": "24",
                      "gateway": "192.0.2.1"})
    assert r.configs[0].gateway is None and r.configs[1].gateway == "192.0.2.1"


def test_vmware_ipv6_with_prefix_netmask():
    cfg = read_network({"ip0": "2001:db8::10", "netmask0": "64", "gateway": "2001:db8::1"}).configs[0]
    assert (cfg.address, cfg.prefix, cfg.gateway) == ("2001:db8::10", 64, "2001:db8::1")


def test_vmware_garbage_becomes_findings():
    r = read_network({"ip0": "192.0.2.300", "netmask0": "255.0.255.0", "gateway": "gw", "DNS": "1.1.1.1,nope",
                      "hostname": "bad_name!"})
    assert rules(r) == ["VMF-NETCFG-001", "VMF-NETCFG-003", "VMF-NETCFG-005", "VMF-NETCFG-006"]
    assert r.configs[0].dns_servers == ["1.1.1.1"] and r.configs[0].address is None
    bad_mask = read_network({"ip0": "192.0.2.3", "netmask0": "255.0.255.0"})
    assert rules(bad_mask) == ["VMF-NETCFG-002", "VMF-NETCFG-009"]
    assert all(f.location.startswith("property ") for f in r.findings)


def test_gateway_outside_subnet_and_wrong_family():
    assert rules(read_network({"ip0": "10.0.0.5", "netmask0": "24", "gateway": "10.0.1.1"})) == ["VMF-NETCFG-004"]
    assert rules(read_network({"ip0": "10.0.0.5", "netmask0": "24", "gateway": "2001:db8::1"})) == [
        "VMF-NETCFG-008"]


# -- Cisco -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["10.1.1.100/24", "10.1.1.100 255.255.255.0"])
def test_cisco_address_forms(value):
    r = read_network({"mgmt-ipv4-addr": value, "mgmt-ipv4-gateway": "10.1.1.1", "hostname": "r1",
                      "domain-name": "cisco.com", "mgmt-interface": "GigabitEthernet1"})
    assert r.findings == []
    assert r.configs == {0: NetConfig(dhcp=False, address="10.1.1.100", prefix=24, gateway="10.1.1.1",
                                      search_domains=["cisco.com"], hostname="r1", origin="cisco")}


def test_cisco_full_keys_dhcp_and_interface_index():
    props = {"com.cisco.csr1000v.mgmt-ipv4-addr.1": "dhcp", "com.cisco.csr1000v.mgmt-ipv4-gateway.1": "dhcp",
             "com.cisco.csr1000v.mgmt-interface.1": "GigabitEthernet3"}
    assert [c.name for _, c in detect(props)] == ["cisco"]
    r = read_network(props)
    assert list(r.configs) == [2] and r.configs[2].dhcp is True and r.configs[2].gateway is None


def test_cisco_empty_is_unconfigured_and_garbage_is_a_finding():
    assert read_network({"mgmt-ipv4-addr": "", "mgmt-ipv4-gateway": ""}).configs == {}
    r = read_network({"mgmt-ipv4-addr": "10.1.1.100/40"})
    assert rules(r) == ["VMF-NETCFG-001"] and r.configs == {}


# -- cloud-init network-config -------------------------------------------------------------------------
def _b64(doc) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def test_cloudinit_v2_yaml():
    yaml_text = ("network:\n  version: 2\n  ethernets:\n    ens192:\n      addresses: [192.0.2.9/24]\n"
                 "      routes: [{to: default, via: 192.0.2.1}]\n"
                 "      nameservers: {addresses: [192.0.2.53], search: [example.org]}\n"
                 "    ens224:\n      dhcp4: true\n")
    props = {"network-config": base64.b64encode(yaml_text.encode()).decode(), "local-hostname": "ci1"}
    r = read_network(props)
    assert r.findings == []
    assert r.configs[0] == NetConfig(dhcp=False, address="192.0.2.9", prefix=24, gateway="192.0.2.1",
                                     dns_servers=["192.0.2.53"], search_domains=["example.org"], hostname="ci1",
                                     origin="cloud-init")
    assert r.configs[1].dhcp is True


def test_cloudinit_v1_with_global_nameserver():
    doc = {"network": {"version": 1, "config": [
        {"type": "physical", "name": "eth0", "subnets": [{"type": "static", "address": "198.51.100.4",
                                                          "netmask": "255.255.255.0", "gateway": "198.51.100.1"}]},
        {"type": "nameserver", "address": ["198.51.100.53"], "search": ["example.com"]}]}}
    cfg = read_network({"network-config": _b64(doc)}).configs[0]
    assert (cfg.address, cfg.prefix, cfg.dns_servers, cfg.search_domains) == (
        "198.51.100.4", 24, ["198.51.100.53"], ["example.com"])


@pytest.mark.parametrize("value", ["%%%not base64", _b64({"version": 1}), _b64({"network": {"version": 3}}),
                                   base64.b64encode(b"\xff\xfe").decode()])
def test_cloudinit_bad_network_config_is_a_finding(value):
    r = read_network({"network-config": value})
    assert rules(r) == ["VMF-NETCFG-007"] and r.configs == {}


# -- vmferry keys ------------------------------------------------------------------------------------
def test_vmferry_keys_and_no_borrowing():
    props = {"vmferry.net.0.mode": "static", "vmferry.net.0.address": "203.0.113.20/25",
             "vmferry.net.0.gateway": "203.0.113.1", "vmferry.net.0.dns": "203.0.113.53",
             "vmferry.net.1.mode": "dhcp", "vmferry.hostname": "g1"}
    assert [c.name for _, c in detect(props)] == ["vmferry"]   # vmware does not pick up vmferry.net.0.dns
    r = read_network(props)
    assert r.configs[0].address == "203.0.113.20" and r.configs[0].hostname == "g1"
    assert r.configs[1] == NetConfig(dhcp=True, origin="vmferry")


def test_vmferry_bad_mode():
    assert rules(read_network({"vmferry.net.0.mode": "sometimes"})) == ["VMF-NETCFG-010"]


# -- writing and reading back -------------------------------------------------------------------------
ipv4 = st.builds(lambda a, p: (str(ipaddress.IPv4Address(a)), p), st.integers(1, 2**32 - 2), st.integers(8, 30))
ipv6 = st.builds(lambda a, p: (str(ipaddress.IPv6Address(a)), p), st.integers(1, 2**128 - 2),
                 st.integers(16, 127))
labels = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)


@st.composite
def configs(draw, max_nics=3, allow_v6=True):
    out = {}
    for n in range(draw(st.integers(1, max_nics))):
        if draw(st.booleans()):
            out[n] = NetConfig(dhcp=True)
            continue
        addr, prefix = draw(ipv6 if allow_v6 and draw(st.booleans()) else ipv4)
        net = ipaddress.ip_interface(f"{addr}/{prefix}").network
        gw = str(net.network_address + 1) if draw(st.booleans()) and net.num_addresses > 2 else None
        out[n] = NetConfig(dhcp=False, address=addr, prefix=prefix, gateway=gw,
                           dns_servers=draw(st.lists(ipv4.map(lambda t: t[0]), max_size=2, unique=True)),
                           search_domains=[f"{x}.example" for x in draw(st.lists(labels, max_size=2, unique=True))])
    out[0].hostname = draw(labels)
    return out


def _strip(cfgs):
    return {n: (c.dhcp, c.address, c.prefix, c.gateway, c.dns_servers, c.search_domains) for n, c in cfgs.items()}


@settings(max_examples=60, deadline=None)
@given(configs())
def test_vmferry_convention_round_trip(cfgs):
    props = {p.key: p.value for p in write_properties(cfgs, "vmferry")}
    back, findings = read_properties(props)
    assert [f for f in findings if f.severity != "info"] == []
    assert _strip(back) == _strip(cfgs) and back[0].hostname == cfgs[0].hostname


@settings(max_examples=60, deadline=None)
@given(configs())
def test_cloudinit_convention_round_trip(cfgs):
    props = {p.key: p.value for p in write_properties(cfgs, "cloud-init")}
    back, findings = read_properties(props)
    assert [f for f in findings if f.severity != "info"] == []
    assert _strip(back) == _strip(cfgs) and back[0].hostname == cfgs[0].hostname


@settings(max_examples=40, deadline=None)
@given(configs(max_nics=1))
def test_vmware_convention_round_trip(cfgs):
    props = {p.key: p.value for p in write_properties(cfgs, "vmware")}
    back, _ = read_properties(props)
    assert _strip(back) == _strip(cfgs)


def test_cisco_write_read():
    cfgs = {1: NetConfig(dhcp=False, address="10.9.8.7", prefix=26, gateway="10.9.8.1", hostname="edge",
                         search_domains=["example.com"])}
    props = {p.key: p.value for p in write_properties(cfgs, "cisco")}
    assert props["mgmt-ipv4-addr"] == "10.9.8.7/26" and props["mgmt-interface"] == "GigabitEthernet2"
    assert _strip(read_properties(props)[0]) == _strip(cfgs)


def test_unknown_convention():
    with pytest.raises(KeyError):
        netconv.convention("juniper")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["ip0", "netmask0", "gateway", "DNS", "hostname", "mgmt-ipv4-addr",
                                        "mgmt-ipv4-gateway", "mgmt-interface", "network-config", "vmferry.net.0.mode",
                                        "vmferry.net.0.address", "vmferry.net.1.gateway", "searchPath"]),
                       st.text(max_size=40)))
def test_garbage_never_raises(props):
    r = read_network(props)
    for f in r.findings:
        assert f.rule.startswith("VMF-NETCFG-0")
    for cfg in r.configs.values():
        if cfg.address:
            ipaddress.ip_address(cfg.address)


def test_disagreeing_conventions():
    props = {"vmferry.net.0.address": "192.0.2.10/24", "ip0": "198.51.100.10", "netmask0": "255.255.255.128"}
    r = read_network(props)
    assert (r.configs[0].address, r.configs[0].prefix, r.configs[0].origin) == ("192.0.2.10", 24, "vmferry")
    assert rules(r) == ["VMF-NETCFG-014", "VMF-NETCFG-014"]
    assert "198.51.100.10" in r.findings[0].message
    preferred = read_network(props, prefer="vmware")
    assert (preferred.configs[0].address, preferred.configs[0].prefix) == ("198.51.100.10", 25)
    agreeing = {"vmferry.net.0.address": "192.0.2.10/24", "ip0": "192.0.2.10", "netmask0": "24"}
    assert read_network(agreeing).findings == []
