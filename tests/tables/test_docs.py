"""docs/tables.md documents every mapping that is not one-to-one: keep its tables equal to the data."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from vmferry.tables import controllers as ctl
from vmferry.tables import nics
from vmferry.tables.os_data import ROWS, VENDORS

DOC = Path(__file__).resolve().parents[2] / "docs" / "tables.md"


def _doc_lines() -> set[str]:
    return {line.strip() for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("|")}


def test_every_shared_os_value_is_documented_with_its_answer():
    lines = _doc_lines()
    expected = set()
    for vendor in VENDORS:
        by_value = defaultdict(list)
        for row in ROWS:
            if row.value(vendor) is not None:
                by_value[row.value(vendor)].append(row)
        for value, rows in by_value.items():
            if len(rows) > 1:
                primary = next(r.key for r in rows if vendor in r.primary)
                expected.add(f"| {vendor} | `{value}` | {', '.join(r.key for r in rows)} | {primary} |")
    documented = {line for line in lines if line.split("|")[1].strip() in VENDORS}
    assert expected - documented == set(), "not documented"
    assert documented - expected == set(), "documented but no longer true"


def test_nic_matrix_is_current():
    lines = _doc_lines()
    for model in nics.MODELS:
        cells = []
        for target in nics.TARGETS:
            choice = nics.nic_for_target(target, model)
            cells.append(f"`{choice.value}`" if choice.exact else f"→ {choice.model}")
        assert f"| {model} | " + " | ".join(cells) + " |" in lines, model


def test_controller_matrix_is_current():
    lines = _doc_lines()
    for kind in ctl.KINDS:
        for model in (None, *ctl.MODELS[kind]):
            cells = []
            for target in ctl.TARGETS:
                ch = ctl.controller_for_target(target, kind, model)
                cells.append(f"{ch.resource_type} `{ch.subtype or '–'}`" if ch.exact
                             else f"→ {ch.kind}/{ch.model or '–'}")
            assert f"| {kind}/{model or '(any)'} | " + " | ".join(cells) + " |" in lines, (kind, model)
