"""The targets table is the one place target facts are written: every reader agrees with it, and no
second copy of them exists in the source."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest
from lxml import etree

from vmferry.cli.main import build_parser
from vmferry.conversion import convert_package
from vmferry.errors import UsageError
from vmferry.guest import drivers
from vmferry.guest.readiness import TARGETS as READINESS
from vmferry.tables import controllers, families, nics
from vmferry.tables.targets import ROWS, TARGETS, converters, doc_row, names, readiness_targets, target
from vmferry.targets import kvm

SRC = Path(__file__).resolve().parents[2] / "src" / "vmferry"
DOC = Path(__file__).resolve().parents[2] / "docs" / "tables.md"
DATA = Path(__file__).resolve().parents[1] / "data"


def _choices(command: str, option: str) -> tuple:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return tuple(next(a for a in sub._actions if option in a.option_strings).choices)


def test_cli_choices_are_the_table():
    assert _choices("convert", "--to") == converters() == tuple(t.name for t in ROWS if t.output)
    assert _choices("check", "--target") == converters()
    assert _choices("convert", "--nic-model") == ("auto", *(m.value for m in target("kvm").nics))
    assert _choices("convert", "--disk-bus") == ("auto", *(kvm.LIBVIRT_BUS[b] for b in target("kvm").boot_buses))


def test_readiness_targets_are_the_table():
    assert tuple(READINESS) == readiness_targets() == tuple(t.name for t in ROWS if t.boot_buses)
    for name, spec in READINESS.items():
        row = TARGETS[name]
        assert (spec.bus, spec.nic, spec.buses, spec.nics) == (row.boot_buses[0], row.guest_nics[0],
                                                               row.boot_buses, row.guest_nics)
        assert (spec.agent, spec.datasources) == (row.agent, row.datasources)


def test_views_of_the_table():
    assert nics.TARGETS == controllers.TARGETS == names()
    assert nics.TARGET_MODELS == tuple(m for t in ROWS for m in t.nics)
    assert controllers.TARGET_CONTROLLERS == tuple(c for t in ROWS for c in t.controllers)
    assert families.DEFAULTS == {t.name: t.default_family for t in ROWS if t.default_family}
    for row in ROWS:
        assert all(x.target == row.name for x in (*row.nics, *row.nic_fallbacks, *row.controllers,
                                                   *row.controller_fallbacks))
        if row.default_family:
            assert families.family(row.default_family).target == row.name
            assert any(row.default_family.startswith(p) for p in row.accepts_family)


# guest bus -> the storage controller an OVF target must have for it; virtio/xen/hyperv are not controllers
BUS_CONTROLLER = {"virtio-scsi": ("scsi", "virtio-scsi"), "sata": ("sata", "ahci"), "ide": ("ide", None),
                  "lsilogic": ("scsi", "lsilogic"), "lsisas1068": ("scsi", "lsisas1068"), "pvscsi": ("scsi", "pvscsi")}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_readiness_and_device_facts_of_a_row_agree(row):
    assert set(row.boot_buses) <= set(drivers.BUSES) and set(row.guest_nics) <= set(drivers.NIC_MODELS)
    offered = {m.model for m in row.nics}
    assert {n for n in row.guest_nics if n in nics.MODELS} <= offered, "judged with a NIC it cannot write"
    for bus in row.boot_buses:
        if bus in BUS_CONTROLLER:
            kind, model = BUS_CONTROLLER[bus]
            assert controllers.native(row.name, kind, model) is not None, f"{row.name} judged on {bus}"
    assert row.disk_formats and (row.ovf is None) == (row.output != "ovf")
    assert set(row.refuses_controllers) <= set(controllers.KINDS)


def test_kvm_orders_are_the_briefed_preferences():
    kvm_row = target("kvm")
    assert [b for b in kvm_row.boot_buses if b in ("virtio", "sata", "ide")] == ["virtio", "sata", "ide"]
    assert kvm_row.guest_nics == ("virtio", "e1000e", "e1000", "rtl8139") and kvm_row.follows_guest
    assert set(kvm.LIBVIRT_BUS) == set(kvm_row.boot_buses)


def test_unknown_target_is_a_usage_error():
    with pytest.raises(UsageError, match="one of dmtf, vmware"):
        target("bhyve")


def test_docs_document_every_row():
    lines = {line.strip() for line in DOC.read_text(encoding="utf-8").splitlines()}
    documented = {line for line in lines if line.startswith("| `") and line.split("|")[1].strip().strip("`")
                  in TARGETS and line.count("|") == 13}
    assert documented == {doc_row(r) for r in ROWS}


def test_disk_format_defaults_of_disks_agree():
    """vmferry.disks.formats keeps its own TARGET_DEFAULTS (disk commands, aliases such as azure); it must
    not disagree with the table for the table's targets."""
    from vmferry.disks.formats import default_format

    for row in ROWS:
        assert default_format(row.name).name == row.disk_formats[0], row.name


