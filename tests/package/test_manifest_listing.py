"""The manifest against the archive's members: a member the manifest does not list is a warning (the
package still validates), a line naming a file the package lacks stops every command (exit 2) and the
one-line error names the rule."""

from __future__ import annotations

import json

from tests.conftest import COT, run_vmferry
from tests.package.helpers import files_of, make_ova

NAMES = ["input.ovf", "input.mf", "input.vmdk", "input.iso", "sample_cfg.txt"]


def test_a_member_the_manifest_does_not_list_is_a_warning(tmp_path):
    ova = make_ova(tmp_path / "extra.ova", files_of(COT, NAMES) + [("notes.txt", b"not in the manifest\n")])
    result = run_vmferry("validate", ova, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    unlisted = [f for f in doc["findings"] if f["rule"] == "VMF-PKG-014"]
    assert len(unlisted) == 1 and "'notes.txt'" in unlisted[0]["message"]
    assert unlisted[0]["severity"] == "warning"


def test_a_manifest_line_for_an_absent_file_stops_with_the_rule_named(tmp_path):
    files = dict(files_of(COT, NAMES))
    files["input.mf"] += b"SHA1(absent.img)= " + b"0" * 40 + b"\n"
    ova = make_ova(tmp_path / "absent.ova", list(files.items()))
    result = run_vmferry("validate", ova)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "'absent.img', which is not in the package" in result.stderr
    assert result.stderr.rstrip().endswith("(VMF-PKG-012)")
