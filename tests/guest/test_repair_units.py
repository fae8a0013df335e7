"""Fast tests of guest repair's text transforms (no appliance): each network convention, fstab and
bootloader device names, initramfs configuration, --set parsing."""

from __future__ import annotations

import configparser

import pytest
import yaml

from vmferry.errors import UsageError
from vmferry.guest import bootrepair, linuxconf, netrepair
from vmferry.guest.netrepair import NicSetting
from vmferry.guest.repair import merge_settings, parse_settings

MAC = "00:50:56:a1:b2:c3"
NEW = NicSetting(0, MAC, "192.0.2.10/24", "192.0.2.1", ["192.0.2.53", "192.0.2.54"])
BIND = NicSetting(0, MAC)


def test_ifupdown_new_address_replaces_the_stanza_options_and_keeps_the_rest():
    text = ("auto lo\niface lo inet loopback\n\nauto ens192\niface ens192 inet static\n    address 10.0.0.5/24\n"
            "    gateway 10.0.0.1\n    mtu 9000\n    dns-nameservers 10.0.0.2\n    up ip route add 10.9.0.0/16 via 10.0.0.9\n"
            "\nauto ens224\niface ens224 inet dhcp\n")
    assert netrepair.ifupdown_interfaces(text) == ["ens192", "ens224"]
    new = netrepair.ifupdown(text, {"ens192": NEW})
    assert "iface ens192 inet static\n    address 192.0.2.10/24\n    gateway 192.0.2.1\n" \
           "    dns-nameservers 192.0.2.53 192.0.2.54\n" in new
    assert "10.0.0.5" not in new and "10.0.0.2" not in new
    assert "    mtu 9000\n" in new and "up ip route add 10.9.0.0/16 via 10.0.0.9" in new   # other options stay
    assert "iface ens224 inet dhcp\n" in new and "iface lo inet loopback" in new
    assert netrepair.ifupdown(text, {"ens192": BIND}) == text     # binding alone: the name is pinned by .link


def test_link_file_pins_the_name_to_the_mac():
    path, content = netrepair.link_file("ens192", MAC)
    assert path == "/etc/systemd/network/10-vmferry-ens192.link"
    cp = configparser.ConfigParser()
    cp.read_string(content)
    assert cp["Match"]["MACAddress"] == MAC and cp["Link"]["Name"] == "ens192"
    bindings = linuxconf.networkd(content, path)
    assert any(b.kind == "mac" and b.mac == MAC for b in bindings)


def test_networkd_keeps_its_name_match_and_static_config():
    text = ("[Match]\nName=ens192\n\n[Network]\nAddress=10.0.0.5/24\nGateway=10.0.0.1\nDNS=10.0.0.2\n\n"
            "[Route]\nDestination=10.9.0.0/16\nGateway=10.0.0.9\n")
    assert netrepair.networkd_name(text) == "ens192"
    # binding alone: the file stays as it is (the name is pinned by a .link file; a MACAddress= match
    # would also match the VLANs and bridges that inherit the NIC's MAC)
    assert netrepair.networkd(text, BIND) == text
    readdressed = netrepair.networkd(text, NEW)
    assert readdressed.startswith("[Match]\nName=ens192\n")
    assert "Address=192.0.2.10/24\nGateway=192.0.2.1\nDNS=192.0.2.53\nDNS=192.0.2.54\n" in readdressed
    assert "10.0.0.5" not in readdressed and "[Route]" not in readdressed
    assert netrepair.networkd_name("[Match]\nName=en*\n") is None     # a glob follows any NIC already


