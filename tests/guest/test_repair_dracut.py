"""Guest repair on a guest whose initramfs is made by dracut (no boot; the guest's files are read back).

The guest (tests/guestimage/debian_variants.py, "dracut"): the Debian 12 VMware guest with initramfs-tools
replaced by Debian's dracut packages and ``/etc/dracut.conf.d/10-vmware.conf`` restricting the initramfs
to VMware's storage drivers (``drivers+=``), its initramfs made by dracut's own trigger. The repair must
say what it wants in dracut's configuration (``add_drivers+=`` in ``/etc/dracut.conf.d/vmferry.conf``,
the administrator's file untouched, nothing written for initramfs-tools), regenerate the initramfs with
the guest's real dracut inside the appliance, and the drivers must really be in the image the bootloader
loads, read back with vmferry's initramfs reader.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.conftest import run_vmferry
from tests.guestimage import debian_variants
from vmferry.guest.initramfs import read_file, summarise
from vmferry.tools.guestfs import Session

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
KVM_DRIVERS = {"virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net"}
VMWARE_DRIVERS = {"vmw_pvscsi", "mptspi", "vmxnet3"}


@pytest.fixture(scope="module")
def repaired(tmp_path_factory):
    guest = debian_variants.build("dracut")
    tmp = tmp_path_factory.mktemp("dracut")
    out = tmp / "repaired.img"
    res = run_vmferry("guest", "repair", guest.image, "--for", "kvm", "-o", out, "--json",
                      "--set", f"vmferry.net.0.mac={guest.mac}", timeout=1500)
    assert res.returncode == 0, res.stdout + res.stderr
    initrd = tmp / "initrd"
    files = {}
    with Session(out, "raw", readonly=True) as s:
        for path in ("/etc/dracut.conf.d/vmferry.conf", debian_variants.DRACUT_FILE, "/etc/initramfs-tools/modules"):
            files[path] = s.read_text(path)
        s.download(f"/boot/initrd.img-{guest.kernel_version}", initrd)
        boot = s.ls("/boot")
    modules = set(summarise("", read_file(initrd)).modules)
    shutil.rmtree(tmp, ignore_errors=True)
    return guest, json.loads(res.stdout), files, modules, boot


def _add_drivers(text: str) -> set[str]:
    return {d for m in re.finditer(r'add_drivers\+?=\s*"([^"]*)"', text) for d in m.group(1).split()}


def test_the_built_guest_has_a_dracut_initramfs_without_virtio():
    guest = debian_variants.build("dracut")
    assert {"vmw_pvscsi", "mptspi"} <= set(guest.initramfs_modules)
    # virtio_pci comes with dracut's virtfs module; the disk and NIC drivers of KVM are not there
    assert not {"virtio_blk", "virtio_scsi", "virtio_net"} & set(guest.initramfs_modules)


def test_dracut_configuration_asks_for_the_drivers_of_target_and_source(repaired):
    _guest, report, files, _modules, _boot = repaired
    wanted = _add_drivers(files["/etc/dracut.conf.d/vmferry.conf"])
    assert KVM_DRIVERS | VMWARE_DRIVERS <= wanted, wanted
    assert files[debian_variants.DRACUT_FILE] == debian_variants.DRACUT_CONF       # the administrator's file
    assert files["/etc/initramfs-tools/modules"] is None                          # not an initramfs-tools guest
    assert report["source"] == ["vmware"]


def test_the_guests_own_dracut_regenerated_the_image_the_bootloader_loads(repaired):
    guest, report, _files, modules, boot = repaired
    assert not report["problems"], report["problems"]
    assert report["regenerated"] == [guest.kernel_version]
    initrd = next(c for c in report["changes"] if c["file"] == f"/boot/initrd.img-{guest.kernel_version}")
    assert "dracut" in initrd["new"]
    assert KVM_DRIVERS | VMWARE_DRIVERS <= modules, sorted(modules)             # read back from the image
    assert KVM_DRIVERS <= set(report["drivers"][guest.kernel_version])
    assert f"initramfs-{guest.kernel_version}.img" not in boot                  # no second, unused image
    assert report["timings"].get("regenerate", 0) > 0
    print(f"dracut regeneration inside the appliance: {report['timings']['regenerate']} s")
