"""Issue 11 end to end, systemd-networkd: the Debian 12 VMware guest whose static address on ``ens192``
is configured by a ``.network`` file (``[Match] Name=ens192``; ifupdown purged), converted to KVM with
repair and booted on a private real libvirtd (QEMU under TCG).

The guest is derived from the cached ifupdown guest (tests/guestimage/debian_variants.py). One boot: the
guest's own report unit prints, on the serial console, its NICs (name, MAC, driver) and the addresses on
each; the test reads which name the static address is on. The repair keeps the name the configuration
uses (docs/guest.md, "Why the name is kept"): on KVM's q35 the kernel would call the NIC ``enp1s0``
(see test_repair_e2e's unrepaired boot); the ``.link`` file the repair writes names it ``ens192`` again,
and networkd's unchanged ``.network`` file gives it its address.
"""

from __future__ import annotations

import configparser

import pytest

from tests.guest.test_repair_e2e import boot, convert
from tests.guestimage import debian, debian_variants

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def networkd_ova():
    guest = debian_variants.build("networkd")
    return guest, debian.vmware_ova(guest, "debian12-networkd")


def test_networkd_guest_converted_boots_on_virtio_with_its_address_on_its_own_name(networkd_ova, libvirtd):
    guest, ova = networkd_ova
    doc, out = convert(libvirtd, ova, "deb12-networkd")
    (choice,) = doc["choices"]
    assert choice["disk_bus"] == "virtio" and choice["nic_model"] == "virtio", choice
    (repair,) = doc["repairs"]
    assert not repair["problems"], repair["problems"]
    changes = {c["file"]: c for c in repair["changes"]}
    # the .network file is left as it is; the name it matches is pinned to the NIC's MAC
    assert debian_variants.NETWORK_FILE not in changes
    link = configparser.ConfigParser()
    link.read_string(changes["/etc/systemd/network/10-vmferry-ens192.link"]["new"])
    assert (link["Match"]["MACAddress"], link["Link"]["Name"]) == (guest.mac, guest.nic_name)
    assert "/etc/network/interfaces" not in changes
    (xml,) = out.glob("*.xml")
    report = boot(libvirtd, xml)
    assert report.booted and report.done, report.console[-4000:]
    assert report.root == "/dev/vda1" and "virtio_blk" in report.via, (report.root, report.via)
    name = report.interface_with(guest.address)
    assert name == guest.nic_name, (report.nics, report.addresses, report.console[-4000:])
    assert report.nics[name] == (guest.mac, "virtio_net")
    assert report.states[name] == "UP"
