"""`convert` of whole packages: disks carried or converted, fresh SHA256 manifest, one-pass OVA,
nothing left behind on failure."""

from __future__ import annotations

import json

from tests.conftest import COT, run_vmferry
from tests.package.helpers import files_of, make_ova
from vmferry.disks.formats import detect
from vmferry.summary import summarize
from vmferry.validate import validate_package


def test_virtualbox_package_to_vmware_directory(tmp_path):
    out = tmp_path / "ubuntu-vmware"
    result = run_vmferry("convert", COT / "ubuntu.2.0.ovf", "--to", "vmware", "-o", out, "--json")
    assert result.returncode == 0, result.stderr
    report = validate_package(out)
    assert report.ok and report.files_checked == 2
    manifest = (out / "ubuntu.2.0.mf").read_text()
    assert manifest.startswith("SHA256(ubuntu.2.0.ovf)= ")
    assert summarize(out).systems[0].os.vendor_type == "ubuntu64Guest"


def test_vmware_package_to_xen_converts_the_disk_to_vhd(tmp_path):
    out = tmp_path / "xen"
    result = run_vmferry("convert", COT / "vmware.ovf", "--to", "xen", "-o", out, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (disk,) = [f for f in doc["files"] if f["href"].endswith(".vhd")]
    assert detect(out / disk["href"]).name.startswith("vhd")
    s = summarize(out)
    assert s.disks[0].capacity_bytes == 1 << 30 and s.disks[0].format == "vhd"
    assert validate_package(out).ok


def test_convert_from_ova_to_ova_in_one_pass(tmp_path):
    src = make_ova(tmp_path / "in.ova", files_of(COT, ["input.ovf", "input.mf", "input.vmdk", "input.iso",
                                                       "sample_cfg.txt"]))
    out = tmp_path / "out.ova"
    result = run_vmferry("convert", src, "--to", "vmware", "--ova", "-o", out)
    assert result.returncode == 0, result.stderr
    report = validate_package(out)
    assert report.ok and report.files_checked == 4
    from vmferry.package import open_package

    pkg = open_package(out)
    assert list(pkg.members)[0] == "input.ovf" and list(pkg.members)[-1] == "input.mf"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failed_conversion_leaves_nothing(tmp_path):
    (tmp_path / "pkg").mkdir()
    members = files_of(COT, ["vmware.ovf"])
    (tmp_path / "pkg" / "vmware.ovf").write_bytes(members[0][1])
    (tmp_path / "pkg" / "input.vmdk").write_bytes(b"KDMV" + b"\0" * 152572)  # a lying, broken disk
    result = run_vmferry("convert", tmp_path / "pkg" / "vmware.ovf", "--to", "xen", "-o", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]