TARGET_NAMES = set(TARGETS)


def _literal_copies(path: Path) -> list[str]:
    """Collections (tuple/list/set/dict keys) in a module that spell three or more target names: a
    second copy of the table's list of targets."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        elts = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(
            node, ast.Tuple | ast.List | ast.Set) else []
        spelled = {e.value for e in elts if isinstance(e, ast.Constant) and e.value in TARGET_NAMES}
        if len(spelled) >= 3:
            out.append(f"{path.relative_to(SRC)}:{node.lineno}: {sorted(spelled)}")
    return out


# Known copies outside this work area, each with the line that holds it; a new one fails the test.
# disks/formats.py TARGET_DEFAULTS: checked for agreement above. The guest repair modules key their own
# tables by hypervisor (drivers an initramfs needs per hypervisor, vendor units, dialect -> hypervisor);
# HYPERVISOR_DRIVERS and HYPERVISORS should be derived from the rows' boot_buses/guest_nics and
# readiness_targets() (vmferry.guest.drivers gives the drivers of each bus and NIC model).
KNOWN_COPIES = {"disks/formats.py": "TARGET_DEFAULTS", "guest/bootrepair.py": "HYPERVISOR_DRIVERS",
                "guest/repair.py": "HYPERVISORS", "guest/repaircopy.py": "DIALECTS",
                "guest/unitrepair.py": "VENDOR_UNITS", "targets/kvm.py": "DIALECT_HYPERVISOR"}


def test_no_second_copy_of_the_targets_in_the_source():
    copies = [c for p in sorted(SRC.rglob("*.py")) if p != SRC / "tables" / "targets.py"
              for c in _literal_copies(p)]
    unexpected = []
    for c in copies:
        where, line = c.split(":")[:2]
        text = (SRC / where).read_text(encoding="utf-8").splitlines()
        name = KNOWN_COPIES.get(where)
        window = "\n".join(text[max(0, int(line) - 3):int(line)])
        if name is None or name not in window:
            unexpected.append(c)
    assert unexpected == []
    gone = ("STYLES", "MAX_NICS", "GUEST_TARGETS", "OVF_TARGETS", "BUS_ORDER", "NIC_ORDER")
    for p in SRC.rglob("*.py"):
        text = p.read_text(encoding="utf-8")
        assert not [g for g in gone if f"{g} =" in text or f"{g}:" in text], p
    assert not (SRC / "targets" / "styles.py").exists()


@pytest.mark.parametrize("name", names(output="ovf"))
def test_the_ovf_writer_writes_what_the_table_says(name, tmp_path):
    row = target(name)
    out = tmp_path / f"{name}.ovf"
    convert_package(DATA / "cot" / "input.ovf", name, out, descriptor_only=True, force=True)
    root = etree.parse(str(out)).getroot()
    ovf_ns = root.nsmap[None]
    assert root.get(f"{{{ovf_ns}}}version") == row.ovf.declared_version
    from vmferry.ovf import names as N

    assert {p for p, u in root.nsmap.items() if p and N.role_of(u) in ("vmw", "vbox")} == set(row.ovf.vendor_ns)
    values = {m.value.casefold() for m in row.nics}
    subtypes = [item.findtext(f"{{{N.RASD}}}ResourceSubType") for item in root.iter(f"{{{ovf_ns}}}Item")
                if item.findtext(f"{{{N.RASD}}}ResourceType") == "10"]
    assert subtypes and all(s.casefold() in values for s in subtypes), subtypes
