"""Host-side addition of modules to an initramfs-tools image (vmferry.guest.initramfs_splice), on real
Debian kernel modules (the test guest builder's cached kernel package) and the host's depmod."""

from __future__ import annotations

import bz2
import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.guestimage import build
from vmferry.guest import initramfs as reader
from vmferry.guest.initramfs_splice import CpioWriter, SpliceUnsupported, splice
from vmferry.guest.kmod import module_name

LINK = b"[Match]\nMACAddress=00:50:56:3a:10:c2\n\n[Link]\nName=ens192\n"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A guest module tree (ahci and virtio with their dependencies) with its modules.dep, by depmod."""
    guest = build.build("legacy")
    kroot = build.cache_dir() / "extract" / Path(guest.kernel_package).stem
    version = guest.kernel_version
    index = build.module_index(kroot, version)
    mods = build.resolve_modules(("ahci", "sd_mod", "virtio_pci", "virtio_blk", "virtio_net"), index)
    root = tmp_path_factory.mktemp("guestroot")
    src, dst = kroot / "lib" / "modules" / version, root / "lib" / "modules" / version
    for name in mods:
        rel = index[name].relative_to(src)
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(index[name], dst / rel)
    for extra in ("modules.order", "modules.builtin"):
        shutil.copy2(src / extra, dst / extra)
    subprocess.run(["depmod", "-b", str(root), version], check=True)
    return version, dst, index, src


def _initramfs(version: str, dst: Path, modules: list[str], compress) -> tuple[bytes, bytes]:
    early = CpioWriter(1)
    early.file("kernel/x86/microcode/GenuineIntel.bin", b"\x01" * 64)
    early_bytes = early.finish()
    main = CpioWriter(1)
    for d in ("conf", "usr", "usr/lib", "usr/lib/modules", f"usr/lib/modules/{version}"):
        main.dir(d)
    main.file("conf/modules", b"ahci\nsd_mod\n")
    main.symlink("lib", "usr/lib")                                  # Debian 12: merged /usr
    for p in dst.rglob("*.ko*"):
        if module_name(p.name) in modules:
            main.file(f"usr/lib/modules/{version}/{p.relative_to(dst).as_posix()}", p.read_bytes())
    main.file(f"usr/lib/modules/{version}/modules.order", (dst / "modules.order").read_bytes())
    return early_bytes, early_bytes + compress(main.finish())


def _last(members, name):
    return bytes([m for m in members if m.name == name][-1].data)


def test_splice_adds_modules_dependencies_indexes_and_links(kernel):
    version, dst, _index, _src = kernel
    early, image = _initramfs(version, dst, ["ahci", "libahci", "libata", "scsi_mod", "scsi_common", "sd_mod",
                                             "crc_t10dif", "crct10dif_common", "t10_pi", "crc64_rocksoft", "crc64"],
                              lambda b: gzip.compress(b, mtime=0))
    before = set(reader.summarise("x", reader.read_members(image)).modules)
    assert "virtio_blk" not in before and "ahci" in before

    def read_module(rel: str) -> bytes:
        return (dst / rel).read_bytes()

    new, added = splice(image, version, ["ahci", "virtio_pci", "virtio_blk", "virtio_net"],
                        (dst / "modules.dep").read_text(), (dst / "modules.softdep").read_text()
                        if (dst / "modules.softdep").exists() else "", read_module, links={"10-vmferry-ens192.link": LINK})
    assert new.startswith(early) and new[len(early):len(early) + 2] == b"\x1f\x8b"   # microcode kept, gzip kept
    members = reader.read_members(new)
    after = set(reader.summarise("x", members).modules)
    assert after >= before | {"virtio_pci", "virtio_blk", "virtio_net", "virtio", "virtio_ring", "net_failover"}
    assert {module_name(a) for a in added} == after - before          # only what was missing was added
    dep = _last(members, f"usr/lib/modules/{version}/modules.dep").decode()
    blk = next(line for line in dep.splitlines() if "/virtio_blk.ko" in line.split(":")[0])
    assert "virtio_ring.ko" in blk                                   # depmod's index covers the new modules
    assert "/ahci.ko" in dep
    assert _last(members, "conf/modules").decode().split() == ["ahci", "sd_mod", "virtio_pci", "virtio_blk",
                                                                "virtio_net"]
    assert _last(members, "usr/lib/systemd/network/10-vmferry-ens192.link") == LINK


def test_splice_refuses_what_it_cannot_do_equivalently(kernel):
    version, dst, _index, _src = kernel
    _early, image = _initramfs(version, dst, ["ahci"], bz2.compress)
    with pytest.raises(SpliceUnsupported, match="compression"):
        splice(image, version, ["virtio_blk"], (dst / "modules.dep").read_text(), "", lambda rel: b"")
    _early, image = _initramfs(version, dst, ["ahci"], lambda b: gzip.compress(b) + b"garbage")
    with pytest.raises(SpliceUnsupported, match="after its compressed"):
        splice(image, version, ["virtio_blk"], (dst / "modules.dep").read_text(), "", lambda rel: b"")
    _early, image = _initramfs(version, dst, ["ahci"], gzip.compress)
    with pytest.raises(SpliceUnsupported, match="no hv_storvsc"):
        splice(image, version, ["hv_storvsc"], (dst / "modules.dep").read_text(), "", lambda rel: b"")
