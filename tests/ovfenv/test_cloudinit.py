"""The seed ISO written by ``vmferry env``, read by cloud-init's own OVF datasource (Debian's package)."""

from __future__ import annotations

import base64
import json

from tests.conftest import COT
from tests.ovfenv.conftest import DATA


def _env(vmferry, tmp_path, package, *args, name="seed.iso"):
    out = tmp_path / name
    got = vmferry("env", package, "-o", out, "--json", *args)
    assert got.returncode == 0, got.stderr
    return out, json.loads(got.stdout)


def test_csr1000v_cisco_properties(vmferry, tmp_path, cloud_init_read):
    iso, report = _env(vmferry, tmp_path, COT / "csr1000v.ovf",
                       "--set", "mgmt-ipv4-addr=10.1.1.100 255.255.255.0", "--set", "mgmt-ipv4-gateway=10.1.1.1",
                       "--set", "hostname=csr-edge1", "--set", "domain-name=branch.example.com",
                       "--profile", "4CPU-8GB")
    assert report["profile"] == "4CPU-8GB"
    got = cloud_init_read(iso)
    assert got["found"] is True and got["seed"] == "iso"
    md = got["metadata"]
    assert md["local-hostname"] == "csr-edge1"
    assert md["instance-id"] == got["instance_id"] == report["properties"]["instance-id"]
    assert md["instance-id"].startswith("iid-vmferry-")
    props = got["properties"]
    # The appliance's own properties arrive under their DSP0243 full keys (class.key.instance).
    assert props["com.cisco.csr1000v.mgmt-ipv4-addr.1"] == "10.1.1.100 255.255.255.0"
    assert props["com.cisco.csr1000v.hostname.1"] == "csr-edge1"
    assert props["com.cisco.csr1000v.license.1"] == "ax"
    (iface,) = got["interfaces"]
    assert iface["name"] == "eth0"
    assert iface["subnets"] == [{"type": "static", "address": "10.1.1.100", "prefix": 24,
                                 "netmask": "255.255.255.0", "gateway": "10.1.1.1",
                                 "dns_search": ["branch.example.com"]}]
    assert "iface eth0 inet static" in got["eni"] and "address 10.1.1.100/24" in got["eni"]
    assert "gateway 10.1.1.1" in got["eni"]


def test_cot_input_cisco_cidr(vmferry, tmp_path, cloud_init_read):
    iso, _ = _env(vmferry, tmp_path, COT / "input.ovf", "--set", "mgmt-ipv4-addr=192.0.2.77/28",
                  "--set", "mgmt-ipv4-gateway=192.0.2.65", "--set", "hostname=iosxe1")
    got = cloud_init_read(iso)
    assert got["metadata"]["local-hostname"] == "iosxe1"
    (iface,) = got["interfaces"]
    (subnet,) = iface["subnets"]
    assert (subnet["address"], subnet["prefix"], subnet["gateway"]) == ("192.0.2.77", 28, "192.0.2.65")


def test_vmware_vapp_properties_with_mac_and_dns(vmferry, tmp_path, cloud_init_read):
    iso, report = _env(vmferry, tmp_path, DATA / "vapp.ovf")
    got = cloud_init_read(iso)
    md = got["metadata"]
    assert md["local-hostname"] == "app1"
    assert got["properties"]["vami.ip0.Appliance"] == "192.0.2.10"
    (iface,) = got["interfaces"]
    assert iface["mac"] == "00:50:56:ab:cd:01"          # matched by MAC: cloud-init renames it to eth0
    (subnet,) = iface["subnets"]
    assert subnet == {"type": "static", "address": "192.0.2.10", "prefix": 24, "netmask": "255.255.255.0",
                      "gateway": "192.0.2.1", "dns_nameservers": ["192.0.2.53", "192.0.2.54"],
                      "dns_search": ["corp.example.com", "example.com"]}
    assert "dns-nameservers 192.0.2.53 192.0.2.54" in got["eni"]
    assert "macaddress: 00:50:56:ab:cd:01" in got["netplan"]
    assert not [f for f in report["findings"] if f["severity"] != "info"]


def test_vmware_profile_values(vmferry, tmp_path, cloud_init_read):
    iso, _ = _env(vmferry, tmp_path, DATA / "vapp.ovf", "--profile", "lab")
    got = cloud_init_read(iso)
    assert got["metadata"]["local-hostname"] == "lab-app1"
    (subnet,) = got["interfaces"][0]["subnets"]
    assert (subnet["address"], subnet["prefix"], subnet["gateway"]) == ("198.51.100.10", 25, "198.51.100.1")


def test_vmferry_generic_keys(vmferry, tmp_path, cloud_init_read):
    iso, _ = _env(vmferry, tmp_path, DATA / "generic.ovf")
    got = cloud_init_read(iso)
    assert got["metadata"]["local-hostname"] == "generic1"
    assert got["properties"]["vmferry.net.0.address"] == "203.0.113.20/25"
    (subnet,) = got["interfaces"][0]["subnets"]
    assert subnet == {"type": "static", "address": "203.0.113.20", "prefix": 25, "netmask": "255.255.255.128",
                      "gateway": "203.0.113.1", "dns_nameservers": ["203.0.113.53"], "dns_search": ["example.net"]}


def test_dhcp(vmferry, tmp_path, cloud_init_read):
    iso, _ = _env(vmferry, tmp_path, COT / "csr1000v.ovf", "--set", "mgmt-ipv4-addr=dhcp",
                  "--set", "hostname=dhcp-router")
    got = cloud_init_read(iso)
    assert got["metadata"]["local-hostname"] == "dhcp-router"
    assert got["interfaces"][0]["subnets"] == [{"type": "dhcp"}]
    assert "iface eth0 inet dhcp" in got["eni"]


def test_ipv6(vmferry, tmp_path, cloud_init_read):
    iso, _ = _env(vmferry, tmp_path, DATA / "generic.ovf", "--set", "vmferry.net.0.address=2001:db8:0:1::20/64",
                  "--set", "vmferry.net.0.gateway=2001:db8:0:1::1", "--set", "vmferry.net.0.dns=2001:db8::53")
    got = cloud_init_read(iso)
    (subnet,) = got["interfaces"][0]["subnets"]
    assert subnet["type"] == "static6"
    assert (subnet["address"], subnet["prefix"], subnet["gateway"]) == ("2001:db8:0:1::20", 64, "2001:db8:0:1::1")
    assert subnet["dns_nameservers"] == ["2001:db8::53"]
    assert "iface eth0 inet6 static" in got["eni"] and "address 2001:db8:0:1::20/64" in got["eni"]


def test_no_cloud_init_keys_when_disabled(vmferry, tmp_path, cloud_init_read):
    iso, report = _env(vmferry, tmp_path, DATA / "vapp.ovf", "--no-cloud-init")
    assert report["added"] == []
    got = cloud_init_read(iso)
    assert got["found"] is True
    assert got["network_config"] is None
    assert got["instance_id"] == "iid-dsovf"       # cloud-init's fallback, the same for every VM


def test_user_network_config_is_kept(vmferry, tmp_path, cloud_init_read):
    """A network-config the user provides wins over the one vmferry derives."""
    v2 = {"network": {"version": 2, "ethernets": {"ens3": {"dhcp4": True}}}}
    value = base64.b64encode(json.dumps(v2).encode()).decode()
    iso, report = _env(vmferry, tmp_path, DATA / "vapp.ovf", "--allow-new", "--set", f"network-config={value}")
    assert "network-config" not in report["added"]
    got = cloud_init_read(iso)
    assert got["network_config"] == v2["network"]
