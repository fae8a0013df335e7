"""Disk images and their headers: backing and data files naming host files, ``json:`` and protocol
names, VMDK extents outside the package, broken grain directories and tables, lying capacities,
gzip bombs. Each is tried alone (disk commands, guest) and inside a package."""

from __future__ import annotations

import struct
import subprocess
import zlib

from tests.hostile.kit import BASE_OVF, BASE_VMDK, Built, Work, base_members, variants

QCOW2_FORMAT = b"http://www.gnome.org/~markmc/qcow-image-format.html"
VMDK_STREAM = b"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"


def _qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def _qcow2(w: Work, *opts: str, size: str = "1M") -> bytes:
    path = w.root / "build.qcow2"
    _qemu_img("create", "-q", "-f", "qcow2", *opts, str(path), size)
    data = path.read_bytes()
    path.unlink()
    return data


def _backing(spec_of, fmt: str = "raw"):
    return lambda w: _qcow2(w, "-u", "-b", spec_of(w), "-F", fmt)


def _data_file(w: Work) -> bytes:
    other = w.root / "host" / "data.raw"
    data = _qcow2(w, "-o", f"data_file={other},data_file_raw=on")
    other.write_bytes(w.host_file.read_bytes())
    return data


def _vmdk_text(extent_of):
    def make(w: Work) -> bytes:
        return (b"# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n"
                b"\n# Extent description\n" + extent_of(w).encode() + b"\n\n# The Disk Data Base\n#DDB\n"
                b'ddb.virtualHWVersion = "4"\nddb.adapterType = "lsilogic"\n')
    return make


def _vmdk_sparse(w: Work) -> bytearray:
    path = w.root / "build.vmdk"
    _qemu_img("create", "-q", "-f", "vmdk", str(path), "1M")
    data = bytearray(path.read_bytes())
    path.unlink()
    return data


def _sparse_patch(offset: int, fmt: str, value: int):
    def make(w: Work) -> bytes:
        data = _vmdk_sparse(w)
        struct.pack_into(fmt, data, offset, value)
        return bytes(data)
    return make


def _stream_patch(fn):
    def make(w: Work) -> bytes:
        data = bytearray(BASE_VMDK)
        fn(data)
        return bytes(data)
    return make


def _footer_gd(data: bytearray) -> None:
    struct.pack_into("<Q", data, len(data) - 1024 + 56, 1)  # grain directory "at" the descriptor sector


def _footer_gd_past_end(data: bytearray) -> None:
    struct.pack_into("<Q", data, len(data) - 1024 + 56, 1 << 40)


def _stream_capacity(data: bytearray) -> None:
    struct.pack_into("<Q", data, 12, 1 << 50)
    struct.pack_into("<Q", data, len(data) - 1024 + 12, 1 << 50)


def _first_grain_size(data: bytearray) -> None:
    # the first grain marker after the header/descriptor: lba (8) + compressed size (4)
    overhead = struct.unpack_from("<Q", data, 64)[0] * 512
    struct.pack_into("<I", data, overhead + 8, 0x7FFFFFFF)


def _gd_entries_wild(data: bytearray) -> None:
    gd = struct.unpack_from("<Q", data, len(data) - 1024 + 56)[0] * 512
    for i in range(0, 64, 4):
        struct.pack_into("<I", data, gd + i, 0x7FFFFFF0)


def _qcow2_patch(fn):
    def make(w: Work) -> bytes:
        data = bytearray(_qcow2(w))
        fn(data)
        return bytes(data)
    return make


def _qcow2_size(data: bytearray) -> None:
    struct.pack_into(">Q", data, 24, 1 << 62)


def _qcow2_l1_offset(data: bytearray) -> None:
    struct.pack_into(">Q", data, 40, 1 << 50)


def _qcow2_l1_size(data: bytearray) -> None:
    struct.pack_into(">I", data, 36, 0x7FFFFFFF)


def _qcow2_backing_offset(data: bytearray) -> None:
    struct.pack_into(">Q", data, 8, 1 << 40)
    struct.pack_into(">I", data, 16, 1000)


