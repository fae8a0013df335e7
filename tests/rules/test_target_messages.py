"""VMF-PROP-012 and VMF-PROF-010 are said as each target's row writes its output: the clouds have no OVF
environment and write one profile's hardware, OVF targets keep every profile, kvm writes one domain."""

from __future__ import annotations

import pytest

from tests.rules.builder import descriptor, write
from tests.rules.test_triggers import PROFILES
from vmferry.check import check_package
from vmferry.tables.targets import TARGETS, names

CLOUDS = names(output="cloud")


def _finding(tmp_path, target: str, rule: str, **kwargs):
    path = write(tmp_path, descriptor(**kwargs))
    found = [f for f in check_package(path, target, descriptor_only=True, guest=False).findings if f.rule == rule]
    assert len(found) == 1, (target, rule, found)
    return found[0]


def test_the_six_clouds_are_the_cloud_rows():
    assert set(CLOUDS) == {"openstack", "gce", "hyperv", "proxmox", "aws", "azure"}


@pytest.mark.parametrize("target", CLOUDS)
def test_guestinfo_on_a_cloud_names_no_iso_but_where_its_guests_read_settings(tmp_path, target):
    f = _finding(tmp_path, target, "VMF-PROP-012", hw_attrs='ovf:transport="com.vmware.guestInfo"')
    text = f"{f.message} {f.fix}"
    assert "ISO" not in text and "iso" not in text, text
    assert "no OVF environment" in f.message
    assert all(ds in f.message for ds in TARGETS[target].datasources), f.message
    assert f.fixed_by is None       # convert writes no transport there: the user's to do


@pytest.mark.parametrize("target", ["kvm", "xen"])
def test_guestinfo_on_an_iso_target_still_says_iso(tmp_path, target):
    f = _finding(tmp_path, target, "VMF-PROP-012", hw_attrs='ovf:transport="com.vmware.guestInfo"')
    assert f.message.endswith("delivers the OVF environment by iso") and f.fix == "transport 'iso' is written"
    assert f.fixed_by == "convert"


@pytest.mark.parametrize("target", CLOUDS)
def test_profiles_on_a_cloud_say_one_profile_is_written_not_kept_in_a_descriptor(tmp_path, target):
    f = _finding(tmp_path, target, "VMF-PROF-010", envelope_sections=PROFILES)
    assert "descriptor" not in f.fix and "--profile" not in f"{f.message} {f.fix}"
    assert "chosen profile's CPU, memory, NICs and disks only" in f.message
    assert "others are dropped" in f.fix or "other profiles are dropped" in f.fix
    if target == "proxmox":
        assert "an OVF with one configuration" in f.message


def test_profiles_on_ovf_and_kvm_targets(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "k").mkdir()
    xen = _finding(tmp_path / "x", "xen", "VMF-PROF-010", envelope_sections=PROFILES)
    assert xen.fix.startswith("all profiles are kept in the descriptor")
    kvm = _finding(tmp_path / "k", "kvm", "VMF-PROF-010", envelope_sections=PROFILES)
    assert "one domain is written" in kvm.message and "descriptor" not in kvm.fix