def test_netplan_gets_match_macaddress_and_set_name():
    text = ("# netplan of the source VM\nnetwork:\n  version: 2\n  ethernets:\n    ens192:\n      addresses: [10.0.0.5/24]\n"
            "      routes:\n        - to: default\n          via: 10.0.0.1\n      nameservers:\n        addresses: [10.0.0.2]\n")
    assert netrepair.netplan_interfaces(text) == ["ens192"]
    new = netrepair.netplan(text, {"ens192": BIND})
    eth = yaml.safe_load(new)["network"]["ethernets"]["ens192"]
    assert eth["match"] == {"macaddress": MAC} and eth["set-name"] == "ens192"
    assert eth["addresses"] == ["10.0.0.5/24"] and eth["routes"] == [{"to": "default", "via": "10.0.0.1"}]
    assert new.startswith("# netplan of the source VM\n")
    eth = yaml.safe_load(netrepair.netplan(text, {"ens192": NEW}))["network"]["ethernets"]["ens192"]
    assert eth["addresses"] == ["192.0.2.10/24"] and eth["dhcp4"] is False
    assert eth["nameservers"] == {"addresses": ["192.0.2.53", "192.0.2.54"]}
    assert netrepair.netplan_interfaces(new) == []      # already matched by MAC: nothing left to rebind


def test_nm_keyfile_interface_name_becomes_mac_address():
    text = ("[connection]\nid=Wired\nuuid=0d7bb2b8-0b4c-4a1a-8a4e-2f1c9b3a6d11\ntype=ethernet\ninterface-name=ens192\n\n"
            "[ipv4]\nmethod=manual\naddress1=10.0.0.5/24,10.0.0.1\ndns=10.0.0.2;\n")
    assert netrepair.nm_interface(text) == "ens192"
    new = netrepair.nm_keyfile(text, BIND)
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(new)
    assert "interface-name" not in cp["connection"] and cp["ethernet"]["mac-address"] == MAC.upper()
    assert cp["ipv4"]["address1"] == "10.0.0.5/24,10.0.0.1" and cp["ipv4"]["dns"] == "10.0.0.2;"
    cp.read_string(netrepair.nm_keyfile(text, NEW))
    assert cp["ipv4"]["address1"] == "192.0.2.10/24,192.0.2.1" and cp["ipv4"]["dns"] == "192.0.2.53;192.0.2.54;"


def test_ifcfg_gets_hwaddr_and_keeps_device():
    text = 'DEVICE=ens192\nNAME="System ens192"\nBOOTPROTO=none\nIPADDR=10.0.0.5\nPREFIX=24\nGATEWAY=10.0.0.1\nDNS1=10.0.0.2\n'
    assert netrepair.ifcfg_device(text) == "ens192"
    new = netrepair.ifcfg(text, BIND)
    assert f"HWADDR={MAC.upper()}\n" in new and "DEVICE=ens192\n" in new and "IPADDR=10.0.0.5\n" in new
    readdressed = netrepair.ifcfg(text, NEW)
    assert "IPADDR=192.0.2.10\nPREFIX=24\nGATEWAY=192.0.2.1\nDNS1=192.0.2.53\nDNS2=192.0.2.54\n" in readdressed
    assert "10.0.0.5" not in readdressed


def test_virtual_interfaces_are_not_rebound():
    text = "iface bond0 inet manual\niface br0 inet dhcp\niface eth0.10 inet manual\niface eth0 inet dhcp\n"
    assert netrepair.ifupdown_interfaces(text) == ["eth0"]
    assert sorted(["ens224", "ens192", "eth1", "eth0"], key=netrepair.slot_order) == ["eth0", "eth1", "ens192",
                                                                                      "ens224"]


def test_fstab_and_kernel_arguments_by_bus_become_uuid():
    uuids = {"/dev/sda1": "1111-aaaa", "/dev/sda5": "2222-bbbb"}

    def uuid_of(spec):
        return uuids.get(bootrepair.bus_device(spec) or "")

    fstab = ("/dev/sda1 / ext4 errors=remount-ro 0 1  # root\n/dev/xvda5 none swap sw 0 0\n"
             "UUID=3333 /home ext4 defaults 0 2\nproc /proc proc defaults 0 0\n/dev/sdc1 /data xfs defaults 0 0\n")
    new, done = bootrepair.fstab(fstab, uuid_of)
    assert new.splitlines()[0] == "UUID=1111-aaaa / ext4 errors=remount-ro 0 1  # root"
    assert new.splitlines()[1] == "UUID=2222-bbbb none swap sw 0 0"
    assert "/dev/sdc1 /data" in new and done == ["/dev/sda1", "/dev/xvda5"]   # sdc: not on this image
    grub = "linux /boot/vmlinuz-6.1 root=/dev/sda1 ro quiet resume=/dev/hda5\nlinux /x root=/dev/sda10\n"
    new, done = bootrepair.kernel_args(grub, uuid_of)
    assert "root=UUID=1111-aaaa ro quiet resume=UUID=2222-bbbb" in new and "root=/dev/sda10" in new
    assert bootrepair.grub_defaults('GRUB_DISABLE_LINUX_UUID="true"\n') == ("GRUB_DISABLE_LINUX_UUID=false\n", True)


