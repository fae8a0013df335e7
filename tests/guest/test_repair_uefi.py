"""Guest repair of a UEFI guest whose bootloader names its root by device: a small real GPT disk (EFI
system partition with a vendor shim and GRUB, ext4 root) made with libguestfs and cached by recipe."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

from tests.guestimage.build import cache_dir
from vmferry.guest.repair import repair_image
from vmferry.tools.guestfs import Session, binding, guestfs_env

pytestmark = pytest.mark.slow

ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
FILES = {
    "/etc/os-release": 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
    "/etc/debian_version": "12.5\n",
    "/etc/hostname": "uefi-guest\n",
    "/etc/fstab": "/dev/sda2 / ext4 errors=remount-ro 0 1\n/dev/sda1 /boot/efi vfat umask=0077 0 1\n",
    "/bin/sh": "#!/bin/sh\n",
    "/etc/default/grub": 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="console=ttyS0"\nGRUB_DISABLE_LINUX_UUID=true\n',
    "/boot/grub/grub.cfg": "menuentry 'Debian' {\n\tlinux /boot/vmlinuz-6.1.0-9-amd64 root=/dev/sda2 ro quiet\n"
                           "\tinitrd /boot/initrd.img-6.1.0-9-amd64\n}\n",
}
ESP_FILES = {"/boot/efi/EFI/debian/shimx64.efi": b"MZ shim of the vendor", "/boot/efi/EFI/debian/grubx64.efi":
             b"MZ grub of the vendor", "/boot/efi/EFI/debian/grub.cfg": b"search.fs_uuid x root\n"}


def _image(tmp_path):
    key = hashlib.sha256(json.dumps([sorted(FILES.items()), sorted((k, v.hex()) for k, v in ESP_FILES.items())])
                         .encode()).hexdigest()[:16]
    cached = cache_dir() / f"repair-uefi-{key}.qcow2"
    if not cached.exists():
        for k, v in guestfs_env().items():
            os.environ.setdefault(k, v)
        tmp = cached.with_suffix(".tmp")
        g = binding().GuestFS(python_return_dict=True)
        g.disk_create(str(tmp), "qcow2", 128 << 20)
        g.add_drive_opts(str(tmp), format="qcow2")
        g.launch()
        g.part_init("/dev/sda", "gpt")
        g.part_add("/dev/sda", "p", 2048, 2048 + 65536 - 1)
        g.part_add("/dev/sda", "p", 2048 + 65536, -2048)
        g.part_set_gpt_type("/dev/sda", 1, ESP_GUID)
        g.mkfs("vfat", "/dev/sda1")
        g.mkfs("ext4", "/dev/sda2")
        g.mount("/dev/sda2", "/")
        for d in ("/etc/default", "/bin", "/usr/bin", "/boot/grub", "/boot/efi", "/lib/modules"):
            g.mkdir_p(d)
        for path, text in FILES.items():
            g.write(path, text)
        g.mount("/dev/sda1", "/boot/efi")
        g.mkdir_p("/boot/efi/EFI/debian")
        for path, data in ESP_FILES.items():
            g.write(path, data)
        g.umount_all()
        g.shutdown()
        g.close()
        os.replace(tmp, cached)
    work = tmp_path / "uefi.qcow2"
    shutil.copyfile(cached, work)
    return work


def test_uefi_fallback_loader_and_root_by_uuid(tmp_path):
    image = _image(tmp_path)
    report = repair_image(image, ["kvm"])
    assert [p for p in report.problems if "no installed kernel" not in p] == []
    with Session(image, "qcow2", readonly=True) as s:
        root_uuid, esp_uuid = s.vfs_uuid("/dev/sda2"), s.vfs_uuid("/dev/sda1")
        boot = {n.upper(): n for n in s.ls("/boot/efi/EFI/BOOT")}
        loader = s.read(f"/boot/efi/EFI/BOOT/{boot['BOOTX64.EFI']}")
        grub = s.read("/boot/efi/EFI/BOOT/grubx64.efi")
        cfg, defaults, fstab = (s.read_text(p) for p in ("/boot/grub/grub.cfg", "/etc/default/grub", "/etc/fstab"))
        vendor = s.ls("/boot/efi/EFI/debian")
    assert loader == ESP_FILES["/boot/efi/EFI/debian/shimx64.efi"]        # shim at the removable-media path
    assert grub == ESP_FILES["/boot/efi/EFI/debian/grubx64.efi"]          # and the GRUB it loads, beside it
    assert sorted(vendor) == ["grub.cfg", "grubx64.efi", "shimx64.efi"]   # the vendor's own entry stays
    assert f"root=UUID={root_uuid} ro quiet" in cfg and "/dev/sda2" not in cfg
    assert "GRUB_DISABLE_LINUX_UUID=false\n" in defaults
    assert fstab == f"UUID={root_uuid} / ext4 errors=remount-ro 0 1\nUUID={esp_uuid} /boot/efi vfat umask=0077 0 1\n"
    by_file = {c.file: c for c in report.changes}
    assert by_file["/boot/efi/EFI/BOOT/BOOTX64.EFI"].new == "copy of /boot/efi/EFI/debian/shimx64.efi"
    assert by_file["/boot/grub/grub.cfg"].old == FILES["/boot/grub/grub.cfg"]
    again = repair_image(image, ["kvm"])                  # a repaired guest needs nothing more
    assert [c.file for c in again.changes] == []
