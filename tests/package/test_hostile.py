"""Hostile and broken input: one line naming the file and the problem, exit 2, no traceback, nothing
written. Every case builds a real malicious file."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tests.conftest import COT, run_vmferry
from tests.package.helpers import files_of, make_ova

INPUT = ["input.ovf", "input.mf", "input.vmdk", "input.iso", "sample_cfg.txt"]
GOOD_OVF = (COT / "vmware.ovf").read_bytes()

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References/>&xxe;</Envelope>"""
XXE_PARAM = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"/>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><Info>&lol3;</Info></Envelope>"""


def _tar_with(tmp: Path, name: str, build) -> Path:
    out = tmp / name
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        build(tar)
    return out


def _add(tar, name, data=b"", **attrs):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if data else None)


def case_xxe(tmp):
    (tmp / "x.ovf").write_bytes(XXE)
    return tmp / "x.ovf", "DTD"


def case_xxe_parameter_entity(tmp):
    (tmp / "x.ovf").write_bytes(XXE_PARAM)
    return tmp / "x.ovf", "DTD"


def case_billion_laughs(tmp):
    (tmp / "x.ovf").write_bytes(LAUGHS)
    return tmp / "x.ovf", "DTD"


def case_malformed_xml(tmp):
    (tmp / "x.ovf").write_bytes(GOOD_OVF[:3000])
    return tmp / "x.ovf", "not well-formed"


def case_not_ovf_xml(tmp):
    (tmp / "x.ovf").write_bytes(b"<html><body>hello</body></html>")
    return tmp / "x.ovf", "not an OVF descriptor"


def case_binary_garbage(tmp):
    (tmp / "x.ova").write_bytes(os.urandom(4096))
    return tmp / "x.ova", "not a tar"


def case_empty_file(tmp):
    (tmp / "x.ova").write_bytes(b"")
    return tmp / "x.ova", "x.ova"


def case_absolute_path(tmp):
    return _tar_with(tmp, "x.ova", lambda t: (_add(t, "vm.ovf", GOOD_OVF), _add(t, "/etc/evil", b"x"))), "absolute"


def case_dotdot(tmp):
    return _tar_with(tmp, "x.ova", lambda t: (_add(t, "vm.ovf", GOOD_OVF), _add(t, "../evil", b"x"))), "'..'"


def case_dotdot_inside(tmp):
    return _tar_with(tmp, "x.ova", lambda t: (_add(t, "vm.ovf", GOOD_OVF),
                                               _add(t, "a/../../evil", b"x"))), "'..'"


def case_symlink(tmp):
    return _tar_with(tmp, "x.ova", lambda t: (_add(t, "vm.ovf", GOOD_OVF),
                                               _add(t, "input.vmdk", type=tarfile.SYMTYPE,
                                                    linkname="/etc/shadow"))), "link"


def case_hardlink(tmp):
    return _tar_with(tmp, "x.ova", lambda t: (_add(t, "vm.ovf", GOOD_OVF),
                                               _add(t, "input.vmdk", type=tarfile.LNKTYPE,
                                                    linkname="vm.ovf"))), "link"


def case_char_device(tmp):
    return _tar_with(tmp, "x.ova", lambda t: (_add(t, "vm.ovf", GOOD_OVF),
                                               _add(t, "input.vmdk", type=tarfile.CHRTYPE,
                                                    devmajor=1, devminor=3))), "device"


def case_block_device(tmp):
    return _tar_with(tmp, "x.ova", lambda t: (_add(t, "vm.ovf", GOOD_OVF),
                                               _add(t, "input.vmdk", type=tarfile.BLKTYPE,
                                                    devmajor=8, devminor=0))), "device"


def case_fifo(tmp):
    return _tar_with(tmp, "x.ova", lambda t: (_add(t, "vm.ovf", GOOD_OVF),
                                               _add(t, "input.vmdk", type=tarfile.FIFOTYPE))), "FIFO"


def case_duplicate_member(tmp):
    return _tar_with(tmp, "x.ova", lambda t: (_add(t, "vm.ovf", GOOD_OVF), _add(t, "vm.ovf", GOOD_OVF))), "twice"


