"""Findings: what validation, checks and readers report about a package.

Every finding has a stable rule id (``VMF-<AREA>-<NNN>``, documented in ``docs/rules.md``), a severity
(``error``, ``warning``, ``info``), a one-line message, a location (file, element path and line) and,
where one exists, the fix. ``fixed_by`` says, as data, who applies that fix: ``"convert"`` when
``vmferry convert`` applies it on its own, ``"repair"`` when ``vmferry guest repair`` does (and ``convert``
where it repairs the guest), ``None`` when someone has to act.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from vmferry.errors import one_line

SEVERITIES = ("error", "warning", "info")
FIXERS = ("convert", "repair")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    location: str = ""
    fix: str | None = None
    fixed_by: str | None = None       # one of FIXERS, or None: the fix is left to the user

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if self.fixed_by is not None and self.fixed_by not in FIXERS:
            raise ValueError(f"unknown fixer {self.fixed_by!r}")
        # one line each, whatever names from the input they quote (a member name with a newline...)
        for name in ("message", "location", "fix"):
            value = getattr(self, name)
            if value:
                object.__setattr__(self, name, one_line(value))

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = f" [{self.location}]" if self.location else ""
        return f"{self.severity.upper():7} {self.rule} {self.message}{where}"


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


READY, READY_AFTER_CONVERT, NOT_READY = "ready", "ready-after-convert", "not-ready"
VERDICTS = (READY, READY_AFTER_CONVERT, NOT_READY)


def applied(f: Finding, fixers: frozenset[str] | set[str]) -> bool:
    """Whether ``f`` is fixed by one of ``fixers`` (e.g. ``{"convert"}``)."""
    return f.fixed_by is not None and f.fixed_by in fixers


def verdict(findings: list[Finding], fixers: frozenset[str] | set[str] = frozenset({"convert"})) -> str:
    """``not-ready`` when an error remains that none of ``fixers`` fixes; ``ready-after-convert`` when
    errors or warnings remain and every error is fixed by them (and at least one finding is); else ``ready``."""
    if any(f.severity == "error" and not applied(f, fixers) for f in findings):
        return NOT_READY
    if any(f.severity in ("error", "warning") and applied(f, fixers) for f in findings):
        return READY_AFTER_CONVERT
    return READY
