"""Property tests: whatever text a package holds, the lookups answer within the vocabulary or not at all."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vmferry.errors import TargetError
from vmferry.portable import OsSpec
from vmferry.tables import controllers as ctl
from vmferry.tables import families as fam
from vmferry.tables import nics
from vmferry.tables import os as osids
from vmferry.tables.os_data import ROWS

KNOWN_WORDS = st.sampled_from([s.value for s in nics.SPELLINGS] + [s.subtype or "" for s in ctl.SPELLINGS]
                              + [r.vmware for r in ROWS] + [r.virtualbox for r in ROWS] + ["", " ", "x"])
TEXT = st.one_of(st.text(max_size=40), KNOWN_WORDS, st.lists(KNOWN_WORDS, max_size=4).map(" ".join))


@settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from([None, 32, 64]))
def test_os_lookups_answer_a_row_or_none(text, bits):
    for found in (osids.from_vmware(text, bits=bits), osids.from_virtualbox(text, bits=bits),
                  osids.from_libosinfo(text, bits=bits), osids.from_cim(text, bits=bits)):
        assert found is None or found in ROWS


@settings(max_examples=300, deadline=None)
@given(st.builds(OsSpec, cim_id=st.one_of(st.none(), st.integers(-5, 200)), family=st.sampled_from(
    [None, "linux", "windows", "bsd", "solaris", "other", "plan9"]), bits=st.sampled_from([None, 32, 64]),
    version=st.one_of(st.none(), st.text(max_size=6)), vmware=st.one_of(st.none(), TEXT),
    virtualbox=st.one_of(st.none(), TEXT), distro=st.one_of(st.none(), st.text(max_size=8))))
def test_to_functions_always_answer_a_value_of_the_table(spec):
    assert osids.to_vmware(spec) in {r.vmware for r in ROWS}
    assert osids.to_virtualbox(spec) in {r.virtualbox for r in ROWS}
    assert osids.to_cim(spec) in {r.cim for r in ROWS}
    assert osids.to_libosinfo(spec) in {r.libosinfo for r in ROWS} | {"unknown"}


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_nic_models_stay_in_the_vocabulary(text):
    models = nics.nic_models(text)
    assert set(models) <= set(nics.MODELS) and len(models) == len(set(models))
    assert bool(models) == bool(text.strip())
    for target in nics.TARGETS:
        choice = nics.best_nic(target, models)
        assert nics.native(target, choice.model).value == choice.value


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([None, 5, 6, 20, 23, 10]), st.one_of(st.none(), TEXT))
def test_controller_models_stay_in_the_vocabulary(rtype, text):
    for kind, model in ctl.controller_models(rtype, text):
        assert kind in (*ctl.KINDS, "other")
        assert model is None or model in ctl.MODELS[kind]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(fam.TARGETS), st.frozensets(st.sampled_from(sorted(fam.FEATURES)), max_size=3),
       st.one_of(st.none(), st.integers(1, 1000)), st.one_of(st.none(), st.integers(1, 30 << 20)),
       st.one_of(st.none(), st.sampled_from(["4.1", "5.5", "6.5", "6.7", "7.0.2", "8.0"])))
def test_family_for_answers_a_fitting_family_or_says_why_not(target, needs, cpus, memory_mib, host):
    try:
        name = fam.family_for(target, needs=needs, cpus=cpus, memory_mib=memory_mib, host=host)
    except TargetError as exc:
        assert str(exc).startswith(f"no {target} hardware family")
        return
    row = fam.family(name)
    assert row.target == target and needs <= row.features
    assert cpus is None or row.max_vcpus is None or cpus <= row.max_vcpus
    assert memory_mib is None or row.max_memory_gib is None or memory_mib <= row.max_memory_gib * 1024
    if host and row.esxi:
        assert fam._release(row.esxi) <= fam._release(host)
