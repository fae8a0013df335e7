"""Fast tests: initramfs and module readers, configuration parsers, readiness rules, deploy on test:///default."""

from __future__ import annotations

import gzip
import json
import lzma
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_vmferry
from vmferry.errors import GuestError, TargetError, XmlError
from vmferry.guest import initramfs, linuxconf
from vmferry.guest.initramfs_splice import CpioWriter
from vmferry.guest.kmod import builtin_from_config, builtin_from_list, modinfo, module_name
from vmferry.guest.model import DiskName, GuestReport, Initramfs, Kernel, OsInfo, Tool
from vmferry.guest.readiness import readiness
from vmferry.tools import libvirt as lv


def _cpio(files: dict[str, bytes]) -> bytes:
    w = CpioWriter()
    for name, data in files.items():
        w.file(name, data)
    return w.finish()


def _elf_module(name: str, depends: str, softdep: str = "") -> bytes:
    """A minimal ELF64 relocatable file with a .modinfo section, laid out by hand."""
    import struct

    modinfo_data = f"license=GPL\0depends={depends}\0name={name}\0".encode()
    if softdep:
        modinfo_data += f"softdep={softdep}\0".encode()
    shstr = b"\0.modinfo\0.shstrtab\0"
    body_off = 64
    shstr_off = body_off + len(modinfo_data)
    sh_off = (shstr_off + len(shstr) + 7) & ~7
    header = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header += struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, sh_off, 0, 64, 0, 0, 64, 3, 2)
    sections = struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    sections += struct.pack("<IIQQQQIIQQ", 1, 1, 2, 0, body_off, len(modinfo_data), 0, 0, 1, 0)
    sections += struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0)
    blob = header + modinfo_data + shstr
    return blob + b"\0" * (sh_off - len(blob)) + sections


def test_initramfs_with_microcode_prefix_and_gzip_main_archive():
    early = _cpio({"kernel/x86/microcode/GenuineIntel.bin": b"\x01" * 100})
    main = _cpio({"init": b"#!/bin/sh\n", "lib/modules/6.1.0-9-amd64/kernel/drivers/block/virtio_blk.ko": b"x",
                  "usr/lib/modules/6.1.0-9-amd64/kernel/drivers/scsi/sd_mod.ko.xz": b"y"})
    members = initramfs.read_members(early + gzip.compress(main))
    summary = initramfs.summarise("/boot/initrd.img", members)
    assert summary.modules == ("sd_mod", "virtio_blk")
    assert summary.kernel_version == "6.1.0-9-amd64"
    assert {m.name for m in members} >= {"init", "kernel/x86/microcode/GenuineIntel.bin"}


@pytest.mark.parametrize("compress", [lzma.compress, lambda d: d])
def test_initramfs_xz_and_plain(compress):
    data = compress(_cpio({"lib/modules/5.10/kernel/drivers/net/e1000/e1000.ko": b"m"}))
    assert initramfs.summarise("x", initramfs.read_members(data)).modules == ("e1000",)


def test_initramfs_zstd(tmp_path):
    raw = tmp_path / "a.cpio"
    raw.write_bytes(_cpio({"lib/modules/6.8/kernel/drivers/ata/ahci.ko.zst": b"m"}))
    subprocess.run(["zstd", "-q", str(raw), "-o", str(tmp_path / "a.zst")], check=True)
    members = initramfs.read_file(tmp_path / "a.zst")
    assert initramfs.summarise("x", members).modules == ("ahci",)


@pytest.mark.parametrize("data", [b"garbage that is no archive", gzip.compress(b"070701" + b"0" * 20)])
def test_initramfs_corrupt_is_a_guest_error(data):
    with pytest.raises(GuestError):
        initramfs.read_members(data)


def test_modinfo_reads_depends_and_softdeps():
    blob = _elf_module("ext4", "mbcache,jbd2,crc16", "pre: crc32c")
    info = modinfo(blob, "ext4.ko")
    assert (info.name, info.depends, info.softdep_pre) == ("ext4", ("mbcache", "jbd2", "crc16"), ("crc32c",))
    assert modinfo(lzma.compress(blob), "ext4.ko.xz").depends == info.depends
    with pytest.raises(GuestError):
        modinfo(b"not an elf file at all", "x.ko")


