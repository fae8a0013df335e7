"""Disk images that try to reach outside their package, or whose tables point outside the file: real
images made by qemu-img (or vmferry's own writer), then patched byte by byte where qemu-img will not
write the hostile field itself. Each builder writes into ``pkg`` (the package folder) and may place
files in ``outside`` (the host, standing in for /etc); it returns the disk's file name in ``pkg``.

``SECRET`` is a file outside the package filled with a unique marker: no output may ever hold it.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import uuid
from pathlib import Path

MIB = 1 << 20
MARKER = b"VMFERRY-HOST-FILE-" + uuid.uuid4().hex.encode() + b"\n"


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def write_secret(outside: Path) -> Path:
    outside.mkdir(exist_ok=True)
    secret = outside / "secret.raw"
    secret.write_bytes((MARKER * (MIB // len(MARKER) + 1))[:MIB])
    return secret


def _data_image(path: Path, fmt: str, *opts: str) -> None:
    """A 1 MiB image of ``fmt`` holding 256 KiB of data (so tables have allocated entries)."""
    raw = path.with_suffix(".src.raw")
    raw.write_bytes(os.urandom(256 << 10) + bytes(MIB - (256 << 10)))
    qemu_img("convert", "-f", "raw", "-O", fmt, *opts, str(raw), str(path))
    raw.unlink()


def _patch(path: Path, offset: int, fmt: str, *values) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, *values)
    path.write_bytes(data)


# -- qcow2 --------------------------------------------------------------------------------------------

def qcow2_backing_absolute(pkg: Path, outside: Path) -> str:
    qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(outside / "secret.raw"), str(pkg / "disk.qcow2"))
    return "disk.qcow2"


def qcow2_backing_dotdot(pkg: Path, outside: Path) -> str:
    rel = os.path.relpath(outside / "secret.raw", pkg)
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", rel, str(pkg / "disk.qcow2"), "1M")
    return "disk.qcow2"


def qcow2_backing_json(pkg: Path, outside: Path) -> str:
    name = "json:" + json.dumps({"driver": "raw", "file": {"driver": "file", "filename": str(outside / "secret.raw")}})
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", name, "-F", "raw", str(pkg / "disk.qcow2"), "1M")
    return "disk.qcow2"


def qcow2_backing_protocol(pkg: Path, outside: Path) -> str:
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", "nbd://127.0.0.1:9/x", "-F", "raw",
             str(pkg / "disk.qcow2"), "1M")
    return "disk.qcow2"


def qcow2_backing_symlink(pkg: Path, outside: Path) -> str:
    (pkg / "base.raw").symlink_to(outside / "secret.raw")
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", "base.raw", str(pkg / "disk.qcow2"), "1M")
    return "disk.qcow2"


def qcow2_data_file(pkg: Path, outside: Path) -> str:
    data = outside / "data.raw"
    qemu_img("create", "-q", "-f", "qcow2", "-o", f"data_file={data},data_file_raw=on", str(pkg / "disk.qcow2"), "1M")
    data.write_bytes((outside / "secret.raw").read_bytes())
    return "disk.qcow2"


def qcow2_l1_past_eof(pkg: Path, outside: Path) -> str:
    _data_image(pkg / "disk.qcow2", "qcow2")
    _patch(pkg / "disk.qcow2", 40, ">Q", 1 << 40)
    return "disk.qcow2"


def qcow2_l2_past_eof(pkg: Path, outside: Path) -> str:
    _data_image(pkg / "disk.qcow2", "qcow2")
    l1 = struct.unpack_from(">Q", (pkg / "disk.qcow2").read_bytes(), 40)[0]
    _patch(pkg / "disk.qcow2", l1, ">Q", (1 << 63) | (1 << 40))
    return "disk.qcow2"


# -- VMDK ---------------------------------------------------------------------------------------------

def _descriptor(pkg: Path, extent: str, kind: str = "FLAT") -> str:
    (pkg / "disk.vmdk").write_text(
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"
        f"# Extent description\nRW 2048 {kind} \"{extent}\" 0\n\n"
        "# The Disk Data Base\nddb.virtualHWVersion = \"4\"\nddb.adapterType = \"lsilogic\"\n")
    return "disk.vmdk"


def vmdk_extent_dotdot(pkg: Path, outside: Path) -> str:
    return _descriptor(pkg, os.path.relpath(outside / "secret.raw", pkg))


def vmdk_extent_absolute(pkg: Path, outside: Path) -> str:
    return _descriptor(pkg, str(outside / "secret.raw"))


def vmdk_extent_symlink(pkg: Path, outside: Path) -> str:
    (pkg / "disk-flat.vmdk").symlink_to(outside / "secret.raw")
    return _descriptor(pkg, "disk-flat.vmdk")


def vmdk_extent_fifo(pkg: Path, outside: Path) -> str:
    os.mkfifo(pkg / "disk-flat.vmdk")
    return _descriptor(pkg, "disk-flat.vmdk")


def vmdk_extent_device(pkg: Path, outside: Path) -> str:
    return _descriptor(pkg, "disk-flat.vmdk", "VMFSRDM")


def vmdk_sparse_gd_past_eof(pkg: Path, outside: Path) -> str:
    _data_image(pkg / "disk.vmdk", "vmdk", "-o", "subformat=monolithicSparse")
    _patch(pkg / "disk.vmdk", 56, "<Q", 1 << 30)
    return "disk.vmdk"


def vmdk_sparse_gt_past_eof(pkg: Path, outside: Path) -> str:
    _data_image(pkg / "disk.vmdk", "vmdk", "-o", "subformat=monolithicSparse")
    gd = struct.unpack_from("<Q", (pkg / "disk.vmdk").read_bytes(), 56)[0]
    _patch(pkg / "disk.vmdk", gd * 512, "<I", 0x7FFFFFF0)
    return "disk.vmdk"


def vmdk_sparse_parent_hint(pkg: Path, outside: Path) -> str:
    _data_image(pkg / "disk.vmdk", "vmdk", "-o", "subformat=monolithicSparse")
    data = bytearray((pkg / "disk.vmdk").read_bytes())
    end = data.index(b"\0", 512)
    hint = f'parentFileNameHint="{outside / "secret.raw"}"\n'.encode()
    data[end:end + len(hint)] = hint
    (pkg / "disk.vmdk").write_bytes(data)
    return "disk.vmdk"


def _stream(pkg: Path) -> bytearray:
    from vmferry.disks.convert import convert_disk, open_disk

    raw = pkg / "s.src.raw"
    raw.write_bytes(os.urandom(256 << 10) + bytes(MIB - (256 << 10)))
    convert_disk(open_disk(raw), pkg / "disk.vmdk", "vmdk-stream")
    raw.unlink()
    return bytearray((pkg / "disk.vmdk").read_bytes())


def _footer_gd(data: bytearray) -> int:
    return struct.unpack_from("<Q", data, len(data) - 1024 + 56)[0]


def vmdk_stream_bad_grain_marker(pkg: Path, outside: Path) -> str:
    """The first grain marker claims another LBA than the grain table entry pointing at it."""
    data = _stream(pkg)
    overhead = struct.unpack_from("<Q", data, 64)[0]
    struct.pack_into("<Q", data, overhead * 512, 1024)       # LBA of another (real, in-disk) grain
    (pkg / "disk.vmdk").write_bytes(data)
    return "disk.vmdk"


def vmdk_stream_gt_past_eof(pkg: Path, outside: Path) -> str:
    data = _stream(pkg)
    gt = struct.unpack_from("<I", data, _footer_gd(data) * 512)[0]
    struct.pack_into("<I", data, gt * 512, 0x7FFFFFF0)
    (pkg / "disk.vmdk").write_bytes(data)
    return "disk.vmdk"


def vmdk_stream_garbage_marker(pkg: Path, outside: Path) -> str:
    """A marker in the middle of the stream is garbage: streaming readers (ESXi) would stop there."""
    data = _stream(pkg)
    overhead = struct.unpack_from("<Q", data, 64)[0]
    first = overhead * 512
    size = struct.unpack_from("<I", data, first + 8)[0]
    second = first + 12 + size + (-(12 + size) % 512)
    struct.pack_into("<QII", data, second, 7, 0, 9)          # metadata marker of unknown type 9
    (pkg / "disk.vmdk").write_bytes(data)
    return "disk.vmdk"


# -- VHD, VHDX, VDI -----------------------------------------------------------------------------------

def vhd_differencing(pkg: Path, outside: Path) -> str:
    _data_image(pkg / "disk.vhd", "vpc")
    size = (pkg / "disk.vhd").stat().st_size
    for at in (0, size - 512):
        _patch(pkg / "disk.vhd", at + 60, ">I", 4)
    return "disk.vhd"


def vhd_parent_locator(pkg: Path, outside: Path) -> str:
    """A dynamic VHD whose header carries a parent locator (platform code W2ku) and parent name."""
    _data_image(pkg / "disk.vhd", "vpc")
    head = struct.unpack_from(">Q", (pkg / "disk.vhd").read_bytes(), 16)[0]
    _patch(pkg / "disk.vhd", head + 576, ">IIIIQ", 0x57326B75, 512, 40, 0, 0)
    name = str(outside / "secret.raw").encode("utf-16-be")
    data = bytearray((pkg / "disk.vhd").read_bytes())
    data[head + 64:head + 64 + len(name)] = name
    (pkg / "disk.vhd").write_bytes(data)
    return "disk.vhd"


def vhd_bat_past_eof(pkg: Path, outside: Path) -> str:
    _data_image(pkg / "disk.vhd", "vpc")
    data = (pkg / "disk.vhd").read_bytes()
    head = struct.unpack_from(">Q", data, 16)[0]
    table = struct.unpack_from(">Q", data, head + 16)[0]
    _patch(pkg / "disk.vhd", table, ">I", 0x7FFFFFF0)
    return "disk.vhd"


def vhdx_has_parent(pkg: Path, outside: Path) -> str:
    """A VHDX whose file parameters say HasParent (a differencing disk)."""
    _data_image(pkg / "disk.vhdx", "vhdx")
    data = bytearray((pkg / "disk.vhdx").read_bytes())
    meta_guid = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
    params_guid = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
    table = 192 << 10
    count = struct.unpack_from("<I", data, table + 8)[0]
    meta = next(struct.unpack_from("<Q", data, table + 32 + 32 * i)[0] for i in range(count)
                if data[table + 16 + 32 * i:table + 32 + 32 * i] == meta_guid)
    items = struct.unpack_from("<H", data, meta + 10)[0]
    for i in range(items):
        base = meta + 32 + 32 * i
        if data[base:base + 16] == params_guid:
            at = meta + struct.unpack_from("<I", data, base + 16)[0]
            flags = struct.unpack_from("<I", data, at + 4)[0]
            struct.pack_into("<I", data, at + 4, flags | 2)
    (pkg / "disk.vhdx").write_bytes(data)
    return "disk.vhdx"


def vdi_differencing(pkg: Path, outside: Path) -> str:
    _data_image(pkg / "disk.vdi", "vdi")
    _patch(pkg / "disk.vdi", 0x4C, "<I", 4)
    return "disk.vdi"


# name -> (builder, what the one error line must say)
CASES = {
    "qcow2-backing-absolute": (qcow2_backing_absolute, "backing file"),
    "qcow2-backing-dotdot": (qcow2_backing_dotdot, "backing file"),
    "qcow2-backing-json": (qcow2_backing_json, "json:"),
    "qcow2-backing-protocol": (qcow2_backing_protocol, "protocol"),
    "qcow2-backing-symlink": (qcow2_backing_symlink, "symbolic link"),
    "qcow2-data-file": (qcow2_data_file, "data file"),
    "qcow2-l1-past-eof": (qcow2_l1_past_eof, "L1"),
    "qcow2-l2-past-eof": (qcow2_l2_past_eof, "L2"),
    "vmdk-extent-dotdot": (vmdk_extent_dotdot, "outside the package"),
    "vmdk-extent-absolute": (vmdk_extent_absolute, "absolute"),
    "vmdk-extent-symlink": (vmdk_extent_symlink, "symbolic link"),
    "vmdk-extent-fifo": (vmdk_extent_fifo, "not a regular file"),
    "vmdk-extent-device": (vmdk_extent_device, "raw device"),
    "vmdk-sparse-gd-past-eof": (vmdk_sparse_gd_past_eof, "grain directory"),
    "vmdk-sparse-gt-past-eof": (vmdk_sparse_gt_past_eof, "grain"),
    "vmdk-sparse-parent-hint": (vmdk_sparse_parent_hint, "parent"),
    "vmdk-stream-bad-grain-marker": (vmdk_stream_bad_grain_marker, "grain"),
    "vmdk-stream-gt-past-eof": (vmdk_stream_gt_past_eof, "grain"),
    "vmdk-stream-garbage-marker": (vmdk_stream_garbage_marker, "marker"),
    "vhd-differencing": (vhd_differencing, "differencing"),
    "vhd-parent-locator": (vhd_parent_locator, "parent"),
    "vhd-bat-past-eof": (vhd_bat_past_eof, "VHD block"),
    "vhdx-has-parent": (vhdx_has_parent, "parent"),
    "vdi-differencing": (vdi_differencing, "differencing"),
}


def vmdk_stream_corrupt_deflate(pkg: Path, outside: Path) -> str:
    """Structure intact, the deflate data of the first grain damaged: only inflating finds it."""
    data = _stream(pkg)
    first = struct.unpack_from("<Q", data, 64)[0] * 512
    size = struct.unpack_from("<I", data, first + 8)[0]
    for i in range(first + 12 + size // 2, first + 12 + size // 2 + 32):
        data[i] ^= 0xFF
    (pkg / "disk.vmdk").write_bytes(data)
    return "disk.vmdk"
