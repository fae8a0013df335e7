"""Package integrity: referenced files present with their declared sizes, manifest digests, certificate.

Problems of *content integrity* (a digest that does not match, a file larger or smaller than declared,
a signature that does not verify) raise, so the command ends with exit status 2 naming the file:
such a package must not be used. Everything else is a finding. Each byte is read once: every member
the manifest lists is hashed in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmferry.errors import SizeMismatch, UnsafeArchive
from vmferry.findings import Finding
from vmferry.package.base import Package, safe_href
from vmferry.package.certificate import verify_certificate


@dataclass
class IntegrityReport:
    findings: list[Finding]
    files_checked: int = 0
    bytes_hashed: int = 0
    manifest: str | None = None
    signed_by: str | None = None


def _where(pkg: Package, name: str) -> str:
    return f"{pkg.path}:{name}" if pkg.container == "ova" else (pkg.members[name].fs_path or name)


def check_references(pkg: Package) -> list[Finding]:
    """Every File of References is in the package with its declared size (chunked: the sum)."""
    out: list[Finding] = []
    env = pkg.envelope
    for f in env.references:
        if not f.href:
            continue  # reported by descriptor rules
        if safe_href(f.href) is None:
            raise UnsafeArchive(f"File '{f.id}' has href '{f.href}', outside the package (absolute, '..' or "
                                "URL); refused", path=env.path or pkg.path)
        stored = pkg.stored_size(f.href, f.chunk_size)
        if stored is None:
            out.append(Finding("VMF-REF-003", "error", f"File '{f.id}' ('{f.href}') is not in the package",
                               f.location))
            continue
        declared = f.size
        if declared is not None and declared != stored:
            raise SizeMismatch(f"'{f.href}' is {stored} bytes but the descriptor declares ovf:size={declared}",
                               path=_where(pkg, pkg.parts_of(f.href, f.chunk_size)[0]))
        if declared is None:
            out.append(Finding("VMF-REF-011", "info", f"File '{f.id}' ('{f.href}') declares no ovf:size "
                               f"({stored} bytes in the package)", f.location, "convert fills it in"))
    return out


def check_disk_formats(pkg: Package) -> list[Finding]:
    """Each disk's real format, detected from its content (headers only), against its ``ovf:format``."""
    from vmferry.disks.formats import detect, format_mismatch
    from vmferry.disks.image_check import check_image
    from vmferry.errors import DiskError
    from vmferry.ovf.formats import format_of_uri

    out: list[Finding] = []
    env = pkg.envelope
    for disk in env.disks:
        f = env.file_by_id(disk.file_ref) if disk.file_ref else None
        if f is None or not f.href or f.compression or f.chunk_size:
            continue
        parts = pkg.parts_of(f.href, None)
        if not parts:
            continue
        member = pkg.members[parts[0]]
        where = member.fs_path or pkg.path
        try:
            detected = detect(where, member.offset, member.size if member.fs_path is None else None)
        except DiskError as exc:
            out.append(Finding("VMF-DISK-021", "error", f"disk file '{f.href}' cannot be read as a disk image: "
                               f"{exc.message}", _where(pkg, parts[0])))
            continue
        try:   # the header check every image passes before a tool sees it: references, tables
            check_image(where, member.offset, member.size if member.fs_path is None else None,
                        name=_where(pkg, parts[0]), detected=detected, references=member.fs_path is not None)
        except DiskError as exc:
            out.append(Finding("VMF-DISK-021", "error", f"disk file '{f.href}' cannot be used: {exc.message}",
                               _where(pkg, parts[0])))
            continue
        declared = format_of_uri(disk.format)
        if detected.name == "raw" and declared not in (None, "raw", "unknown", "iso"):
            out.append(Finding("VMF-DISK-021", "error", f"disk file '{f.href}' is declared {declared} but has no "
                               f"{declared.split('-')[0].upper()} header: corrupt, or not a disk image",
                               _where(pkg, parts[0])))
            continue
        finding = format_mismatch(detected, disk.format, path=_where(pkg, parts[0]))
        if finding is not None:
            out.append(finding)
    return out


def check_integrity(pkg: Package, *, reporter=None) -> IntegrityReport:
    """Verify the manifest (every referenced file covered, nothing unknown, each digest) and the
    certificate; raise :class:`ManifestMismatch` / :class:`CertificateError` on a bad digest/signature.
    The manifest is the package reader's (:attr:`Package.manifest`, named after the descriptor); each
    member is read through it, its digest checked as it streams."""
    report = IntegrityReport(findings=[])
    mf_name = pkg.manifest_name
    if mf_name is None:
        report.findings.append(Finding("VMF-PKG-003", "info", "package has no manifest; file integrity is not "
                                       "verifiable", pkg.path, "convert and pack write a SHA256 manifest"))
        if pkg.certificate_name:
            report.findings.append(Finding("VMF-PKG-023", "error", "package has a certificate but no manifest "
                                           "to sign", _where(pkg, pkg.certificate_name)))
        return report
    report.manifest = mf_name
    manifest = pkg.manifest
    report.findings.extend(pkg.manifest_problems())
    listed = manifest.by_name()
    # coverage: descriptor and every referenced file (each chunk) must be listed
    must = [pkg.descriptor_name]
    for f in pkg.envelope.references:
        if f.href and safe_href(f.href):
            must.extend(pkg.parts_of(f.href, f.chunk_size))
    for name in must:
        if name not in listed:
            report.findings.append(Finding("VMF-PKG-013", "error", f"'{name}' is not covered by the manifest",
                                           _where(pkg, mf_name)))
    if pkg.container == "ova":
        for name in pkg.members:
            if name not in listed and name not in (mf_name, pkg.certificate_name):
                report.findings.append(Finding("VMF-PKG-014", "warning", f"archive member '{name}' is not "
                                               "listed in the manifest", _where(pkg, mf_name)))
    algos = {e.algorithm for e in manifest.entries}
    if "SHA1" in algos:
        report.findings.append(Finding("VMF-PKG-016", "info", "manifest uses SHA1 (OVF 1.x); OVF 2.x and "
                                       "current VMware releases expect SHA256", _where(pkg, mf_name),
                                       "convert writes SHA256"))
    present = [e.name for e in manifest.entries if safe_href(e.name) == e.name and pkg._has(e.name)
               and e.name not in manifest.duplicates]   # a file listed twice has no digest to trust
    total = sum(pkg.members[n].size for n in present)
    step = reporter.step("verify", total) if reporter is not None else None
    for name in present:
        for block in pkg.member_blocks(name):
            report.bytes_hashed += len(block)
            if step is not None:
                step.advance(len(block))
        report.files_checked += 1
    if step is not None:
        step.finish()
    if pkg.certificate_name:
        cert = verify_certificate(pkg.read_member(pkg.certificate_name, 1 << 20, verify=False),
                                  _where(pkg, pkg.certificate_name), pkg.manifest_bytes, mf_name)
        report.signed_by = cert.subject
        report.findings.extend(cert.findings)
    return report
