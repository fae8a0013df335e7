"""A small synthetic Windows disk for the Windows readiness tests (no Windows media involved).

    python tests/guestimage/windows.py [--variant inbox|virtio]

The disk: an MBR-partitioned raw image with one NTFS partition (made by the libguestfs appliance's
``mkfs ntfs``, i.e. ntfs-3g's mkntfs) holding the part of a Windows tree that libguestfs inspection and
vmferry read:

* ``Windows/System32/cmd.exe``: a minimal PE32+ x86-64 header (libguestfs takes the architecture from it);
* ``Windows/System32/config/SOFTWARE``: ``Microsoft\\Windows NT\\CurrentVersion`` with ProductName,
  CurrentVersion, CurrentMajor/MinorVersionNumber, InstallationType (what inspection reads);
* ``Windows/System32/config/SYSTEM``: ``Select\\Current``, ``ControlSet001\\Services\\<driver>`` with
  ``Start``/``Type``/``ImagePath``, ``ControlSet001\\Control\\ComputerName``, and
  ``DriverDatabase\\DeviceIds\\PCI\\<id>``;
* ``Windows/System32/drivers/<driver>.sys`` for each driver of the variant.

Both hives are real regf files: an empty hive laid out by :func:`empty_hive` (a root key and its
security cell, as the regf format describes), filled with ``hivexregedit --merge`` (hivex). The
``inbox`` variant is a Windows Server 2019 installed on SATA with only inbox drivers (storahci boot-start,
intelide/atapi, LSI SAS, e1iexpress, E1G60): no virtio. ``virtio`` adds virtio-win's viostor (boot-start)
and netkvm.

Images are cached under ``$VMFERRY_TEST_CACHE`` (default ``~/.cache/vmferry-test``), keyed by this
file's content and the variant.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import struct
import tempfile
from pathlib import Path

from vmferry.tools.guestfs import binding, guestfs_env
from vmferry.tools.proc import run

DISK_MIB = 24
PRODUCT = "Windows Server 2019 Standard"

# (service, Start, driver file): Start 0 boot, 3 demand
INBOX = (("storahci", 0, "storahci.sys"), ("intelide", 0, "intelide.sys"), ("atapi", 0, "atapi.sys"),
         ("LSI_SAS", 0, "lsi_sas.sys"), ("e1iexpress", 3, "e1i63x64.sys"), ("E1G60", 3, "e1g6032e.sys"))
VIRTIO = (("viostor", 0, "viostor.sys"), ("netkvm", 3, "netkvm.sys"))
VARIANTS = {
    "inbox": (INBOX, ("PCI\\CC_010601", "PCI\\VEN_8086&DEV_10D3", "PCI\\VEN_8086&DEV_100E")),
    "virtio": (INBOX + VIRTIO, ("PCI\\CC_010601", "PCI\\VEN_8086&DEV_10D3", "PCI\\VEN_1AF4&DEV_1001",
                                "PCI\\VEN_1AF4&DEV_1000")),
}


def empty_hive(name: str = "ROOT") -> bytes:
    """An empty registry hive: the 4 KiB regf header (checksum: XOR of its first 127 dwords) and one
    4 KiB hbin holding the root key (nk), its security descriptor cell (sk) and one free cell."""
    page = bytearray(0x1000)
    page[0:4] = b"hbin"
    struct.pack_into("<III", page, 4, 0, 0x1000, 0)
    nk_off, raw_name = 0x20, name.encode("ascii")
    nk_len = (4 + 0x4C + len(raw_name) + 7) & ~7
    sk_off = nk_off + nk_len
    sd = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 0)      # self-relative, DACL present (null)
    sk_len = (4 + 0x14 + len(sd) + 7) & ~7
    nk = struct.pack("<i2sHqIIIIIIIIIIHHIIIIHH", -nk_len, b"nk", 0x2C, 0, 0, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF,
                     0, 0xFFFFFFFF, sk_off, 0xFFFFFFFF, 0, 0, 0, 0, 0, 0, len(raw_name), 0) + raw_name
    page[nk_off:nk_off + len(nk)] = nk
    sk = struct.pack("<i2sHIIII", -sk_len, b"sk", 0, sk_off, sk_off, 1, len(sd)) + sd
    page[sk_off:sk_off + len(sk)] = sk
    struct.pack_into("<i", page, sk_off + sk_len, 0x1000 - sk_off - sk_len)
    header = bytearray(0x1000)
    struct.pack_into("<4sIIqIIIIIII", header, 0, b"regf", 1, 1, 0, 1, 3, 0, 1, nk_off, 0x1000, 1)
    checksum = 0
    for i in range(0, 0x1FC, 4):
        checksum ^= struct.unpack_from("<I", header, i)[0]
    struct.pack_into("<I", header, 0x1FC, checksum)
    return bytes(header + page)


def pe32_plus() -> bytes:
    """The headers of an x86-64 console PE executable (``file``: "PE32+ executable (console) x86-64")."""
    pe = bytearray(0x200)
    pe[0:2] = b"MZ"
    struct.pack_into("<I", pe, 0x3C, 0x40)
    pe[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", pe, 0x44, 0x8664, 0, 0, 0, 0, 0xF0, 0x22)
    struct.pack_into("<H", pe, 0x58, 0x20B)
    struct.pack_into("<H", pe, 0x58 + 68, 3)
    return bytes(pe)


def _utf16(text: str) -> str:
    return ",".join(f"{b:02x}" for b in (text + "\0").encode("utf-16-le"))


def _reg(keys: dict[str, dict[str, str]]) -> str:
    """``.reg`` text with every parent key listed before its children (hivexregedit needs them)."""
    all_keys: dict[str, dict[str, str]] = {}
    for path, values in keys.items():
        parts = path.split("\\")
        for i in range(1, len(parts)):
            all_keys.setdefault("\\".join(parts[:i]), {})
        all_keys.setdefault(path, {}).update(values)
    out = ["Windows Registry Editor Version 5.00", ""]
    for path in sorted(all_keys, key=lambda p: (p.count("\\"), p)):
        out.append(f"[\\{path}]")
        out += [f'"{k}"={v}' for k, v in all_keys[path].items()]
        out.append("")
    return "\r\n".join(out)


def software_reg() -> str:
    return _reg({"Microsoft\\Windows NT\\CurrentVersion": {
        "ProductName": f'"{PRODUCT}"', "CurrentVersion": '"6.3"', "CurrentBuildNumber": '"17763"',
        "CurrentMajorVersionNumber": "dword:0000000a", "CurrentMinorVersionNumber": "dword:00000000",
        "InstallationType": '"Server"', "EditionID": '"ServerStandard"'}})


def system_reg(variant: str) -> str:
    services, device_ids = VARIANTS[variant]
    keys: dict[str, dict[str, str]] = {
        "Select": {"Current": "dword:00000001", "Default": "dword:00000001"},
        "ControlSet001\\Control\\ComputerName\\ComputerName": {"ComputerName": '"VMFWIN"'},
        "ControlSet001\\Services\\Tcpip\\Parameters": {"Hostname": '"vmfwin"'},
    }
    for name, start, file in services:
        keys[f"ControlSet001\\Services\\{name}"] = {
            "Start": f"dword:{start:08x}", "Type": "dword:00000001",
            "ImagePath": "hex(2):" + _utf16("System32\\drivers\\" + file)}
    for dev in device_ids:
        keys[f"DriverDatabase\\DeviceIds\\{dev}"] = {"vmferry-test.inf": "hex:01,ff,00,00"}
    return _reg(keys)


def _hive(path: Path, reg_text: str) -> None:
    path.write_bytes(empty_hive())
    reg = path.with_suffix(".reg")
    reg.write_text(reg_text, encoding="utf-8")
    run(["hivexregedit", "--merge", path, reg], timeout=120)


def cache_dir() -> Path:
    return Path(os.environ.get("VMFERRY_TEST_CACHE", Path.home() / ".cache" / "vmferry-test"))


def recipe_key(variant: str) -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes() + variant.encode()).hexdigest()
    return digest[:16]


def build(variant: str = "inbox") -> Path:
    """The raw image of ``variant`` (built once, then taken from the cache)."""
    out = cache_dir() / f"windows-{variant}-{recipe_key(variant)}.img"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    services, _ = VARIANTS[variant]
    with tempfile.TemporaryDirectory(prefix="vmferry-win-", dir=out.parent) as tmp:
        tmpdir = Path(tmp)
        image = tmpdir / "disk.img"
        with open(image, "wb") as fh:
            fh.truncate(DISK_MIB << 20)
        _hive(tmpdir / "SYSTEM", system_reg(variant))
        _hive(tmpdir / "SOFTWARE", software_reg())
        (tmpdir / "cmd.exe").write_bytes(pe32_plus())
        (tmpdir / "driver.sys").write_bytes(pe32_plus())
        for key, value in guestfs_env().items():
            os.environ.setdefault(key, value)
        g = binding().GuestFS(python_return_dict=True)
        try:
            g.add_drive_opts(str(image), format="raw", readonly=False)
            g.launch()
            g.part_disk("/dev/sda", "mbr")
            g.part_set_bootable("/dev/sda", 1, True)
            g.mkfs("ntfs", "/dev/sda1")
            g.mount("/dev/sda1", "/")
            g.mkdir_p("/Windows/System32/config")
            g.mkdir_p("/Windows/System32/drivers")
            g.upload(str(tmpdir / "cmd.exe"), "/Windows/System32/cmd.exe")
            g.upload(str(tmpdir / "SYSTEM"), "/Windows/System32/config/SYSTEM")
            g.upload(str(tmpdir / "SOFTWARE"), "/Windows/System32/config/SOFTWARE")
            for _, _, file in services:
                g.upload(str(tmpdir / "driver.sys"), f"/Windows/System32/drivers/{file}")
            g.umount_all()
            g.shutdown()
        finally:
            g.close()
        os.replace(image, out)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="inbox")
    print(build(parser.parse_args().variant))
