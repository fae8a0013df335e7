"""``convert``: write a package in another dialect, for a target that accepts it.

>>> from vmferry.conversion import convert_package
>>> report = convert_package("tests/data/cot/ubuntu.2.0.ovf", "vmware", "/tmp/out.ovf",
...                          descriptor_only=True, force=True)
>>> report.target, any(c.what == "guest OS type" for c in report.changes)
('vmware', True)

The descriptor is rebuilt from the portable profile in the target's dialect (every mapping and every
dropped vendor element is a :class:`~vmferry.targets.ovf_writer.Change` in the report). Disks are
carried over, converted to the target's format when it differs (``disk_format`` overrides), and a
fresh SHA256 manifest is written. Output appears only when complete: a directory or an OVA written
under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from dataclasses import dataclass, field, replace

from vmferry.errors import UsageError
from vmferry.findings import Finding
from vmferry.portable import FileSpec, PortablePackage


@dataclass
class ConvertReport:
    source: str
    target: str
    output: str
    dialect: str | None
    ovf_version: str
    files: list[dict] = field(default_factory=list)
    changes: list = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "output": self.output, "dialect": self.dialect,
                "ovf_version": self.ovf_version, "files": self.files,
                "changes": [c.to_dict() for c in self.changes], "findings": [f.to_dict() for f in self.findings]}


def load(path: str, descriptor_only: bool):
    """(envelope, package or None) for a path; a bare descriptor when ``descriptor_only``."""
    from vmferry.ovf import Envelope
    from vmferry.package import open_package
    from vmferry.package.base import _looks_like_xml

    if descriptor_only and os.path.isfile(path) and _looks_like_xml(path):
        return Envelope.from_file(path), None
    pkg = open_package(path)
    return pkg.envelope, pkg


def prepare(envelope, target: str) -> tuple[PortablePackage, list[Finding]]:
    """The portable profile of ``envelope`` adjusted for ``target``, and the portability findings."""
    from vmferry.checks.portability import portability_findings
    from vmferry.dialects import detect
    from vmferry.dialects.reader import read_envelope

    dialect = detect(envelope).name
    portable = read_envelope(envelope, dialect)
    findings = portability_findings(envelope, portable, target)
    from vmferry.tables.targets import target as target_row

    row = target_row(target)
    for vm in portable.systems:  # transports the target lacks are dropped; its first is used instead
        if any(t not in row.env_transports for t in vm.transports):
            vm.transports = [t for t in vm.transports if t in row.env_transports] or list(row.env_transports[:1])
    _add_portable_network_keys(portable, target)
    return portable, findings


def _add_portable_network_keys(portable: PortablePackage, target: str) -> None:
    """Network settings found in a vendor convention are also written under vmferry's portable keys
    (``vmferry.net.N.*``, see docs/ovfenv.md), in the VM's unclassed ProductSection."""
    from vmferry.tables.targets import target as target_row

    if target_row(target).vendor_net_properties:  # kvm too: they go into the OVF environment ISO
        return
    from vmferry import netconv
    from vmferry.portable import ProductInfo

    for vm in portable.systems:
        configs = {i: c for i, c in vm.net_config.items() if not c.is_empty and c.origin != "vmferry"}
        if not configs:
            continue
        new = netconv.write_profiled(vm.properties(), [p.id for p in portable.profiles], "vmferry")
        product = next((p for p in vm.products if not p.product_class), None)
        if product is None:
            product = ProductInfo(info="Guest network settings (vmferry portable keys)")
            vm.products.append(product)
        existing = {p.key for p in product.properties}
        product.properties.extend(p for p in new if p.key not in existing)


def _style(target: str):
    """The targets-table row of an OVF target."""
    from vmferry.tables.targets import TARGETS, names

    row = TARGETS.get(target)
    if row is None or row.ovf is None:
        raise UsageError(f"unknown OVF target {target!r} (one of {', '.join(names(output='ovf'))}; kvm is "
                         "converted by vmferry.targets.kvm)")
    return row


