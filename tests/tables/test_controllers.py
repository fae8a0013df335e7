"""Controller table: every controller of the samples, alternatives, per-target values and fallbacks."""

from __future__ import annotations

import pytest

from tests.tables import _samples
from vmferry.ovf import rasd
from vmferry.tables import controllers as ctl
from vmferry.tables.targets import target as target_row

STORAGE = {ctl.IDE, ctl.SCSI, ctl.OTHER_STORAGE}     # USB (23) is a controller too, but not for disks


def _sample_controllers():
    return [(name, rtype, sub) for name, rtype, sub in _samples.items() if rtype in STORAGE]


def test_every_sample_controller_is_known():
    found = _sample_controllers()
    assert len(found) >= 15
    for name, rtype, sub in found:
        models = ctl.controller_models(rtype, sub)
        assert models and all(kind in ctl.KINDS for kind, _ in models), (name, rtype, sub)
        if sub is not None:
            assert all(ctl.spelling(rtype, token) is not None for token in sub.split()), (name, sub)


def test_sample_controllers_map_to_the_expected_models():
    found = {(rtype, sub) for _, rtype, sub in _sample_controllers()}
    assert {(20, "AHCI"), (5, "PIIX4"), (6, "lsilogicsas"), (6, "VirtualSCSI"), (6, "virtio lsilogic")} <= found
    assert ctl.controller_models(20, "AHCI") == (("sata", "ahci"),)
    assert ctl.controller_models(20, "vmware.sata.ahci") == (("sata", "ahci"),)
    assert ctl.controller_models(20, "vmware.nvme.controller") == (("nvme", None),)
    assert ctl.controller_models(6, "VirtualSCSI") == (("scsi", "pvscsi"),)
    assert ctl.controller_models(6, "LSILOGICSAS") == (("scsi", "lsisas1068"),)
    assert ctl.controller_models(6, "virtio lsilogic") == (("scsi", "virtio-scsi"), ("scsi", "lsilogic"))
    assert ctl.controller_models(5, None) == (("ide", None),)
    assert ctl.controller_models(5, "PIIX3") == (("ide", "piix3"),)
    assert ctl.controller_models(6, "megaraid") == (("scsi", None),)
    assert ctl.controller_models(20, "floppy-ish") == (("other", None),)


def test_table_agrees_with_the_ovf_models_own_classification():
    for row in ctl.SPELLINGS:
        assert rasd.controller_kind(row.resource_type, row.subtype) == row.kind, row


def test_sata_and_nvme_write_back_per_target():
    vmware = ctl.controller_for_target("vmware", "sata", "ahci")
    assert (vmware.resource_type, vmware.subtype, vmware.exact) == (20, "vmware.sata.ahci", True)
    vbox = ctl.controller_for_target("virtualbox", "sata", "ahci")
    assert (vbox.resource_type, vbox.subtype) == (20, "AHCI")
    nvme = ctl.controller_for_target("vmware", "nvme")
    assert (nvme.resource_type, nvme.subtype) == (20, "vmware.nvme.controller")
    vbox_nvme = ctl.controller_for_target("virtualbox", "nvme")
    assert (vbox_nvme.kind, vbox_nvme.subtype, vbox_nvme.exact) == ("sata", "AHCI", False) and vbox_nvme.note
    hyperv = ctl.controller_for_target("hyperv", "scsi", "pvscsi")
    assert hyperv.subtype == "Microsoft:Hyper-V:Synthetic SCSI Controller" and not hyperv.exact


@pytest.mark.parametrize("target", ctl.TARGETS)
def test_every_kind_and_model_has_a_choice_on_every_target(target):
    for kind in ctl.KINDS:
        for model in (None, *ctl.MODELS[kind]):
            choice = ctl.controller_for_target(target, kind, model)
            assert choice.kind in ctl.KINDS and choice.resource_type in (5, 6, 20)
            if choice.exact:
                assert choice.kind == kind and (model is None or choice.model in (model, None))
            else:
                assert choice.note


@pytest.mark.parametrize("target", [t for t in ctl.TARGETS if target_row(t).output == "ovf" or t == "hyperv"])
def test_written_items_read_back_as_the_same_controller(target):
    # kvm values are libvirt controller models, the cloud targets' their own spellings (Proxmox's scsihw...),
    # not OVF ResourceSubTypes; hyperv's are the ResourceSubTypes of Hyper-V's own OVF
    for row in ctl.TARGET_CONTROLLERS:
        if row.target == target:
            ((kind, model),) = ctl.controller_models(row.resource_type, row.subtype)
            assert kind == row.kind, row
            assert model in (row.model, None), row


def test_tables_are_consistent():
    keys = [(s.resource_type, " ".join((s.subtype or "").split()).casefold()) for s in ctl.SPELLINGS]
    assert len(keys) == len(set(keys))
    for s in ctl.SPELLINGS:
        assert s.kind in ctl.KINDS and (s.model is None or s.model in ctl.MODELS[s.kind])
    for row in ctl.TARGET_CONTROLLERS:
        assert row.kind in ctl.KINDS and (row.model is None or row.model in ctl.MODELS[row.kind])
    prefs = [(t.target, t.kind, t.preference) for t in ctl.TARGET_CONTROLLERS]
    assert len(prefs) == len(set(prefs))
    for fb in ctl.FALLBACKS:
        assert ctl.native(fb.target, fb.use_kind, fb.use_model) is not None, fb
        if fb.model is not None:
            assert ctl.native(fb.target, fb.kind, fb.model) is None, f"dead fallback {fb}"
