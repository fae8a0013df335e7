"""Guest OS table: real lookups from the samples, round trips, and the table's own consistency."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import ALL_SAMPLES, COT, V2V
from vmferry.ovf import Envelope
from vmferry.portable import OsSpec
from vmferry.tables import os as osids
from vmferry.tables.os_data import CIM_OS_NAMES, FALLBACK, OSINFO_NEWER, ROWS, VENDORS

OSINFO_DB = Path("/usr/share/osinfo/os")


def _os_section(path: Path):
    return Envelope.from_file(path).systems[0].operating_system


# -- the samples -------------------------------------------------------------------------------------

def test_vmware_rhel6_sample_maps_both_ways():
    sec = _os_section(COT / "vmware.ovf")
    assert (sec.cim_id, sec.version, sec.vendor_type) == (80, "6", "rhel6_64Guest")
    row = osids.from_vmware(sec.vendor_type)
    assert (row.distro, row.version, row.bits, row.cim) == ("rhel", "6", 64, 80)
    assert osids.from_cim(sec.cim_id, version=sec.version) is row
    assert osids.to_cim(row) == 80 and osids.to_virtualbox(row) == "RedHat6_64"
    # without the version, CIM 80 is "some 64-bit RHEL": the version-less row
    generic = osids.from_cim(80)
    assert generic.distro == "rhel" and generic.version is None and generic.bits == 64


def test_virtualbox_ubuntu_sample_maps_to_cim_94_and_ubuntu64guest():
    sec = _os_section(COT / "ubuntu.2.0.ovf")
    assert (sec.cim_id, sec.vendor_type) == (94, "Ubuntu_64")
    row = osids.from_virtualbox(sec.vendor_type)
    assert row.cim == 94 and row.vmware == "ubuntu64Guest"
    assert osids.from_cim(94) is row and osids.from_vmware("ubuntu64Guest") is row
    assert osids.to_virtualbox(osids.from_cim(94)) == "Ubuntu_64"


def test_windows7_64_sample_vmware_writes_the_vista_64_code():
    sec = _os_section(V2V / "test-i-ova.ovf")
    assert (sec.cim_id, sec.vendor_type) == (74, "windows7_64Guest")
    row = osids.from_vmware(sec.vendor_type)
    assert (row.version, row.bits) == ("7", 64)
    assert row.cim == 105                                   # "Microsoft Windows 7": what we write
    assert osids.cim_name(74) == "Windows Vista 64-Bit"     # what VMware wrote (no Windows 7 64-bit code)
    assert osids.from_cim(74).version == "vista"
    assert osids.from_cim(105, bits=64) is row and osids.from_cim(105).bits == 32


def test_windows2008r2_sample_maps_both_ways():
    sec = _os_section(V2V / "test-i-ova-two-disks.ovf")
    assert (sec.cim_id, sec.vendor_type) == (103, "windows7Server64Guest")
    row = osids.from_vmware(sec.vendor_type)
    assert row.cim == 103 and row.version == "2008r2"
    assert osids.from_cim(103) is row
    assert osids.to_libosinfo(row) == "win2k8r2"


@pytest.mark.parametrize("path", [COT / "input.ovf", COT / "csr1000v.ovf"], ids=lambda p: p.name)
def test_other26x_linux64_samples(path):
    sec = _os_section(path)
    assert (sec.cim_id, sec.vendor_type) == (100, "other26xLinux64Guest")
    row = osids.from_vmware(sec.vendor_type)
    assert osids.from_cim(100) is row and row.cim == 100 and row.virtualbox == "Linux26_64"


def _has_os(path: Path) -> bool:
    systems = Envelope.from_file(path).systems
    sec = systems[0].operating_system if systems else None
    return sec is not None and (sec.cim_id is not None or sec.vendor_type is not None)


WITH_OS = [p for p in ALL_SAMPLES if _has_os(p)]


def test_most_samples_name_their_os():
    assert len(WITH_OS) >= 9


@pytest.mark.parametrize("path", WITH_OS, ids=lambda p: p.name)
def test_every_sample_os_is_understood(path):
    sec = _os_section(path)
    spec = OsSpec(cim_id=sec.cim_id, version=sec.version, vmware=sec.vendor_type if sec.vendor_type and
                  sec.vendor_type.endswith(("Guest", "Guest64")) else None,
                  virtualbox=None if sec.vendor_type and sec.vendor_type.endswith(("Guest", "Guest64"))
                  else sec.vendor_type)
    row = osids.resolve(spec)
    assert row is not None
    if sec.vendor_type:                 # the vendor's own id wins over a CIM code that disagrees
        assert sec.vendor_type.casefold() in (row.vmware.casefold(), row.virtualbox.casefold())


# -- lookups -----------------------------------------------------------------------------------------

def test_lookups_ignore_case_and_blanks():
    assert osids.from_vmware("RHEL6_64GUEST") is osids.from_vmware("rhel6_64Guest")
    assert osids.from_virtualbox(" ubuntu_64 ") is osids.from_virtualbox("Ubuntu_64")
    assert osids.from_libosinfo("WIN2K19").version == "2019"
    assert osids.from_cim("94") is osids.from_cim(94)
    assert osids.from_vmware("") is None and osids.from_cim(None) is None and osids.from_cim("x") is None
    assert osids.from_vmware("noSuchGuest") is None


def test_version_and_bits_hints_pick_among_shared_values():
    assert osids.from_vmware("ubuntu64Guest", version="22.04").libosinfo == "ubuntu22.04"
    assert osids.from_vmware("ubuntu64Guest", version="23.10").version is None
    assert osids.from_cim(80, version="9.2").vmware == "rhel9_64Guest"
    assert osids.from_libosinfo("win7", bits=32).vmware == "windows7Guest"
    assert osids.from_libosinfo("win7").vmware == "windows7_64Guest"


def test_libosinfo_point_releases_and_unknown_releases():
    assert osids.from_libosinfo("rhel6.4").vmware == "rhel6_64Guest"
    assert osids.from_libosinfo("rhel7.9").vmware == "rhel7_64Guest"
    assert osids.from_libosinfo("sles12sp5").vmware == "sles12_64Guest"
    assert osids.from_libosinfo("centos7.0").vmware == "centos7_64Guest"
    unknown_ubuntu = osids.from_libosinfo("ubuntu25.10")
    assert (unknown_ubuntu.distro, unknown_ubuntu.version, unknown_ubuntu.bits) == ("ubuntu", None, 64)
    assert osids.from_libosinfo("haiku-nightly") is None


def test_virtualbox_versioned_ids_fall_back_to_the_distribution():
    assert osids.from_virtualbox("Ubuntu23_64").virtualbox == "Ubuntu_64"
    assert osids.from_virtualbox("Debian13_64").virtualbox == "Debian_64"
    assert osids.from_virtualbox("RedHat10_64").virtualbox == "RedHat_64"
    assert osids.from_virtualbox("Debian12_64").version == "12"


def test_to_functions_fall_back_by_family_and_bits():
    assert osids.to_vmware(OsSpec(family="linux", bits=64)) == "other26xLinux64Guest"
    assert osids.to_vmware(OsSpec(family="linux", bits=32)) == "other26xLinuxGuest"
    assert osids.to_vmware(None) == "otherGuest64"
    assert osids.to_vmware(OsSpec(family="other", bits=32)) == "otherGuest"
    assert osids.to_virtualbox(OsSpec(family="linux")) == "Linux26_64"
    assert osids.to_virtualbox(OsSpec(family="plan9", bits=64)) == "Other_64"
    assert osids.to_cim(OsSpec(family="linux", bits=32)) == 36
    assert osids.to_cim(OsSpec(family="linux", bits=64)) == 101
    assert osids.to_cim(OsSpec(family="other", bits=64)) == 102
    assert osids.to_libosinfo(OsSpec(family="windows", bits=64)) == "unknown"
    # a spec that resolves uses its row
    assert osids.to_vmware(OsSpec(virtualbox="Windows2019_64")) == "windows2019srv_64Guest"
    assert osids.to_virtualbox(OsSpec(cim_id=80, version="8")) == "RedHat8_64"
    assert osids.to_libosinfo(OsSpec(distro="debian", version="11", bits=64)) == "debian11"


def test_to_spec_round_trips_through_resolve():
    for row in ROWS:
        assert osids.resolve(osids.to_spec(row)) is row, row.key


# -- round trips ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("vendor", VENDORS)
def test_every_row_round_trips_with_its_hints(vendor):
    lookup = {"cim": osids.from_cim, "vmware": osids.from_vmware, "virtualbox": osids.from_virtualbox}
    for row in ROWS:
        value = row.value(vendor)
        if value is None:
            continue
        if vendor == "libosinfo":
            back = osids.from_libosinfo(value, bits=row.bits)
        else:
            back = lookup[vendor](value, version=row.version, bits=row.bits)
        assert back is not None and back.value(vendor) == value, (vendor, row.key)
        if len(osids.rows_for(vendor, value)) == 1:
            assert back is row, (vendor, row.key)


@pytest.mark.parametrize("vendor", VENDORS)
def test_shared_values_have_exactly_one_primary_row(vendor):
    by_value = defaultdict(list)
    for row in ROWS:
        if row.value(vendor) is not None:
            by_value[str(row.value(vendor)).casefold()].append(row)
    for value, rows in by_value.items():
        primaries = [r.key for r in rows if vendor in r.primary]
        if len(rows) > 1:
            assert len(primaries) == 1, (vendor, value, [r.key for r in rows])
            lookup = osids.from_libosinfo if vendor == "libosinfo" else {
                "cim": osids.from_cim, "vmware": osids.from_vmware, "virtualbox": osids.from_virtualbox}[vendor]
            assert lookup(rows[0].value(vendor)).key == primaries[0]
        else:
            assert primaries == [], f"{rows[0].key}: primary for {vendor} although the value is unique"


# -- consistency ---------------------------------------------------------------------------------------

def test_keys_and_os_identities_are_unique():
    keys = [r.key for r in ROWS]
    assert len(keys) == len(set(keys))
    identities = [(r.family, r.distro, r.version, r.bits) for r in ROWS]
    assert len(identities) == len(set(identities))


def test_aliases_do_not_shadow_other_rows():
    for vendor in ("vmware", "virtualbox", "libosinfo"):
        real = {str(r.value(vendor)).casefold(): r for r in ROWS if r.value(vendor) is not None}
        seen = set()
        for row in ROWS:
            for alias in row.also(vendor):
                key = alias.casefold()
                assert key not in real or real[key].distro == row.distro, (vendor, alias)
                assert key not in seen, (vendor, alias)
                seen.add(key)


def test_vendor_values_look_like_the_vendors_ids():
    for row in ROWS:
        assert re.fullmatch(r"[a-z][A-Za-z0-9_]*Guest(64)?", row.vmware), row.key
        assert re.fullmatch(r"[A-Z][A-Za-z0-9_]*", row.virtualbox), row.key
        assert row.libosinfo is None or re.fullmatch(r"[a-z][a-z0-9.\-]*", row.libosinfo), row.key
        assert row.bits in (32, 64) and row.family in ("linux", "windows", "bsd", "solaris", "other")
        assert row.virtualbox.endswith("_64") == (row.bits == 64), row.key


def test_cim_codes_agree_with_the_dmtf_names():
    for row in ROWS:
        name = CIM_OS_NAMES[row.cim]
        if "64" in name:
            assert row.bits == 64, (row.key, name)
        if row.bits == 32:
            assert "64" not in name, (row.key, name)
        assert ("Windows" in name or "WIN" in name) == (row.family == "windows") or row.cim in (1, 102), row.key
        if row.family == "linux" and row.cim not in (36, 97, 98, 99, 100, 101):
            assert any(w.casefold() in name.casefold() for w in
                       (row.distro or "", "RedHat", "SUSE", "SLES", "Oracle", "CentOS")), (row.key, name)


def test_fallbacks_name_values_of_real_rows():
    for vendor, table in FALLBACK.items():
        values = {r.value(vendor) for r in ROWS}
        for (family, bits), value in table.items():
            assert value in values, (vendor, family, bits, value)
            if vendor != "libosinfo":
                row = next(r for r in ROWS if r.value(vendor) == value and r.bits == bits)
                assert row.family in (family, "other"), (vendor, family, bits, value)


def _installed_osinfo_ids() -> set[str]:
    ids = set()
    for path in OSINFO_DB.glob("*/*.xml"):
        tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
        ids.update(t.strip() for t in tree.xpath("//os/short-id/text()"))
    return ids


def test_libosinfo_ids_exist_in_the_installed_osinfo_db():
    installed = _installed_osinfo_ids()
    assert len(installed) > 500, "osinfo-db is not installed (.ci/apt-packages.txt lists it)"
    ours = {r.libosinfo for r in ROWS if r.libosinfo} | {a for r in ROWS for a in r.libosinfo_also}
    ours |= set(FALLBACK["libosinfo"].values())
    missing = ours - installed - OSINFO_NEWER
    assert not missing, sorted(missing)
    assert OSINFO_NEWER <= ours
