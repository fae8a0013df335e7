"""Findings: what validation, checks and readers report about a package.

Every finding has a stable rule id (``VMF-<AREA>-<NNN>``, documented in ``docs/rules.md``), a severity
(``error``, ``warning``, ``info``), a one-line message, a location (file, element path and line) and,
where one exists, the fix that ``vmferry convert`` applies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    location: str = ""
    fix: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = f" [{self.location}]" if self.location else ""
        return f"{self.severity.upper():7} {self.rule} {self.message}{where}"


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