def test_module_names_and_builtin_lists():
    assert module_name("kernel/drivers/scsi/vmw_pvscsi.ko.zst") == "vmw_pvscsi"
    assert module_name("kernel/drivers/block/xen-blkfront.ko") == "xen_blkfront"
    assert module_name("modules.dep") is None
    assert builtin_from_list("kernel/drivers/virtio/virtio_pci.ko\nkernel/fs/ext4/ext4.ko\n") == {"virtio_pci", "ext4"}
    assert builtin_from_config("CONFIG_VIRTIO_BLK=y\nCONFIG_ATA_PIIX=m\n# CONFIG_E1000 is not set\n") == {"virtio_blk"}


def test_fstab_and_root_arguments():
    names = linuxconf.fstab("UUID=abc / ext4 defaults 0 1\n/dev/sdb1 /data xfs defaults 0 2\n"
                            "LABEL=swap none swap sw 0 0\nproc /proc proc defaults 0 0\n"
                            "/dev/mapper/vg-home /home ext4 defaults 0 2\n# /dev/sda2 /old ext4\n")
    assert [(n.mountpoint, n.style) for n in names] == [("/", "uuid"), ("/data", "device"), ("swap", "label"),
                                                        ("/home", "lvm")]
    assert names[1].device_prefix == "sd"
    grub = "menuentry 'Debian' {\n  linux /vmlinuz-6.1 root=/dev/xvda1 ro quiet\n}\n"
    (root,) = linuxconf.kernel_root_args(grub, "/boot/grub/grub.cfg")
    assert (root.spec, root.style, root.device_prefix) == ("/dev/xvda1", "device", "xvd")


def test_network_parsers():
    assert [(b.kind, b.interface, b.slot_bound) for b in linuxconf.ifupdown(
        "auto ens192\niface ens192 inet static\n  hwaddress ether 00:50:56:aa:bb:cc\n", "i")] == \
        [("name", "ens192", True), ("mac", "ens192", True)]
    plan = "network:\n  version: 2\n  ethernets:\n    id0:\n      match:\n        macaddress: 00:0c:29:11:22:33\n" \
           "      set-name: lan0\n      dhcp4: true\n    enp0s3:\n      dhcp4: true\n"
    assert [(b.kind, b.interface, b.mac) for b in linuxconf.netplan(plan, "p")] == \
        [("mac", "lan0", "00:0c:29:11:22:33"), ("name", "enp0s3", "")]
    nm = "[connection]\nid=Wired\ninterface-name=eth1\n[ethernet]\nmac-address=08:00:27:AA:BB:CC\n"
    assert [(b.kind, b.mac) for b in linuxconf.nm_keyfile(nm, "n")] == [("name", ""), ("mac", "08:00:27:aa:bb:cc")]
    assert [(b.kind, b.mac) for b in linuxconf.networkd("[Match]\nMACAddress=52:54:00:01:02:03\n", "d")] == \
        [("mac", "52:54:00:01:02:03")]
    assert [(b.kind, b.interface) for b in linuxconf.ifcfg('DEVICE=eth0\nHWADDR="00:15:5d:01:02:03"\n', "c")] == \
        [("name", "eth0"), ("mac", "eth0")]
    rule = 'SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="00:16:3e:00:00:01", NAME="eth0"\n'
    assert [(b.mac, b.interface) for b in linuxconf.udev_rules(rule, "u")] == [("00:16:3e:00:00:01", "eth0")]


def test_cloud_init_datasources_last_file_wins():
    ci = linuxconf.cloud_datasources([("/etc/cloud/cloud.cfg", "datasource_list: [ NoCloud, None ]\n"),
                                      ("/etc/cloud/cloud.cfg.d/90.cfg", "datasource_list:\n  - VMware\n  - None\n")])
    assert (ci.datasources, ci.where) == (("VMware",), "/etc/cloud/cloud.cfg.d/90.cfg")