def _gzip_bomb(w: Work) -> Built:
    """1 MiB declared capacity; the gzip stream inflates to 200 MiB."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    gz = b"".join(comp.compress(chunk) for _ in range(200)) + comp.flush()
    ovf = Work.sub(BASE_OVF, b'ovf:href="input.vmdk" ovf:id="file1" ovf:size="152576"',
                   f'ovf:href="input.vmdk" ovf:id="file1" ovf:size="{len(gz)}" ovf:compression="gzip"'.encode())
    ovf = Work.sub(ovf, b'ovf:capacityAllocationUnits="byte * 2^30"', b'ovf:capacityAllocationUnits="byte * 2^20"')
    return w.ova(base_members(ovf, gz))


def _gzip_corrupt(w: Work) -> Built:
    gz = zlib.compress(BASE_VMDK)[:-40] + b"\0" * 40
    ovf = Work.sub(BASE_OVF, b'ovf:size="152576"', f'ovf:size="{len(gz)}" ovf:compression="gzip"'.encode())
    return w.folder(ovf, files={"input.vmdk": gz})


# (image bytes builder, whether it points at the host file)
IMAGES = {
    "qcow2-backing-host-file": (_backing(lambda w: str(w.host_file)), True),
    "qcow2-backing-relative-dotdot": (_backing(lambda w: "../host/secret.txt"), True),
    "qcow2-backing-json": (_backing(lambda w: f'json:{{"driver":"raw","file":{{"driver":"file","filename":"{w.host_file}"}}}}'), True),
    "qcow2-backing-json-file-filename": (_backing(lambda w: f'json:{{"file.filename":"{w.host_file}"}}'), True),
    "qcow2-backing-nbd": (_backing(lambda w: "nbd://127.0.0.1:9/x"), False),
    "qcow2-backing-http": (_backing(lambda w: "http://127.0.0.1:9/x.img"), False),
    "qcow2-backing-dev-zero": (_backing(lambda w: "/dev/zero"), False),
    "qcow2-backing-qcow2-host": (_backing(lambda w: str(w.host_file), "qcow2"), True),
    "qcow2-external-data-file": (_data_file, True),
    "qcow2-huge-size": (_qcow2_patch(_qcow2_size), False),
    "qcow2-l1-offset-past-end": (_qcow2_patch(_qcow2_l1_offset), False),
    "qcow2-l1-size-huge": (_qcow2_patch(_qcow2_l1_size), False),
    "qcow2-backing-name-past-end": (_qcow2_patch(_qcow2_backing_offset), False),
    "vmdk-extent-dotdot": (_vmdk_text(lambda w: 'RW 2048 FLAT "../host/secret.txt" 0'), True),
    "vmdk-extent-absolute": (_vmdk_text(lambda w: f'RW 2048 FLAT "{w.host_file}" 0'), True),
    "vmdk-extent-dev-zero": (_vmdk_text(lambda w: 'RW 2048 FLAT "/dev/zero" 0'), False),
    "vmdk-extent-json": (_vmdk_text(lambda w: f'RW 2048 FLAT "json:{{\\"file.filename\\":\\"{w.host_file}\\"}}" 0'), True),
    "vmdk-many-extents": (_vmdk_text(lambda w: "\n".join(f'RW 1 FLAT "e{i}.raw" 0' for i in range(20_000))), False),
    "vmdk-parent-hint-host": (lambda w: _vmdk_text(lambda w2: 'RW 2048 SPARSE "self.vmdk"')(w).replace(
        b'parentCID=ffffffff', f'parentCID=12345678\nparentFileNameHint="{w.host_file}"'.encode()), True),
    "vmdk-sparse-gd-past-end": (_sparse_patch(56, "<Q", 1 << 40), False),
    "vmdk-sparse-capacity-huge": (_sparse_patch(12, "<Q", 1 << 55), False),
    "vmdk-sparse-grain-size-zero": (_sparse_patch(20, "<Q", 0), False),
    "vmdk-sparse-gtes-huge": (_sparse_patch(44, "<I", 0x7FFFFFFF), False),
    "vmdk-stream-gd-on-descriptor": (_stream_patch(_footer_gd), False),
    "vmdk-stream-gd-past-end": (_stream_patch(_footer_gd_past_end), False),
    "vmdk-stream-lying-capacity": (_stream_patch(_stream_capacity), False),
    "vmdk-stream-grain-size-lie": (_stream_patch(_first_grain_size), False),
    "vmdk-stream-wild-grain-tables": (_stream_patch(_gd_entries_wild), False),
    "vmdk-stream-truncated": (lambda w: BASE_VMDK[:60_000], False),
}


def _alone(make, host):
    return lambda w: w.disk(make(w), "disk.img", host=host)


def _in_ova(make, host):
    """The image as input.vmdk of the VMware sample OVA, with a matching manifest."""
    return lambda w: w.ova(base_members(BASE_OVF, _sized(make(w))), host=host)


def _sized(data: bytes) -> bytes:
    return data


def _in_folder(make, host):
    def build(w: Work) -> Built:
        data = make(w)
        ovf = Work.sub(BASE_OVF, b'ovf:size="152576"', f'ovf:size="{len(data)}"'.encode())
        return w.folder(ovf, files={"input.vmdk": data}, host=host)
    return build


ALONE = {f"{k}-alone": _alone(make, host) for k, (make, host) in IMAGES.items()}
PACKAGED = {}
for i, (k, (make, host)) in enumerate(IMAGES.items()):
    # every image inside a package too, alternating the container
    PACKAGED[f"{k}-{'ova' if i % 2 else 'folder'}"] = (_in_ova if i % 2 else _in_folder)(make, host)
PACKAGED["gzip-bomb-ova"] = _gzip_bomb
PACKAGED["gzip-corrupt-folder"] = _gzip_corrupt

variants("disks", "disk", ALONE)
variants("disks", "image", {k: v for k, v in PACKAGED.items() if not k.startswith("gzip")})
variants("disks", "content", {k: v for k, v in PACKAGED.items() if k.startswith("gzip")})
