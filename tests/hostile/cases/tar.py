"""Tar: the OVA container. Checksums, headers, truncation, member names and types, sizes."""

from __future__ import annotations

import io
import tarfile

from tests.hostile.kit import BASE_OVF, BASE_VMDK, Work, base_members, sha256_manifest, tar_bytes, variants


def _good() -> bytes:
    return tar_bytes(base_members())


def _header_offsets(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos + 512 <= len(data) and data[pos:pos + 512].strip(b"\0"):
        out.append(pos)
        size = int(data[pos + 124:pos + 136].strip(b"\0 ") or b"0", 8)
        pos += 512 + (size + 511) // 512 * 512
    return out


def _patch(data: bytes, offset: int, new: bytes, fix_checksum: bool = True) -> bytes:
    buf = bytearray(data)
    buf[offset:offset + len(new)] = new
    if fix_checksum:
        hdr = (offset // 512) * 512
        block = buf[hdr:hdr + 512]
        block[148:156] = b" " * 8
        chk = sum(block)
        buf[hdr + 148:hdr + 156] = b"%06o\0 " % chk
    return bytes(buf)


def _nth_header(n: int) -> int:
    return _header_offsets(_good())[n]


def _raw(fn):
    return lambda w: w.ova_raw(fn())


def _members(members, **kw):
    return lambda w: w.ova(members, **kw)


def _tar_with(build, fmt=tarfile.GNU_FORMAT):
    def make(w: Work):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
            build(tar)
        return w.ova_raw(buf.getvalue())
    return make


def _add(tar, name, data=b"", **attrs):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    for k, v in attrs.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if data else None)


def _base_then(*extra):
    def build(tar):
        for name, data in base_members():
            _add(tar, name, data)
        for name, data, attrs in extra:
            _add(tar, name, data, **attrs)
    return build


def _first_then(*extra):
    """descriptor first, then the hostile member(s), then the rest."""
    def build(tar):
        members = base_members()
        _add(tar, *members[0])
        for name, data, attrs in extra:
            _add(tar, name, data, **attrs)
        for name, data in members[1:]:
            _add(tar, name, data)
    return build


def _declared_size(n: int, size: int) -> bytes:
    data = _good()
    return _patch(data, _header_offsets(data)[n] + 124, b"%011o\0" % size)


def _sparse_member() -> bytes:
    data = bytearray(_good())
    off = _header_offsets(bytes(data))[2]
    return _patch(bytes(data), off + 156, b"S")


GNU_LONG = "d/" * 200 + "input.vmdk"
variants("tar", "container", {
    "bad-checksum-first-header": _raw(lambda: _patch(_good(), 148, b"0000000\0", fix_checksum=False)),
    "bad-checksum-second-header": _raw(lambda: _patch(_good(), _nth_header(1) + 148, b"1234567\0",
                                                      fix_checksum=False)),
    "corrupted-header-after-first-member": _raw(lambda: _patch(_good(), _nth_header(1), b"\xff" * 100,
                                                               fix_checksum=False)),
    "garbage-after-last-member": _raw(lambda: _good()[:_nth_header(2) + 512 + len(BASE_VMDK)] + b"\x7fGARBAGE" * 200),
    "truncated-in-disk": _raw(lambda: _good()[: _nth_header(2) + 512 + len(BASE_VMDK) // 2]),
    "truncated-in-header": _raw(lambda: _good()[: _nth_header(2) + 100]),
    "truncated-after-descriptor": _raw(lambda: _good()[: _nth_header(1)]),
    "truncated-to-one-block": _raw(lambda: _good()[:512]),
    "empty-file": _raw(lambda: b""),
    "zero-blocks-only": _raw(lambda: b"\0" * 10240),
    "random-bytes": _raw(lambda: bytes(range(256)) * 40),
    "gzip-compressed-tar": _raw(lambda: __import__("gzip").compress(_good())),
    "gigantic-declared-size": _raw(lambda: _declared_size(2, 0o77777777777)),
    "size-field-not-octal": _raw(lambda: _patch(_good(), _nth_header(2) + 124, b"9x9x9x9x9x9\0")),
    "base256-negative-size": _raw(lambda: _patch(_good(), _nth_header(2) + 124, b"\xff" * 12)),
    "base256-huge-size": _raw(lambda: _patch(_good(), _nth_header(2) + 124, b"\x80" + b"\xff" * 11)),
    "descriptor-size-past-end": _raw(lambda: _declared_size(0, 10 << 20)),
    "sparse-member": _raw(_sparse_member),
    "symlink-member-to-host": lambda w: w.ova_raw(_tar_bytes(_first_then(
        ("input.vmdk", b"", {"type": tarfile.SYMTYPE, "linkname": str(w.host_file)}))), host=True),
    "hardlink-member": _tar_with(_first_then(("input.vmdk", b"", {"type": tarfile.LNKTYPE, "linkname": "vm.ovf"}))),
    "hardlink-to-absolute": _tar_with(_base_then(("extra", b"", {"type": tarfile.LNKTYPE, "linkname": "/etc/passwd"}))),
    "char-device-member": _tar_with(_first_then(("input.vmdk", b"", {"type": tarfile.CHRTYPE, "devmajor": 1,
                                                                      "devminor": 5}))),
    "block-device-member": _tar_with(_base_then(("sda", b"", {"type": tarfile.BLKTYPE, "devmajor": 8}))),
    "fifo-member": _tar_with(_first_then(("input.vmdk", b"", {"type": tarfile.FIFOTYPE}))),
    "unknown-type-member": _tar_with(_base_then(("odd", b"x", {"type": b"Z"}))),
    "duplicate-disk-member": _tar_with(_base_then(("input.vmdk", b"\0" * 1024, {}))),
    "duplicate-descriptor": _tar_with(_base_then(("vm.ovf", BASE_OVF, {}))),
    "duplicate-via-dot-slash": _tar_with(_base_then(("./input.vmdk", b"\0" * 512, {}))),
    "duplicate-via-double-slash": _tar_with(_base_then(("sub//x", b"1", {}), ("sub/x", b"2", {}))),
    "member-newline-in-name": _tar_with(_base_then(("evil\nvmferry: error: fake second line", b"x", {}))),
    "member-carriage-return": _tar_with(_base_then(("evil\rname", b"x", {}))),
    "member-escape-sequence": _tar_with(_base_then(("evil\x1b[2Jname", b"x", {}))),
    "member-long-name-5000": _tar_with(_base_then(("n" * 5000, b"x", {}))),
    "member-deep-long-path": _tar_with(_base_then((GNU_LONG * 3, b"x", {}))),
    "member-absolute": _tar_with(_base_then(("/tmp/vmferry-evil", b"x", {}))),
    "member-dotdot": _tar_with(_base_then(("../vmferry-evil", b"x", {}))),
    "member-dotdot-inside": _tar_with(_base_then(("a/../../vmferry-evil", b"x", {}))),
    "member-backslash": _tar_with(_base_then(("..\\..\\evil", b"x", {}))),
    "member-drive-letter": _tar_with(_base_then(("C:evil", b"x", {}))),
    "members-20000": _tar_with(_base_then(*[(f"f{i}", b"", {}) for i in range(20_000)])),
    "pax-header-huge-record": _tar_with(_base_then(("p", b"x", {"pax_headers": {"comment": "c" * 2_000_000}})),
                                        fmt=tarfile.PAX_FORMAT),
    "pax-bogus-size": _tar_with(_base_then(("p", b"x", {"pax_headers": {"size": "-5"}})), fmt=tarfile.PAX_FORMAT),
    "no-descriptor": _members([("input.vmdk", BASE_VMDK), ("vm.mf", sha256_manifest({"input.vmdk": BASE_VMDK}))]),
})


def _tar_bytes(build, fmt=tarfile.GNU_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        build(tar)
    return buf.getvalue()


# a directory entry where the disk should be: the archive itself is fine, the package is not
variants("tar", "content", {
    "directory-named-like-disk": _tar_with(lambda tar: (_add(tar, "vm.ovf", BASE_OVF),
                                                         _add(tar, "input.vmdk", b"", type=tarfile.DIRTYPE))),
})
