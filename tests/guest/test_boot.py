"""Prove it boots: the test guest, on a private real libvirtd, QEMU under TCG.

The virtio guest finds its root on a virtio disk and prints the IP address from its OVF environment
CD-ROM; the legacy guest (no virtio module) prints ROOT-MISSING on the same virtio disk, and boots on
SATA, so the driver alone makes the difference.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.guest.libvirtd import deploy_and_wait
from tests.guestimage import build
from vmferry.tools.proc import run

pytestmark = pytest.mark.slow
BOOT_TIMEOUT = 150  # seconds; a boot takes about 20 s on 2 cores under TCG
IP = "10.1.2.3"


def domain_xml(name: str, disk: Path, bus: str, iso: Path, log: Path) -> str:
    dev = {"virtio": "vda", "sata": "sda", "scsi": "sda"}[bus]
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid.uuid4()}</uuid>
  <memory unit='MiB'>384</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{disk}'/>
      <target dev='{dev}' bus='{bus}'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='{iso}'/>
      <target dev='sdc' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:12:34:56'/>
      <model type='e1000'/>
    </interface>
    <serial type='file'>
      <source path='{log}'/>
      <target port='0'/>
    </serial>
  </devices>
</domain>
"""


def boot(daemon, guest: build.BuiltGuest, bus: str, until: list[str]):
    """Convert the guest disk to qcow2, define and start it with ``vmferry deploy``, read its console."""
    name = f"vmferry-{guest.variant}-{bus}-{uuid.uuid4().hex[:6]}"
    work = daemon.workdir / name
    work.mkdir()
    daemon.own(work)
    disk = work / "disk.qcow2"
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", guest.image, str(disk)], timeout=300)
    # decoys first: the guest must pick its own key, not the first property
    iso = build.make_env_iso(work / "ovf-env.iso", {"hostname": "vmferry-test", f"{guest.ip_key}x": "192.0.2.9",
                                                    guest.ip_key: IP})
    log = work / "console.log"
    for p in (disk, iso):
        daemon.own(p)
    xml = work / "domain.xml"
    xml.write_text(domain_xml(name, disk, bus, iso, log))
    run(["virt-xml-validate", str(xml), "domain"])
    return deploy_and_wait(daemon, xml, log, until, BOOT_TIMEOUT)


def test_virtio_guest_boots_and_reads_its_ovf_environment(libvirtd, guest_virtio):
    result = boot(libvirtd, guest_virtio, "virtio", [f"{build.MARK_IP} {IP}", build.MARK_ROOT_MISSING])
    assert result.found == f"{build.MARK_IP} {IP}", result.text[-3000:]
    assert f"{build.MARK_ROOT_FOUND} UUID={guest_virtio.root_uuid} is /dev/vda1" in result.text
    assert build.MARK_BOOTED in result.text
    print(f"virtio guest booted and printed its IP in {result.seconds:.1f} s")


def test_guest_without_virtio_does_not_boot_on_virtio(libvirtd, guest_legacy):
    result = boot(libvirtd, guest_legacy, "virtio", [build.MARK_ROOT_MISSING, build.MARK_BOOTED])
    assert result.found == build.MARK_ROOT_MISSING, result.text[-3000:]
    assert build.MARK_BOOTED not in result.text
    assert "vda" not in result.text.split(build.MARK_ROOT_MISSING, 1)[1].splitlines()[0]


def test_guest_without_virtio_boots_on_sata(libvirtd, guest_legacy):
    result = boot(libvirtd, guest_legacy, "sata", [f"{build.MARK_IP} {IP}", build.MARK_ROOT_MISSING])
    assert result.found == f"{build.MARK_IP} {IP}", result.text[-3000:]
    assert f"{build.MARK_ROOT_FOUND} UUID={guest_legacy.root_uuid} is /dev/sda1" in result.text
