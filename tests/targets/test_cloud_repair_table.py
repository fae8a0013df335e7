"""What each cloud row repairs the guest for (fast: the table and its agreement with the guest repair's
tables; the repair itself on the test guest is tests/targets/test_cloud_repair.py)."""

from __future__ import annotations

import pytest

from tests.conftest import run_vmferry
from vmferry.guest import drivers
from vmferry.guest.bootrepair import HYPERVISOR_DRIVERS
from vmferry.guest.repair import HYPERVISORS
from vmferry.tables.targets import names, target

EXPECTED = {"openstack": ("kvm",), "gce": ("kvm",), "proxmox": ("kvm",), "aws": ("aws",), "azure": ("hyperv",),
            "hyperv": ("hyperv",)}


@pytest.mark.parametrize("name", names(output="cloud"))
def test_every_cloud_row_names_what_its_guests_are_repaired_for(name):
    cloud = target(name).cloud
    assert cloud.repair_for == EXPECTED[name]
    assert set(cloud.repair_for) <= set(HYPERVISORS)
    # the row's MACs reach the target only where its documents set them (Hyper-V's script, qm set)
    assert cloud.keeps_macs == (name in ("hyperv", "proxmox"))


@pytest.mark.parametrize("name", names(output="cloud"))
def test_the_repair_adds_the_drivers_of_the_first_bus_and_nic_the_row_judges_guests_on(name):
    """The drivers the repair puts in the initramfs cover the row's preferred boot bus and NIC model
    (vmferry.guest.drivers), so the repaired guest is chosen onto them when its kernel has them."""
    row = target(name)
    wanted = {d for hv in row.cloud.repair_for for d in HYPERVISOR_DRIVERS[hv]}
    bus, nic = row.boot_buses[0], row.guest_nics[0]
    assert wanted & set(drivers.BUS_DRIVERS[bus]), (bus, wanted)
    assert wanted & set(drivers.NIC_DRIVERS[nic]), (nic, wanted)


def test_aws_is_a_repair_target_of_guest_repair_too(tmp_path):
    res = run_vmferry("guest", "repair", tmp_path / "none.img", "--for", "aws,ec2", "-o", tmp_path / "o.img")
    assert res.returncode == 2 and "unknown hypervisor ec2" in res.stderr and "aws" in res.stderr


def test_check_counts_repair_fixes_as_done_by_convert_on_every_cloud_target():
    from vmferry.check import convert_fixers

    for name in names(output="cloud"):
        assert convert_fixers(name) == {"convert", "repair"}, name
    assert convert_fixers("kvm") == {"convert", "repair"} and convert_fixers("xen") == {"convert"}