def _linux(drivers=(), modules=(), names=(), tools=(), cloud=None) -> GuestReport:
    initrd = Initramfs("/boot/initrd.img-6.1", "6.1", tuple(sorted(drivers)), tuple(sorted(drivers)))
    kernel = Kernel("6.1", "/boot/vmlinuz-6.1", (), tuple(modules), len(modules), initrd, default=True)
    return GuestReport("disk", OsInfo("linux", "debian", "Debian 12", "12", "x86_64"), "bios", "msdos", "grub2",
                       kernels=[kernel], disk_names=list(names), tools=list(tools), cloud_init=cloud)


def test_readiness_root_by_device_name_depends_on_the_bus():
    report = _linux(drivers={"virtio_pci", "virtio_blk", "virtio_net", "ahci", "sd_mod"},
                    names=[DiskName("/boot/grub/grub.cfg", "root=", "/dev/sda1", "device")])
    kvm = readiness(report, "kvm")
    assert kvm.status == "will-not-boot" and [f.rule for f in kvm.reasons] == ["VMF-GUEST-010"]
    assert readiness(report, "kvm", bus="sata").status == "ready"


def test_readiness_tool_conflicts_and_cloud_init():
    from vmferry.guest.model import CloudInit

    report = _linux(drivers={"ahci", "sd_mod", "e1000", "sr_mod", "cdrom", "isofs"},
                    tools=[Tool("open-vm-tools", "vmware", "package"), Tool("virtualbox-guest-additions",
                                                                            "virtualbox", "/opt/VBoxGuestAdditions-7")],
                    cloud=CloudInit(True, ("VMware",), "/etc/cloud/cloud.cfg"))
    vbox = readiness(report, "virtualbox")
    assert vbox.status == "needs-fixes"
    assert {f.rule for f in vbox.reasons} == {"VMF-GUEST-030", "VMF-GUEST-040"}
    with pytest.raises(Exception, match="unknown disk bus"):
        readiness(report, "kvm", bus="floppy")


def test_readiness_rules_for_other_guest_shapes():
    no_kernel = _linux()
    no_kernel.kernels = []
    kvm = readiness(no_kernel, "kvm")
    assert kvm.status == "will-not-boot" and kvm.findings[0].rule == "VMF-GUEST-003"

    report = _linux(drivers={"virtio_pci", "virtio_blk", "virtio_net", "sd_mod"},
                    names=[DiskName("/etc/fstab", "/data", "/dev/sdb1", "device")],
                    tools=[Tool("open-vm-tools", "vmware", "package open-vm-tools"),
                           Tool("vmware-tools", "vmware", "/etc/vmware-tools/locations")])
    report.network = linuxconf.ifupdown("auto ens192\niface ens192 inet dhcp\n", "/etc/network/interfaces")
    report.firmware = "unknown"
    kvm = readiness(report, "kvm")
    assert kvm.status == "needs-fixes"
    by_rule = {f.rule: f for f in kvm.findings}
    assert {"VMF-GUEST-012", "VMF-GUEST-022", "VMF-GUEST-031", "VMF-GUEST-051"} <= set(by_rule)
    assert by_rule["VMF-GUEST-012"].location == "/etc/fstab" and "/dev/sdb1" in by_rule["VMF-GUEST-012"].message
    assert "VMF-GUEST-030" not in by_rule  # one vendor twice is 031, not a conflict of vendors
    vmware = {f.rule for f in readiness(report, "vmware").findings}  # no mptspi: will not boot there
    assert "VMF-GUEST-001" in vmware and "VMF-GUEST-012" not in vmware  # sdb1 stays sdb1 on LSI Logic

    bsd = GuestReport("disk", OsInfo("freebsd", "freebsd", "FreeBSD 14", "14", "x86_64"), "bios", "msdos",
                      "unknown")
    xen = readiness(bsd, "xen")
    assert xen.status == "needs-fixes" and [f.rule for f in xen.findings] == ["VMF-GUEST-060"]


