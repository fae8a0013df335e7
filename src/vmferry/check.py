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


GUEST_TARGETS = {"kvm": "kvm", "vmware": "vmware", "virtualbox": "virtualbox", "xen": "xen"}


def guest_findings(pkg, portable, target: str) -> list[Finding]:
    """Readiness of the guest on its boot disk for ``target`` (libguestfs; read-only). A package with no
    disk image has nothing to inspect; a disk that cannot be inspected is a warning, not a failure."""
    import tempfile

    from vmferry.errors import VmferryError

    if target not in GUEST_TARGETS:
        return []
    with tempfile.TemporaryDirectory(prefix="vmferry-guest-") as tmp:
        image = None
        try:
            image = boot_disk_image(pkg, portable, tmp)
            if image is None:
                return []
            from vmferry.guest import inspect_image, readiness

            report = inspect_image(image)
        except VmferryError as exc:
            where = os.path.basename(image) if image else pkg.path
            name = next((f.href for f in portable.files if os.path.basename(f.href) == where), where)
            return [Finding("VMF-GUEST-004", "warning", f"the guest on {name} could not be inspected: "
                            f"{exc.message}", name, "check drivers by hand, or run 'vmferry guest' on the disk")]
    result = readiness(report, GUEST_TARGETS[target])
    href = os.path.basename(image)
    out = []
    for f in result.findings:
        message = f.message
        if f.severity == "error" and not message.startswith("will not boot"):
            message = f"will not boot on {target} ({result.bus}): {message}"
        out.append(Finding(f.rule, f.severity, message, f.location or href, f.fix))
    return out


def boot_disk_image(pkg, portable, tmp: str) -> str | None:
    """A path libguestfs can open for the first system's boot disk: the disk file itself (in an OVF
    directory), or a qcow2 copy written into ``tmp`` straight from the archive (an OVA, a compressed or
    chunked file). None when the package carries no disk image."""
    vm = portable.systems[0] if portable.systems else None
    disk = next((d for d in (vm.disks if vm else []) if d.file_id), None)
    fspec = portable.file(disk.file_id) if disk else None
    if fspec is None or not pkg.parts_of(fspec.href, fspec.chunk_size):
        return None
    parts = pkg.parts_of(fspec.href, fspec.chunk_size)
    member = pkg.members[parts[0]]
    if member.fs_path and not fspec.compression and len(parts) == 1:
        return member.fs_path
    out = os.path.join(tmp, os.path.basename(fspec.href).rsplit(".", 1)[0] + ".qcow2")
    if pkg.container == "ova":
        from vmferry.disks.ova_read import import_disk

        import_disk(pkg.path, fspec.href, out, "qcow2", compression=fspec.compression,
                    chunk_size=fspec.chunk_size, verify=False)
        return out
    from vmferry.conversion import _materialise
    from vmferry.disks.convert import convert_disk, open_disk

    src, offset, size = _materialise(pkg, fspec, tmp)
    convert_disk(open_disk(src, offset, size), out, "qcow2")
    return out
