"""``check``: what is not portable to a target, and what ``convert`` will do about it.

>>> from vmferry.check import check_package
>>> r = check_package("tests/data/cot/ubuntu.2.0.ovf", "vmware", descriptor_only=True)
>>> r.portable, "VMF-FAM-001" in {f.rule for f in r.findings}
(False, True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from vmferry.findings import Finding, has_errors


@dataclass
class CheckResult:
    path: str
    target: str
    dialect: str | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def portable(self) -> bool:
        return not has_errors(self.findings)

    def to_dict(self) -> dict:
        return {"path": self.path, "target": self.target, "portable": self.portable, "dialect": self.dialect,
                "findings": [f.to_dict() for f in self.findings]}


def check_package(path: str | os.PathLike, target: str, *, descriptor_only: bool = False,
                  guest: bool = True) -> CheckResult:
    """Descriptor rules (as ``validate``) plus the portability rules for ``target``; with ``guest``,
    the guest readiness findings when the package carries disks and libguestfs is available."""
    from vmferry.checks.descriptor import descriptor_findings
    from vmferry.conversion import load, prepare

    path = os.fspath(path)
    envelope, pkg = load(path, descriptor_only)
    portable, findings = prepare(envelope, target)
    result = CheckResult(path, target, portable.source_dialect)
    result.findings = [f for f in descriptor_findings(envelope) if f.severity != "info"] + findings
    if guest and pkg is not None and not descriptor_only:
        result.findings += guest_findings(pkg, portable, target)
    return result


def guest_findings(pkg, portable, target: str) -> list[Finding]:
    """Readiness of the guest for ``target`` (vmferry.guest); nothing when the package has no disk image."""
    try:
        from vmferry.guest import package_readiness_findings
    except ImportError:
        return []
    return package_readiness_findings(pkg, portable, target)
