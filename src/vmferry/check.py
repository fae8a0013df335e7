"""``check``: will the VM work on a target after ``convert``?

The verdict is mechanical: each finding says, as data (:attr:`vmferry.findings.Finding.fixed_by`),
whether ``convert`` fixes it. ``ready``: nothing to fix; ``ready-after-convert``: every error (and
some warnings) are fixed by ``convert``, which lists them; ``not-ready``: an error remains that
``convert`` does not fix.

>>> from vmferry.check import check_package
>>> r = check_package("tests/data/cot/ubuntu.2.0.ovf", "vmware", descriptor_only=True)
>>> r.verdict, [f.fixed_by for f in r.findings if f.rule == "VMF-FAM-001"]
('ready-after-convert', ['convert'])
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from vmferry.findings import NOT_READY, Finding, applied, verdict


def _repairing_targets() -> frozenset[str]:
    from vmferry.tables.targets import ROWS

    return frozenset({"kvm"} | {r.name for r in ROWS if r.cloud is not None and r.cloud.repair_for})


# targets whose ``convert`` also runs guest repair (vmferry.guest.repair, on by default in ``convert --to
# kvm`` and for the cloud rows with ``cloud.repair_for``): findings fixed_by="repair" are then fixed by convert
REPAIRING_TARGETS: frozenset[str] = _repairing_targets()


def convert_fixers(target: str) -> frozenset[str]:
    """Who applies fixes when ``vmferry convert`` runs for ``target``."""
    return frozenset({"convert", "repair"}) if target in REPAIRING_TARGETS else frozenset({"convert"})


@dataclass
class CheckResult:
    path: str
    target: str
    dialect: str | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return verdict(self.findings, convert_fixers(self.target))

    @property
    def portable(self) -> bool:
        """Whether the VM works on the target once ``convert`` has applied its fixes."""
        return self.verdict != NOT_READY

    @property
    def fixes(self) -> list[Finding]:
        """Errors and warnings that ``convert`` fixes."""
        fixers = convert_fixers(self.target)
        return [f for f in self.findings if f.severity != "info" and applied(f, fixers)]

    @property
    def remaining(self) -> list[Finding]:
        """What ``convert`` leaves to the user (infos included)."""
        fixers = convert_fixers(self.target)
        return [f for f in self.findings if f.severity == "info" or not applied(f, fixers)]

    def to_dict(self) -> dict:
        return {"path": self.path, "target": self.target, "verdict": self.verdict, "portable": self.portable,
                "dialect": self.dialect, "findings": [f.to_dict() for f in self.findings]}


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
    if pkg is not None and not descriptor_only:
        # the package's content is resolved and its disk images checked: damage or hostility raises
        from vmferry.checks.package import check_disk_images

        check_disk_images(pkg)
        if guest:
            result.findings += guest_findings(pkg, portable, target)
    return result


def guest_findings(pkg, portable, target: str) -> list[Finding]:
    """Readiness of the guest on its boot disk for ``target`` (libguestfs; read-only). A package with no
    disk image has nothing to inspect; a disk that cannot be inspected is a warning, not a failure."""
    import tempfile

    from vmferry.errors import VmferryError
    from vmferry.guest.readiness import TARGETS

    if target not in TARGETS:  # a target with no hardware of its own (dmtf): nothing to judge
        return []
    from vmferry.errors import DamagedImage, PackageError, UnsafeImage
    from vmferry.guest import inspect_image

    image = None
    try:
        with tempfile.TemporaryDirectory(prefix="vmferry-guest-") as tmp, \
                boot_disk_image(pkg, portable, tmp) as image:   # a damaged or altered package raises
            if image is None:
                return []
            report = inspect_image(image)
    except (PackageError, UnsafeImage, DamagedImage):
        raise   # a damaged package or an image reaching outside it is bad input, not an uninspectable guest
    except VmferryError as exc:
        where = os.path.basename(image) if image else pkg.path
        name = next((f.href for f in portable.files if os.path.basename(f.href) == where), where)
        return [Finding("VMF-GUEST-004", "warning", f"the guest on {name} could not be inspected: "
                        f"{exc.message}", name, "check drivers by hand, or run 'vmferry guest' on the disk")]
    href = os.path.basename(image)
    return judged_findings(report, portable.systems[0], target, href) + \
        cloud_guest_findings(report, portable.systems[0], target)


def cloud_guest_findings(report, vm, target: str) -> list[Finding]:
    """A cloud target's own rules on the inspected guest (its writer module's ``guest_rules``)."""
    from vmferry.tables.targets import target as target_row

    if target_row(target).cloud is None:
        return []
    from vmferry.targets.clouds import writer_module

    module = writer_module(target)
    return module.guest_rules(vm, report) if hasattr(module, "guest_rules") else []


def judged_findings(report, vm, target: str, href: str) -> list[Finding]:
    """Readiness findings of an inspected guest for ``target``, judged on the disk bus and NIC model
    ``convert`` will choose. On kvm ``convert`` repairs the guest first (drivers, device names, network
    identity): when that fixes every error on the default bus (virtio), the findings stand, fixed by
    repair; otherwise convert chooses the bus and NIC by the guest's drivers, and what virtio would break
    and that choice avoids is listed as fixed by convert."""
    from vmferry.guest import readiness

    result = readiness(report, target)
    out: list[Finding] = []
    fixers = convert_fixers(target)
    # where convert repairs the guest and the repair fixes every error at the default bus, convert then
    # chooses that bus (it inspects the repaired image): the findings stand as they are, fixed by repair
    repaired = "repair" in fixers and all(applied(f, fixers) for f in result.findings if f.severity == "error")
    from vmferry.tables.targets import target as target_row

    row = target_row(target)
    if row.follows_guest and not repaired:   # convert picks the bus and NIC the guest has drivers for
        default = result
        if target == "kvm":
            from vmferry.targets.kvm import GUEST_BUS, choose_bus, choose_nic

            bus, _, _ = choose_bus(report, "auto", vm)
            bus = GUEST_BUS[bus]  # libvirt's "scsi" is the guest's virtio-scsi
            nic = choose_nic(report, "auto")
        else:
            from vmferry.guest.drivers import guest_drivers, pick_bus, pick_nic

            drv = guest_drivers(report)
            bus = (pick_bus(drv, row.boot_buses) if drv.checked else None) or row.boot_buses[0]
            nic = (pick_nic(drv, row.guest_nics) if drv.checked else None) or row.guest_nics[0]
        result = readiness(report, target, bus=bus, nic=nic)
        kept = {(f.rule, f.location) for f in result.findings}
        for f in default.reasons:
            if (f.rule, f.location) not in kept:
                out.append(Finding(f.rule, f.severity, f"on {default.bus} disk and {default.nic} NIC (the "
                                   f"default): {f.message}", f.location or href,
                                   f"convert puts the boot disk on {bus} and gives the VM a {nic} NIC, which the "
                                   "guest has drivers and names for", "convert"))
    for f in result.findings:
        message = f.message
        if f.severity == "error" and not message.startswith("will not boot"):
            message = f"will not boot on {target} ({result.bus}): {message}"
        out.append(Finding(f.rule, f.severity, message, f.location or href, f.fix, f.fixed_by))
    return out


@contextlib.contextmanager
def boot_disk_image(pkg, portable, tmp: str) -> Iterator[str | None]:
    """A path libguestfs can open for the first system's boot disk, through the package reader: the
    disk file itself (an uncompressed file of an OVF directory, its manifest digest checked on a thread
    while the block runs, raising at its end), or a qcow2 copy written into ``tmp`` straight from the
    archive (an OVA, a compressed or chunked file; verified while copied). None when the package
    carries no disk image."""
    from vmferry.disks.ova_read import convert_file

    pkg.content()   # every reference resolved first: a missing or hostile one raises
    vm = portable.systems[0] if portable.systems else None
    disk = next((d for d in (vm.disks if vm else []) if d.file_id), None)
    fspec = portable.file(disk.file_id) if disk else None
    if fspec is None or not pkg.parts_of(fspec.href, fspec.chunk_size):
        yield None
        return
    f = pkg.file(fspec.href)
    place = f.in_place
    if pkg.container == "ovf" and place is not None:
        with f.verified_in_place():
            yield place[0]
        return
    out = os.path.join(tmp, os.path.basename(fspec.href).rsplit(".", 1)[0] + ".qcow2")
    convert_file(f, out, "qcow2")
    yield out
