"""``validate``: is this package well-formed, complete and intact, and will its consumers accept it?

>>> from vmferry.validate import validate_package
>>> report = validate_package("tests/data/cot/vmware.ovf", descriptor_only=True)
>>> report.ok
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from vmferry.findings import Finding, has_errors


@dataclass
class ValidationReport:
    path: str
    container: str
    ovf_version: str
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    bytes_hashed: int = 0
    signed_by: str | None = None
    strict: bool = False

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    def to_dict(self) -> dict:
        return {"path": self.path, "container": self.container, "ovf_version": self.ovf_version,
                "valid": self.ok, "files_checked": self.files_checked, "bytes_hashed": self.bytes_hashed,
                "signed_by": self.signed_by, "strict": self.strict, "findings": [f.to_dict() for f in self.findings]}


def validate_package(path: str | os.PathLike, *, descriptor_only: bool = False, schema: bool = True,
                     strict: bool = False, reporter=None) -> ValidationReport:
    """Validate a descriptor, OVF directory or OVA: will the mainstream consumers (VMware OVF Tool/vSphere,
    VirtualBox, oVirt, virt-v2v, COT) accept it?

    Deviations from the DMTF XSD that they read are warnings naming them; what one of them refuses is an
    error naming it. ``strict`` reports DMTF schema conformance instead: every XSD violation is an error.

    ``descriptor_only`` checks the descriptor alone (the referenced files need not be present).
    ``reporter`` (:class:`vmferry.progress.Reporter`) shows hashing progress.
    Raises a :class:`~vmferry.errors.VmferryError` for unreadable, hostile, damaged or incomplete input
    (see :mod:`vmferry.checks.package`): findings are about a package that can be read.
    """
    from vmferry.checks.consumers import name_consumers
    from vmferry.checks.descriptor import descriptor_findings
    from vmferry.ovf import Envelope
    from vmferry.ovf.schema import schema_findings

    path = os.fspath(path)
    if descriptor_only:
        from vmferry.package.base import _looks_like_xml

        if os.path.isfile(path) and _looks_like_xml(path):
            env = Envelope.from_file(path)
            report = ValidationReport(path, "ovf", env.version)
            package = None
        else:
            from vmferry.package import open_package

            package = open_package(path)
            env = package.envelope
            report = ValidationReport(path, package.container, env.version, list(package.findings))
    else:
        from vmferry.checks.package import check_disk_formats, check_integrity, check_references
        from vmferry.package import open_package

        package = open_package(path)
        env = package.envelope
        report = ValidationReport(path, package.container, env.version, list(package.findings))
        # content that is missing, damaged or hostile raises (exit 2): only a readable package has findings
        report.findings += check_references(package)
        integrity = check_integrity(package, reporter=reporter)
        report.findings += integrity.findings
        report.findings += check_disk_formats(package)
        report.files_checked, report.bytes_hashed = integrity.files_checked, integrity.bytes_hashed
        report.signed_by = integrity.signed_by
    if schema:
        report.findings += schema_findings(env, strict=strict)
    report.strict = strict
    report.findings += descriptor_findings(env)
    report.findings = name_consumers(report.findings)
    return report