def convert_package(path: str | os.PathLike, target: str, output: str | os.PathLike, *, ova: bool = False,
                    descriptor_only: bool = False, disk_format: str | None = None, force: bool = False,
                    reporter=None, prepare_boot_disk=None) -> ConvertReport:
    """``prepare_boot_disk(src, offset, size, workdir) -> (path, offset, size)``, when given, is handed the
    plain bytes of the first system's boot disk before it is written, and returns what to write instead
    (``vmferry guest repair`` of a package: a repaired copy)."""
    from vmferry.targets.ovf_writer import write_descriptor

    path, output = os.fspath(path), os.path.abspath(os.fspath(output))
    from vmferry.tables.targets import TARGETS

    if getattr(TARGETS.get(target), "output", None) == "cloud":   # disk images and the target's documents
        if ova or descriptor_only or prepare_boot_disk is not None:
            raise UsageError(f"{target} is written as a directory of disk images and documents (no OVA, "
                             "no descriptor alone)")
        from vmferry.targets.clouds import convert_to_cloud

        return convert_to_cloud(path, target, output, disk_format=disk_format, force=force, reporter=reporter)
    style = _style(target)
    envelope, pkg = load(path, descriptor_only)
    portable, findings = prepare(envelope, target)
    _refuse_broken(path, envelope, findings, target)
    from vmferry.checks.descriptor import descriptor_findings

    report = ConvertReport(path, target, output, portable.source_dialect, style.ovf.version,
                           findings=[f for f in descriptor_findings(envelope) if f.severity != "info"] + findings)
    if descriptor_only:
        data, changes = write_descriptor(portable, style)
        report.changes = changes
        _write_descriptor_file(output, data, force=force, stem=_stem(path))
        return report
    if pkg is None:
        raise UsageError("a package is needed (or use --descriptor-only)", path=path)
    report.findings += pkg.verify_integrity()   # before anything is written
    pkg.content()   # every Disk's file and every reference resolved: missing or hostile ones raise
    from vmferry.disks.formats import get_format

    fmt = get_format(disk_format or style.disk_formats[0])
    hook = (_boot_file_id(portable), prepare_boot_disk) if prepare_boot_disk else None
    if ova:
        _convert_to_ova(pkg, portable, style, fmt, output, force, reporter, report, hook)
    else:
        _convert_to_directory(pkg, portable, style, fmt, output, force, reporter, report, hook)
    return report


def _boot_file_id(portable: PortablePackage) -> str | None:
    vm = portable.systems[0] if portable.systems else None
    return next((d.file_id for d in (vm.disks if vm else []) if d.file_id), None)


def _refuse_broken(path: str, envelope, findings: list[Finding], target: str) -> None:
    """Errors no conversion fixes (a disk the target cannot hold, more NICs than it has) stop it before
    anything is written. A broken descriptor is repaired instead, each repair a change in the report."""
    from vmferry.errors import TargetError

    blocking = [f for f in findings if f.severity == "error" and f.fixed_by != "convert"]
    if blocking:
        listed = "; ".join(f"{f.rule} {f.message}" for f in blocking[:3])
        more = f" (+{len(blocking) - 3} more)" if len(blocking) > 3 else ""
        raise TargetError(f"cannot convert for {target}: {listed}{more}; see 'vmferry check'", path=path)


def _stem(path: str) -> str:
    base = os.path.basename(path.rstrip("/"))
    return base.rsplit(".", 1)[0] if "." in base else base


def _write_descriptor_file(output: str, data: bytes, *, force: bool, stem: str) -> str:
    from vmferry.disks.safety import atomic_output

    target = output if output.lower().endswith(".ovf") else os.path.join(output, f"{stem}.ovf")
    if not output.lower().endswith(".ovf"):
        os.makedirs(output, exist_ok=True)
    with atomic_output(target, force=force) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
    return target


def _disk_files(portable: PortablePackage) -> dict[str, list]:
    out: dict[str, list] = {}
    for vm in portable.systems:
        for d in vm.disks:
            if d.file_id:
                out.setdefault(d.file_id, []).append(d)
    return out


def _materialise(pkg, f: FileSpec, workdir: str, verifying: contextlib.ExitStack) -> tuple[str, int, int | None]:
    """(path, offset, size) where the plain bytes of ``f`` can be read, through the package reader: the
    file or member itself (its digest checked on a thread registered on ``verifying``: close it before
    the output is committed), or a temporary file, verified while written, when it is compressed or
    chunked."""
    pf = pkg.file(f.href)
    place = pf.in_place
    if place is not None:
        verifying.enter_context(pf.verified_in_place())
        return place
    return materialise(pf, workdir), 0, None


