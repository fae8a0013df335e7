"""Hardware families: the samples' VirtualSystemTypes, the VMware ladder, and family_for."""

from __future__ import annotations

import pytest

from tests.tables import _samples
from vmferry.errors import TargetError
from vmferry.tables import families as fam


def test_every_sample_family_is_known_or_vendor_private():
    found = _samples.families()
    assert {v for _, v in found} >= {"vmx-04", "vmx-07", "vmx-08", "vmx-10", "vmx-13", "virtualbox-2.2"}
    for name, value in found:
        row = fam.family(value)
        assert row is not None or value.startswith("Cisco:"), (name, value)


def test_lookup_is_tolerant():
    assert fam.family("VMX-7") is fam.family("vmx-07")
    assert fam.family("microsoft:hyper-v:subtype:2").target == "hyperv"
    assert fam.family("vmx-05") is None and fam.family(None) is None
    assert fam.parse_families("vmx-07 vmx-08\n vmx-09") == ["vmx-07", "vmx-08", "vmx-09"]


def test_vmware_ladder_only_grows():
    esxi = sorted((f for f in fam.FAMILIES if f.target == "vmware" and f.esxi), key=lambda f: f.order)
    assert [f.order for f in esxi] == [4, 7, 8, 9, 10, 11, 13, 14, 15, 17, 18, 19, 20, 21]
    for older, newer in zip(esxi, esxi[1:], strict=False):
        assert older.features <= newer.features, (older.name, newer.name)
        assert older.max_vcpus <= newer.max_vcpus and older.max_memory_gib <= newer.max_memory_gib
        assert fam._release(older.esxi) < fam._release(newer.esxi)
    assert "vmxnet3" not in fam.family("vmx-04").features and "vmxnet3" in fam.family("vmx-07").features
    assert "sata" in fam.family("vmx-10").features and "sata" not in fam.family("vmx-09").features
    assert "nvme" in fam.family("vmx-13").features and "nvme" not in fam.family("vmx-11").features


def test_family_for_defaults_and_needs():
    assert fam.family_for("vmware") == "vmx-10"
    assert fam.family_for("vmware", min_version="vmx-07") == "vmx-10"
    assert fam.family_for("vmware", min_version="vmx-13") == "vmx-13"
    assert fam.family_for("vmware", min_version=14) == "vmx-14"
    assert fam.family_for("vmware", needs={"nvme"}) == "vmx-13"
    assert fam.family_for("vmware", needs={"secure_boot"}) == "vmx-13"
    assert fam.family_for("vmware", cpus=200) == "vmx-15"
    assert fam.family_for("vmware", memory_mib=8 << 20) == "vmx-18"
    assert fam.family_for("vmware", host="5.1") == "vmx-09"
    assert fam.family_for("vmware", host="6.7", needs={"nvme"}) == "vmx-13"
    assert fam.family_for("virtualbox") == "virtualbox-2.2"
    assert fam.family_for("xen") == "hvm-3.0-unknown"
    assert fam.family_for("xen", needs={"pv"}) == "xen-3.0-unknown"
    assert fam.family_for("xen", needs={"pv", "x64"}) == "xen-3.0-x64"
    assert fam.family_for("hyperv") == "Microsoft:Hyper-V:SubType:1"
    assert fam.family_for("hyperv", needs={"efi"}) == "Microsoft:Hyper-V:SubType:2"


def test_family_for_refuses_what_no_family_offers():
    with pytest.raises(TargetError, match="ESXi 6.0 offers nvme"):
        fam.family_for("vmware", needs={"nvme"}, host="6.0")
    with pytest.raises(TargetError, match="1000 vCPUs"):
        fam.family_for("vmware", cpus=1000)
    with pytest.raises(TargetError, match="vmxnet3"):
        fam.family_for("virtualbox", needs={"vmxnet3"})
    with pytest.raises(TargetError, match="unknown hardware feature"):
        fam.family_for("vmware", needs={"warp-drive"})
    with pytest.raises(TargetError, match="not a vmware hardware family"):
        fam.family_for("vmware", min_version="virtualbox-2.2")
    with pytest.raises(TargetError, match="no hardware families"):
        fam.family_for("kvm")


def test_table_is_consistent():
    names = [f.name.casefold() for f in fam.FAMILIES]
    assert len(names) == len(set(names))
    for f in fam.FAMILIES:
        assert f.features <= fam.FEATURES and f.target in fam.TARGETS
    for target, default in fam.DEFAULTS.items():
        assert fam.family(default).target == target
    orders = [(f.target, f.order) for f in fam.FAMILIES]
    assert len(orders) == len(set(orders))
