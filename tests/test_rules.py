"""docs/rules.md documents exactly the rules the code can produce (the session check in conftest.py
verifies that each one is produced by some test)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import documented_rules

SRC = Path(__file__).parent.parent / "src" / "vmferry"


def rules_in_code() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        found.update(re.findall(r"[\"'](VMF-[A-Z]+-\d{3})[\"']", path.read_text()))
    return found


def test_every_rule_in_the_code_is_documented():
    assert rules_in_code() - documented_rules() == set()


def test_every_documented_rule_exists_in_the_code():
    assert documented_rules() - rules_in_code() == set()


def test_rule_ids_are_unique_in_the_document():
    text = (Path(__file__).parent.parent / "docs" / "rules.md").read_text()
    ids = re.findall(r"^\| (VMF-[A-Z]+-\d{3}) \|", text, re.M)
    assert len(ids) == len(set(ids))