def materialise(pf, workdir: str) -> str:
    """A temporary plain file in ``workdir`` holding the logical bytes of the compressed or chunked
    package file ``pf`` (verified and bounded while written)."""
    tmp = os.path.join(workdir, ".plain-" + os.path.basename(pf.name))
    with open(tmp, "wb") as out:
        for block in pf.blocks():
            out.write(block)
    return tmp


def copy_package_file(pf, dst: str) -> tuple[int, str]:
    """Copy the logical bytes of the package file ``pf`` to ``dst``, verified while read; (size, sha256)."""
    digest = hashlib.sha256()
    total = 0
    with open(dst, "wb") as fout:
        for block in pf.blocks():
            fout.write(block)
            digest.update(block)
            total += len(block)
    return total, digest.hexdigest()


def open_file_disk(pkg, f: FileSpec, src: str, offset: int, size: int | None):
    """:func:`~vmferry.disks.convert.open_disk` for the file ``f`` of ``pkg`` where :func:`_materialise`
    put it: only the package's own file in an OVF folder may name siblings (a backing file, extents);
    a decompressed or joined copy in a temporary folder, like an OVA member, may name none."""
    from vmferry.disks.convert import open_disk

    pf = pkg.file(f.href)
    place = pf.in_place
    own = pkg.container == "ovf" and place is not None and place[0] == src
    # declared (say) VMDK yet without a header, the file is damaged, not a raw disk
    return open_disk(src, offset, size, name=_shown(pkg, f), references=own, declared=pf.disk_format)


def _shown(pkg, f: FileSpec) -> str:
    """How errors name the file ``f`` of ``pkg``: ``X.ova:href`` or the file in the OVF folder."""
    if pkg.container == "ova":
        return f"{pkg.path}:{f.href}"
    return os.path.join(pkg.path, f.href)


def _copy_range(src: str, offset: int, size: int | None, dst: str, verify=None) -> tuple[int, str]:
    """Copy (and hash) bytes of ``src``; ``verify`` (a :class:`~vmferry.disks.vmdk_verify.GrainVerifier`)
    is fed the same blocks and closed at the end: a damaged grain stops the copy."""
    digest = hashlib.sha256()
    total = 0
    try:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            fin.seek(offset)
            left = size
            while left is None or left > 0:
                block = fin.read(1 << 20 if left is None else min(1 << 20, left))
                if not block:
                    break
                fout.write(block)
                digest.update(block)
                if verify is not None:
                    verify.feed(block)
                total += len(block)
                if left is not None:
                    left -= len(block)
        if verify is not None:
            verify.close()
    finally:
        if verify is not None:
            verify.abandon()
    return total, digest.hexdigest()


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _renamed(href: str, fmt) -> str:
    stem = href.rsplit(".", 1)[0] if "." in os.path.basename(href) else href
    return os.path.basename(stem) + fmt.extension


def _convert_to_directory(pkg, portable, style, fmt, output, force, reporter, report, hook=None) -> None:
    from vmferry.disks.convert import convert_disk
    from vmferry.disks.safety import atomic_directory, sigterm_as_interrupt
    from vmferry.disks.vmdk_verify import GrainVerifier
    from vmferry.package.manifest import format_manifest
    from vmferry.targets.ovf_writer import Change, write_descriptor

    disks = _disk_files(portable)
    stem = _stem(pkg.descriptor_name)
    # the ExitStack closes first: every source digest is checked before the directory is committed
    with sigterm_as_interrupt(), atomic_directory(output, force=force) as tmp, contextlib.ExitStack() as verifying:
        digests: list[tuple[str, str]] = []
        new_files: list[FileSpec] = []
        for f in portable.files:
            src, offset, size = _materialise(pkg, f, tmp, verifying)
            if hook and f.id == hook[0]:
                src, offset, size = hook[1](src, offset, size, tmp)
            if f.id in disks:
                # opened (so checked: references, tables, stream markers) even when copied as it is
                disk = open_file_disk(pkg, f, src, offset, size)
                detected = disk.detected
                if detected.name == fmt.name and not disk.header.references and not disk.header.extents:
                    name = os.path.basename(f.href)
                    verify = GrainVerifier(_shown(pkg, f)) if detected.name == "vmdk-stream" else None
                    written, digest = _copy_range(src, offset, size, os.path.join(tmp, name), verify)
                else:
                    name = _renamed(f.href, fmt)
                    result = convert_disk(disk, os.path.join(tmp, name), fmt, reporter=reporter)
                    written, digest = result.file_size, _sha256(result.path)
                    for d in disks[f.id]:
                        d.format, d.format_uri, d.populated_bytes = fmt.name, fmt.ovf_uri, result.populated
                    report.changes.append(Change("converted", f"disk {f.href}", f"{detected.name} -> {fmt.name}"))
            else:
                name = os.path.basename(f.href)
                written, digest = _copy_range(src, offset, size, os.path.join(tmp, name))
            if src.startswith(tmp):
                os.unlink(src)
            new_files.append(replace(f, href=name, size=written, compression=None, chunk_size=None))
            digests.append((name, digest))
            report.files.append({"id": f.id, "href": name, "size": written, "sha256": digest})
        portable.files = new_files
        data, changes = write_descriptor(portable, style)
        report.changes[:0] = changes
        with open(os.path.join(tmp, f"{stem}.ovf"), "wb") as fh:
            fh.write(data)
        digests.insert(0, (f"{stem}.ovf", hashlib.sha256(data).hexdigest()))
        with open(os.path.join(tmp, f"{stem}.mf"), "wb") as fh:
            fh.write(format_manifest(digests))
        for name in os.listdir(tmp):
            os.chmod(os.path.join(tmp, name), 0o644)


