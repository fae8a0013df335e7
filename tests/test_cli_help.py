"""What a newcomer sees first: ``vmferry --help`` says what vmferry does, not a developer docstring."""

from __future__ import annotations

from tests.conftest import run_vmferry


def test_help_opens_with_what_vmferry_does():
    result = run_vmferry("--help")
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines[0].startswith("usage: vmferry")
    opening = " ".join(lines[1:4])
    assert opening.startswith("vmferry moves virtual machines between hypervisors and clouds")
    assert "Entry point" not in result.stdout and "``" not in result.stdout
    for command in ("inspect", "validate", "convert", "check"):
        assert command in result.stdout
    assert "Exit status: 0 ok, 1 findings" in " ".join(result.stdout.split())
