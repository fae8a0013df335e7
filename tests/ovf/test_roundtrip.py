"""Read-then-write is lossless: C14N-equal to the input for every sample, vendor elements included."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.conftest import ALL_SAMPLES
from vmferry.ovf import Envelope
from vmferry.ovf.xmlsafe import to_c14n


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: p.name)
def test_unchanged_envelope_is_c14n_equal(path):
    original = path.read_bytes()
    env = Envelope.from_file(path)
    _ = env.systems, env.disks, env.networks, env.references  # reading must not alter the document
    for system in env.systems:
        if system.hardware:
            system.hardware.items_for(env.default_profile)
    written = env.to_bytes()
    reference = to_c14n(etree.ElementTree(etree.fromstring(original)))
    assert to_c14n(etree.ElementTree(etree.fromstring(written))) == reference


def test_edit_through_a_declared_property_keeps_everything_else():
    path = ALL_SAMPLES[0].parent / "ubuntu.2.0.ovf"
    env = Envelope.from_file(path)
    env.references[0].size_text = "68608"
    again = Envelope.from_bytes(env.to_bytes())
    assert again.references[0].size == 68608
    # the VirtualBox machine blob (vendor element) is still there, byte for byte under C14N
    vbox_before = [e for e in etree.fromstring(path.read_bytes()).iter() if str(e.tag).endswith("}Machine")]
    vbox_after = [e for e in again.root.iter() if str(e.tag).endswith("}Machine")]
    assert len(vbox_before) == len(vbox_after) == 1
    assert etree.tostring(vbox_before[0], method="c14n") == etree.tostring(vbox_after[0], method="c14n")