def _convert_to_ova(pkg, portable, style, fmt, output, force, reporter, report, hook=None) -> None:
    """One pass when the target format is streamOptimized VMDK (vmferry's writer streams straight into
    the archive); otherwise disks are converted beside the output first."""
    import tempfile

    from vmferry.package.ova_writer import PackSource, pack_ova
    from vmferry.targets.ovf_writer import Change, write_descriptor

    disks = _disk_files(portable)
    stem = _stem(pkg.descriptor_name)
    work = tempfile.mkdtemp(prefix=".vmferry-tmp-", dir=os.path.dirname(output))
    verifying = contextlib.ExitStack()
    try:
        sources, names = [], {}
        for f in portable.files:
            src, offset, size = _materialise(pkg, f, work, verifying)
            if hook and f.id == hook[0]:
                src, offset, size = hook[1](src, offset, size, work)
            if f.id in disks and fmt.name == "vmdk-stream":
                name = _renamed(f.href, fmt)
                sources.append(PackSource(name, src, disk=open_file_disk(pkg, f, src, offset, size),
                                          stream_vmdk=True))
                report.changes.append(Change("converted", f"disk {f.href}", "-> vmdk-stream (one pass)"))
            elif f.id in disks:
                from vmferry.disks.convert import convert_disk

                name = _renamed(f.href, fmt)
                result = convert_disk(open_file_disk(pkg, f, src, offset, size), os.path.join(work, name),
                                      fmt, reporter=reporter)
                sources.append(PackSource(name, result.path))
                report.changes.append(Change("converted", f"disk {f.href}", f"-> {fmt.name}"))
            else:
                name = os.path.basename(f.href)
                if offset or size is not None:
                    local = os.path.join(work, name)
                    _copy_range(src, offset, size, local)
                    src = local
                sources.append(PackSource(name, src))
            names[f.id] = name

        def render(written) -> bytes:
            files = []
            for f in portable.files:
                w = written.get(names[f.id])
                files.append(replace(f, href=names[f.id], size=w.size if w else f.size, compression=None,
                                     chunk_size=None))
                for d in disks.get(f.id, []):
                    if w is not None and w.populated is not None:
                        d.populated_bytes = w.populated
                    if f.id in disks:
                        d.format, d.format_uri = fmt.name, fmt.ovf_uri
            return write_descriptor(replace(portable, files=files), style)[0]

        with verifying:   # finish: every source digest checked before the archive is renamed into place
            result = pack_ova(output, f"{stem}.ovf", render, sources, force=force, reporter=reporter,
                              finish=verifying.close)
        report.changes[:0] = write_descriptor(portable, style)[1]
        report.files = [{"href": w.name, "size": w.size, "sha256": w.sha256} for w in result.files.values()]
    except BaseException as exc:   # stop the hash threads; a digest mismatch is the cause to report
        if not verifying.__exit__(type(exc), exc, exc.__traceback__):
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
