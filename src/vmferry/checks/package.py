"""Package integrity: referenced files present with their declared sizes, manifest digests, certificate,
disk images that can be read safely.

Damage and hostility raise, so the command ends with exit status 2 and one line naming the file: a
package whose content cannot be resolved (a missing file, a reference leaving the package, a Disk naming
no File, a lying size, a missing chunk: :meth:`Package.content`), a manifest or certificate that cannot
be trusted, a digest that does not match, a gzip stream that is corrupt or inflates past its bound, a
disk image that is unsafe or damaged (:func:`vmferry.disks.image_check.check_image`) or has no header of
its declared format. Such a package must not be used. What remains are findings about a package that
can be read. Each byte is read once: every member the manifest lists is hashed in one pass, and a
compressed file is inflated (bounded, output dropped) as its bytes pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmferry.findings import Finding
from vmferry.package.base import Package
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
    """Every File of References resolved (raises otherwise, see :meth:`Package.content`); a File without
    ``ovf:size`` is an info."""
    out: list[Finding] = []
    files = pkg.content()
    for f in pkg.envelope.references:
        if f.size is None and f.id in files:
            out.append(Finding("VMF-REF-011", "info", f"File '{f.id}' ('{f.href}') declares no ovf:size "
                               f"({files[f.id].stored_size} bytes in the package)", f.location,
                               "convert fills it in"))
    return out


def check_disk_images(pkg: Package) -> list[tuple]:
    """Every plain (uncompressed, unchunked) disk file through the header check every image passes before
    a tool sees it (references, tables); a file with no header of its declared format is damage. Raises
    :class:`~vmferry.errors.DiskError`; returns (Disk, file name, detected format) for each."""
    from vmferry.disks.formats import detect, require_declared_header
    from vmferry.disks.image_check import check_image

    out = []
    files = pkg.content()
    env = pkg.envelope
    for disk in env.disks:
        ref = env.file_for_ref(disk.file_ref) if disk.file_ref else None
        pf = files.get(ref.id) if ref is not None else None
        if pf is None or pf.compressed or len(pf.parts) != 1:
            continue
        member = pf.parts[0]
        where = member.fs_path or pkg.path
        size = member.size if member.fs_path is None else None
        shown = _where(pkg, member.name)
        detected = detect(where, member.offset, size, name=shown)
        check_image(where, member.offset, size, name=shown, detected=detected, references=member.fs_path is not None)
        require_declared_header(detected, disk.format, path=shown)
        out.append((disk, shown, detected))
    return out


def check_disk_formats(pkg: Package) -> list[Finding]:
    """Each disk's real format, detected from its content (headers only, after :func:`check_disk_images`),
    against its ``ovf:format``."""
    from vmferry.disks.formats import format_mismatch

    out: list[Finding] = []
    for disk, shown, detected in check_disk_images(pkg):
        finding = format_mismatch(detected, disk.format, path=shown)
        if finding is not None:
            out.append(finding)
    return out


def check_integrity(pkg: Package, *, reporter=None) -> IntegrityReport:
    """Verify the package's content: the manifest and certificate (:meth:`Package.verify_integrity`), the
    references (:meth:`Package.content`: every referenced file and chunk listed), each listed member's
    digest and each compressed file's gzip stream, in one pass over the bytes; raise on the first
    problem (:class:`ManifestMismatch`, :class:`CertificateError`, ...). Findings: no manifest, members
    it does not list, SHA1."""
    report = IntegrityReport(findings=[])
    files = pkg.content()
    mf_name = pkg.manifest_name
    compressed = [pf for pf in files.values() if pf.compressed]
    if mf_name is None:
        report.findings.append(Finding("VMF-PKG-003", "info", "package has no manifest; file integrity is not "
                                       "verifiable", pkg.path, "convert and pack write a SHA256 manifest"))
        for pf in compressed:
            pf.check_stored()
        return report
    report.manifest = mf_name
    manifest = pkg.manifest
    listed = manifest.by_name()
    if pkg.container == "ova":
        for name in pkg.members:
            if name not in listed and name not in (mf_name, pkg.certificate_name):
                report.findings.append(Finding("VMF-PKG-014", "warning", f"archive member '{name}' is not "
                                               "listed in the manifest", _where(pkg, mf_name)))
    if "SHA1" in {e.algorithm for e in manifest.entries}:
        report.findings.append(Finding("VMF-PKG-016", "info", "manifest uses SHA1 (OVF 1.x); OVF 2.x and "
                                       "current VMware releases expect SHA256", _where(pkg, mf_name),
                                       "convert writes SHA256"))
    present = [e.name for e in manifest.entries]   # verify_integrity: each once, each in the package
    # a compressed file's parts are inflated as they pass, when they come in order; else read again after
    inflating = {id(pf): [pf, pf.inflater(), 0] for pf in compressed}
    part_of = {p.name: (id(pf), i) for pf in compressed for i, p in enumerate(pf.parts)}
    total = sum(pkg.members[n].size for n in present)
    step = reporter.step("verify", total) if reporter is not None else None
    for name in present:
        key, index = part_of.get(name, (None, -1))
        state = inflating.get(key)
        sink = state[1] if state is not None and state[2] == index else None
        if state is not None:
            state[2] = index + 1 if sink is not None else -1   # -1: out of order, read again below
        for block in pkg.member_blocks(name):
            if sink is not None:
                sink.write(block)
            report.bytes_hashed += len(block)
            if step is not None:
                step.advance(len(block))
        report.files_checked += 1
    if step is not None:
        step.finish()
    for pf, inflater, done in inflating.values():
        if done == len(pf.parts):
            inflater.finish()
        else:
            pf.check_stored()
    if pkg.certificate_name:
        cert = verify_certificate(pkg.read_member(pkg.certificate_name, 1 << 20, verify=False),
                                  _where(pkg, pkg.certificate_name), pkg.manifest_bytes, mf_name)
        report.signed_by = cert.subject
        report.findings.extend(cert.findings)
    return report