def test_readiness_windows_is_honest():
    base = GuestReport("disk", OsInfo("windows", "windows", "Windows Server 2019", "10.0", "x86_64"), "uefi", "gpt",
                       "windows", not_checked=["whether a present driver is registered as a boot-start service"])
    assert readiness(base, "kvm").status == "will-not-boot"
    base.windows_drivers = ["netkvm.sys", "viostor.sys"]
    kvm = readiness(base, "kvm")
    assert kvm.status == "needs-fixes" and kvm.reasons[0].rule == "VMF-GUEST-002"
    assert any(f.rule == "VMF-GUEST-061" and "boot-start" in f.message for f in kvm.findings)


DOMAIN = """<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os></domain>"""


def test_libvirt_adapter_on_the_test_driver():
    with lv.connect("test:///default") as conn:
        info = conn.define(DOMAIN.format(name="vmferry-unit"))
        assert (info.name, info.state, info.persistent) == ("vmferry-unit", "shutoff", True)
        assert conn.start("vmferry-unit").state == "running"
        conn.destroy("vmferry-unit")
        conn.undefine("vmferry-unit")
        assert "vmferry-unit" not in conn.names()
        with pytest.raises(TargetError, match="define failed"):
            conn.define("<domain type='nosuchtype'><name>x</name></domain>")
    with pytest.raises(XmlError):
        lv.domain_name("<domain><name>x</name>")


def test_wait_console_stops_at_marker_or_timeout(tmp_path: Path):
    log = tmp_path / "console.log"
    log.write_text("booting\nMARK-A here\n")
    assert lv.wait_console(log, ["MARK-B", "MARK-A"], 5).found == "MARK-A"
    res = lv.wait_console(log, ["NEVER"], 0.3, poll=0.05)
    assert res.found is None and "booting" in res.text
    assert lv.wait_console(tmp_path / "missing.log", ["X"], 5, stop_when=lambda: True).found is None


def test_deploy_command(tmp_path: Path):
    xml = tmp_path / "vm.xml"
    xml.write_text(DOMAIN.format(name="vmferry-cli"))
    res = run_vmferry("deploy", xml, "--connect", "test:///default", "--start")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("vmferry-cli: defined on test:///default") and "running" in res.stdout
    bad = tmp_path / "bad.xml"
    bad.write_text("<domain type='nosuchtype'><name>x</name></domain>")
    res = run_vmferry("deploy", bad, "--connect", "test:///default")
    assert res.returncode == 2 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and str(bad) in res.stderr and "define failed" in res.stderr
    res = run_vmferry("deploy", tmp_path / "nope.xml", "--connect", "test:///default")
    assert res.returncode == 2 and "no such file" in res.stderr
    res = run_vmferry("deploy", xml, "--connect", "bogus+scheme:///x")
    assert res.returncode == 2 and "cannot connect" in res.stderr and "Traceback" not in res.stderr


def test_deploy_takes_a_directory_with_one_domain(tmp_path: Path):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "vm.xml").write_text(DOMAIN.format(name="vmferry-dir"))
    res = run_vmferry("deploy", tmp_path / "one", "--connect", "test:///default", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["name"], doc["state"]) == ("vmferry-dir", "shutoff") and res.stdout.count("\n") == 1
    (tmp_path / "none").mkdir()
    res = run_vmferry("deploy", tmp_path / "none", "--connect", "test:///default")
    assert res.returncode == 2 and "found 0" in res.stderr
    (tmp_path / "one" / "notes.txt").write_text("<domain")
    (tmp_path / "one" / "other.xml").write_text("<network><name>n</name></network>")
    res = run_vmferry("deploy", tmp_path / "one" / "other.xml", "--connect", "test:///default")
    assert res.returncode == 2 and "not a libvirt domain XML" in res.stderr


def test_guest_command_bad_input(tmp_path: Path):
    res = run_vmferry("guest", tmp_path / "missing.img")
    assert res.returncode == 2 and "missing.img" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = run_vmferry("guest", tmp_path / "missing.img", "--target", "amiga")
    assert res.returncode == 2 and "unknown target" in res.stderr