def test_initramfs_configuration_keeps_what_is_there_and_adds_the_rest():
    text = "# modules\nvmw_pvscsi\nmptspi\n"
    new = bootrepair.initramfs_tools_modules(text, ["mptspi", "virtio_blk", "virtio_pci"])
    assert new.startswith(text) and new.endswith("virtio_blk\nvirtio_pci\n") and new.count("mptspi") == 1
    assert bootrepair.initramfs_tools_modules(new, ["virtio_blk"]) == new
    conf = bootrepair.dracut_conf('add_drivers+=" hv_storvsc "\n', ["virtio_blk"])
    assert 'add_drivers+=" hv_storvsc virtio_blk "' in conf
    wanted = bootrepair.wanted_drivers(["kvm", "vmware"])
    assert {"virtio_pci", "virtio_blk", "virtio_net", "vmw_pvscsi", "vmxnet3", "sr_mod", "isofs"} <= set(wanted)


def test_settings_parse_and_merge_with_macs():
    nics = parse_settings(["vmferry.net.1.address=192.0.2.10/24", "vmferry.net.1.gateway=192.0.2.1",
                           "vmferry.net.1.dns=192.0.2.53, 192.0.2.54", "vmferry.net.0.mac=00-50-56-A1-B2-C3"])
    assert [(n.index, n.mac, n.address, n.gateway, n.dns) for n in nics] == [
        (0, MAC, "", "", []), (1, "", "192.0.2.10/24", "192.0.2.1", ["192.0.2.53", "192.0.2.54"])]
    merged = merge_settings(["52:54:00:00:00:01", "52:54:00:00:00:02"], nics)
    assert [n.mac for n in merged] == [MAC, "52:54:00:00:00:02"] and merged[1].address == "192.0.2.10/24"
    for bad in ("vmferry.net.0.address=10.0.0.5", "vmferry.net.0.gateway=10.0.0.1", "vmferry.net.x.address=1",
                "vmferry.net.0.mac=zz", "vmferry.net.0.address=10.0.0.5/24\0", "ip0=1.2.3.4"):
        with pytest.raises(UsageError):
            parse_settings([bad])
    with pytest.raises(UsageError, match="outside"):
        parse_settings(["vmferry.net.0.address=10.0.0.5/24", "vmferry.net.0.gateway=10.1.0.1"])


def test_readiness_counts_a_name_pinned_by_a_link_file_as_following_the_nic():
    from tests.guest.test_units import _linux
    from vmferry.guest.readiness import readiness

    ifupdown = "auto ens192\niface ens192 inet static\n    address 10.0.0.5/24\n"
    report = _linux(drivers=("virtio_pci", "virtio_blk", "sd_mod", "ahci"), modules=("virtio_net",))
    report.network = linuxconf.ifupdown(ifupdown, "/etc/network/interfaces")
    before = readiness(report, "kvm")
    slot = [f for f in before.findings if f.rule == "VMF-GUEST-022"]
    assert slot and slot[0].severity == "warning" and slot[0].fixed_by == "repair"
    path, content = netrepair.link_file("ens192", MAC)
    report.network += linuxconf.networkd(content, path)
    after = readiness(report, "kvm")
    assert not [f for f in after.findings if f.rule == "VMF-GUEST-022"]
    mac = [f for f in after.findings if f.rule == "VMF-GUEST-021"]
    assert mac and mac[0].severity == "info" and "ens192" in mac[0].message
    assert after.status == "ready"
