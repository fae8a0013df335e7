"""NIC table: every NIC of the samples, alternatives, per-target values and fallbacks."""

from __future__ import annotations

import pytest

from tests.tables import _samples
from vmferry.ovf.rasd import NIC_TYPES
from vmferry.tables import nics


def _sample_nics():
    return [(name, sub) for name, rtype, sub in _samples.items() if rtype in NIC_TYPES]


def test_every_sample_nic_subtype_is_known():
    found = _sample_nics()
    assert len(found) >= 10
    for name, sub in found:
        if sub is None:
            assert nics.nic_models(sub) == ()
            continue
        models = nics.nic_models(sub)
        assert models and "other" not in models, (name, sub)


def test_sample_spellings_map_to_the_expected_models():
    subs = {sub for _, sub in _sample_nics()}
    assert {"E1000", "VMXNET3", "PCNet32", "VMXNET3 virtio"} <= subs
    assert nics.nic_models("E1000") == ("e1000",)
    assert nics.nic_models("VMXNET3") == nics.nic_models("VmxNet3") == nics.nic_models("vmxnet3") == ("vmxnet3",)
    assert nics.nic_models("PCNet32") == nics.nic_models("pcnet") == ("pcnet32",)
    assert nics.nic_models("VMXNET3 virtio") == ("vmxnet3", "virtio")
    assert nics.nic_models("Microsoft:Hyper-V:Synthetic Ethernet Port") == ("netvsc",)
    assert nics.nic_models("Microsoft:Hyper-V:Synthetic  Ethernet   Port") == ("netvsc",)
    assert nics.nic_models("e1000e, e1000") == ("e1000e", "e1000")
    assert nics.nic_models("SomethingNew") == ("other",)
    assert nics.nic_models("  ") == () and nics.nic_models(None) == ()


def test_alternatives_pick_what_the_target_runs_best():
    alternatives = nics.nic_models("VMXNET3 virtio")
    assert nics.best_nic("kvm", alternatives).value == "virtio"
    assert nics.best_nic("vmware", alternatives).value == "VmxNet3"
    assert nics.best_nic("virtualbox", alternatives).value == "virtio"
    hyperv = nics.best_nic("hyperv", alternatives)
    assert hyperv.value == "Microsoft:Hyper-V:Synthetic Ethernet Port" and not hyperv.exact and hyperv.note


def test_virtio_on_vmware_falls_back_to_e1000():
    choice = nics.nic_for_target("vmware", "virtio")
    assert (choice.value, choice.model, choice.exact) == ("E1000", "e1000", False)
    assert "virtio" in choice.note


@pytest.mark.parametrize("target", nics.TARGETS)
def test_every_model_has_a_value_on_every_target(target):
    for model in nics.MODELS:
        choice = nics.nic_for_target(target, model)
        assert choice.value
        own = nics.native(target, choice.model)
        assert own is not None and own.value == choice.value
        assert choice.exact == (choice.model == model)
        if not choice.exact:
            assert choice.note


@pytest.mark.parametrize("target", [t for t in nics.TARGETS if t != "kvm"])
def test_written_values_read_back_as_the_same_model(target):
    # kvm values are libvirt model names, but every one of them is also a known spelling
    for row in nics.TARGET_MODELS:
        if row.target == target:
            assert nics.nic_models(row.value) == (row.model,), (target, row.value)


def test_kvm_values_are_known_spellings_too():
    for row in nics.TARGET_MODELS:
        if row.target == "kvm":
            assert nics.nic_models(row.value) == (row.model,), row.value


def test_tables_are_consistent():
    spellings = [" ".join(s.value.split()).casefold() for s in nics.SPELLINGS]
    assert len(spellings) == len(set(spellings))
    assert {s.model for s in nics.SPELLINGS} <= set(nics.MODELS)
    assert all(s.note for s in nics.SPELLINGS if s.model == "other")
    pairs = [(t.target, t.model) for t in nics.TARGET_MODELS]
    assert len(pairs) == len(set(pairs))
    prefs = [(t.target, t.preference) for t in nics.TARGET_MODELS]
    assert len(prefs) == len(set(prefs))
    for fb in nics.FALLBACKS:
        assert nics.native(fb.target, fb.model) is None, f"dead fallback {fb}"
        assert nics.native(fb.target, fb.use) is not None, f"fallback to a missing model {fb}"
    fallback_keys = [(f.target, f.model) for f in nics.FALLBACKS]
    assert len(fallback_keys) == len(set(fallback_keys))


def test_unknown_target_or_model_is_refused():
    with pytest.raises(ValueError, match="unknown target"):
        nics.nic_for_target("bhyve", "e1000")
    with pytest.raises(ValueError, match="unknown portable NIC model"):
        nics.nic_for_target("kvm", "ne2000")