def case_truncated(tmp):
    full = make_ova(tmp / "full.tar", files_of(COT, INPUT)).read_bytes()
    (tmp / "full.tar").unlink()
    (tmp / "x.ova").write_bytes(full[: len(full) // 2])
    return tmp / "x.ova", "truncated"


def case_no_descriptor(tmp):
    return make_ova(tmp / "x.ova", files_of(COT, ["input.vmdk", "input.iso"])), "no .ovf descriptor"


def case_digest_mismatch(tmp):
    members = files_of(COT, INPUT)
    members[3] = ("input.iso", members[3][1][:-1] + b"\x01")
    return make_ova(tmp / "x.ova", members), "input.iso"


def case_member_larger_than_declared(tmp):
    members = files_of(COT, ["vmware.ovf", "input.vmdk"])
    members[1] = ("input.vmdk", members[1][1] + b"\0" * 512)
    return make_ova(tmp / "x.ova", members), "declares ovf:size=152576"


def case_member_smaller_than_declared(tmp):
    members = files_of(COT, ["vmware.ovf", "input.vmdk"])
    members[1] = ("input.vmdk", members[1][1][:1024])
    return make_ova(tmp / "x.ova", members), "declares ovf:size"


def case_href_traversal_in_directory(tmp):
    (tmp / "vm.ovf").write_bytes(GOOD_OVF.replace(b'ovf:href="input.vmdk"', b'ovf:href="../../etc/passwd"'))
    return tmp / "vm.ovf", "outside the package"


def case_href_absolute_in_ova(tmp):
    ovf = GOOD_OVF.replace(b'ovf:href="input.vmdk"', b'ovf:href="/etc/passwd"')
    return make_ova(tmp / "x.ova", [("vm.ovf", ovf)]), "outside the package"


def case_manifest_names_traversal(tmp):
    ovf = (COT / "minimal.ovf").read_bytes()
    mf = b"SHA256(../../etc/passwd)= " + b"0" * 64 + b"\n"
    return make_ova(tmp / "x.ova", [("vm.ovf", ovf), ("vm.mf", mf)]), None  # validate only, see below


def case_too_many_members(tmp):
    def build(t):
        _add(t, "vm.ovf", GOOD_OVF)
        for i in range(10_001):
            _add(t, f"f{i}")
    return _tar_with(tmp, "x.ova", build), "tar bomb"


def case_directory_without_descriptor(tmp):
    (tmp / "pkg").mkdir()
    return tmp / "pkg", "0 .ovf descriptors"


def case_missing_path(tmp):
    return tmp / "nope.ova", "no such file"


def case_invalid_utf8(tmp):
    (tmp / "x.ovf").write_bytes(b'<?xml version="1.0" encoding="UTF-8"?><Envelope xmlns="http://schemas.dmtf.org/'
                                b'ovf/envelope/1">\xff\xfe</Envelope>')
    return tmp / "x.ovf", "not well-formed"


CASES = [v for k, v in sorted(globals().items()) if k.startswith("case_") and k != "case_manifest_names_traversal"]


@pytest.mark.parametrize("command", ["validate", "inspect"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__[5:])
def test_hostile_input_is_one_line_exit_2_nothing_written(tmp_path, case, command):
    work = tmp_path / "in"
    work.mkdir()
    target, needle = case(work)
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()
    before = sorted(p.name for p in work.iterdir())
    result = run_vmferry(command, target, cwd=run_dir)
    if command == "inspect" and case.__name__ in ("case_digest_mismatch", "case_member_larger_than_declared",
                                                  "case_member_smaller_than_declared",
                                                  "case_href_traversal_in_directory",
                                                  "case_href_absolute_in_ova"):
        # inspect reads the descriptor only; integrity is validate's job, and it must not crash
        assert result.returncode in (0, 1), result.stderr
        return
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("vmferry: error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert target.name in result.stderr
    assert needle in result.stderr
    assert list(run_dir.iterdir()) == []
    assert sorted(p.name for p in work.iterdir()) == before


def test_manifest_entry_outside_package_is_refused_not_opened(tmp_path):
    target, _ = case_manifest_names_traversal(tmp_path)
    result = run_vmferry("validate", target)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "x.ova:vm.mf" in result.stderr
    assert "'../../etc/passwd', which is not in the package" in result.stderr


def test_at_least_twenty_hostile_cases():
    assert len(CASES) >= 20
