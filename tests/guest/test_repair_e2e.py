"""Issue 11 end to end: a real Debian 12 guest that lived on VMware, moved to KVM.

The guest (tests/guestimage/debian.py, built once with mmdebstrap and cached): an initramfs with only
VMware's storage drivers, root named /dev/sda1 in fstab, a static address on ens192 with ifupdown,
open-vm-tools; packed as vSphere exports it (PVSCSI disk, VMXNET3 NIC with a fixed MAC). Every boot
is on a private real libvirtd (QEMU under TCG); the guest prints its root device, the drivers under
it, its NICs and their addresses on the serial console, then powers off.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import run_vmferry
from tests.guestimage import debian
from vmferry.tools.libvirt import connect, wait_console

pytestmark = pytest.mark.slow
BOOT_TIMEOUT = 420          # seconds; systemd under TCG on 2 shared cores boots in about 1-2 min
ADDRESS = debian.ADDRESS


@pytest.fixture(scope="module")
def debian_ova() -> tuple[debian.DebianGuest, Path]:
    guest = debian.build()
    return guest, debian.vmware_ova(guest)


def own_tree(daemon, top: Path) -> None:
    for root, _dirs, files in os.walk(top):
        daemon.own(Path(root))
        for f in files:
            daemon.own(Path(root) / f)


def convert(daemon, ova: Path, name: str, *args: str) -> tuple[dict, Path]:
    out = daemon.workdir / name
    res = run_vmferry("convert", ova, "--to", "kvm", "-o", out, "--domain-type", "qemu",
                      "--network-map", "VM Network=user", "--json", *args, timeout=1200)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout), out


def boot(daemon, xml: Path) -> debian.BootReport:
    """``vmferry deploy --start`` the domain ``xml`` on ``daemon``, read the console until the guest's
    report is complete or the domain stops; the domain is removed afterwards."""
    own_tree(daemon, xml.parent)
    log = Path(etree.parse(str(xml)).find("devices/serial/log").get("file"))
    res = run_vmferry("deploy", xml, "--connect", daemon.uri, "--start", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    with connect(daemon.uri) as conn:
        try:
            result = wait_console(log, [debian.MARK_DONE], BOOT_TIMEOUT,
                                  stop_when=lambda: not conn.info(info["name"]).active)
        finally:
            conn.undefine(info["name"])
    report = debian.parse_report(result.text)
    print(f"{xml.name}: {'booted' if report.booted else 'did not boot'} in {result.seconds:.0f} s; "
          f"root={report.root} via={report.via} nics={report.nics} addresses={report.addresses}")
    report.console = result.text  # type: ignore[attr-defined]
    return report


def test_unrepaired_guest_boots_on_sata_without_its_address(debian_ova, libvirtd):
    """The baseline of issue 11: without repair, convert falls back to SATA (the initramfs has no
    virtio) and the guest boots, but its NIC is renamed and its static address is lost."""
    guest, ova = debian_ova
    doc, out = convert(libvirtd, ova, "deb12-unrepaired")
    (choice,) = doc["choices"]
    assert choice["disk_bus"] == "sata" and choice["nic_model"] == "virtio", choice
    (xml,) = out.glob("*.xml")
    report = boot(libvirtd, xml)
    console = report.console  # type: ignore[attr-defined]
    assert report.booted and report.done, console[-4000:]
    assert report.root == "/dev/sda1" and "ahci" in report.via, (report.root, report.via)
    (nic,) = report.nics.items()
    name, (mac, driver) = nic
    assert (mac, driver) == (guest.mac, "virtio_net")
    assert name != guest.nic_name                   # ens192 on VMware; enp1s0 on a q35 PCIe root port
    assert report.addresses.get(name) == [], report.addresses
    assert report.interface_with(ADDRESS) is None
