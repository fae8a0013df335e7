"""``convert --to T`` for the targets that import disk images and documents rather than an OVF of
vmferry's dialects (the targets table's rows with ``output == "cloud"``): OpenStack, Compute Engine,
Hyper-V, Proxmox VE, and AWS and Azure (their writers build on the same framework).

>>> from vmferry.targets.clouds import convert_to_cloud
>>> report = convert_to_cloud("appliance.ova", "openstack", "out/")          # doctest: +SKIP
>>> [d["href"] for d in report.documents]                                     # doctest: +SKIP
['appliance.glance.json', 'appliance.report.json']

The output directory holds, per system, its disks in the target's format and the target's documents,
plus ``<stem>.report.json`` (the conversion report: what was mapped, converted, dropped, and the
findings). It appears only when complete. The framework is :mod:`vmferry.targets.clouds.base`; each
target's writer is the module the row names (``row.cloud.writer``), see docs/targets.md.
"""

from __future__ import annotations

import importlib
import json
import os

from vmferry.errors import UsageError
from vmferry.targets.clouds.base import CloudJob, CloudReport, choose_hardware, inspect_boot_disk, write_disks
from vmferry.targets.clouds.repair import repair_boot_disk


def writer_module(target: str):
    """The writer module of the cloud target ``target`` (the row's ``cloud.writer``)."""
    from vmferry.tables.targets import target as target_row

    row = target_row(target)
    if row.cloud is None:
        raise UsageError(f"{target} is not a cloud target")
    return importlib.import_module(f"vmferry.targets.clouds.{row.cloud.writer}")


def convert_to_cloud(path: str | os.PathLike, target: str, output: str | os.PathLike, *,
                     disk_format: str | None = None, profile: str | None = None, force: bool = False,
                     inspect_guest: bool = True, reporter=None, options: dict | None = None,
                     upload: bool = False, repair: bool = True, settings: list[str] | tuple = ()) -> CloudReport:
    """Convert the package at ``path`` for the cloud target ``target`` into the directory ``output``.

    ``options`` are the target's own (e.g. ``{"cloud": "mycloud"}`` for openstack, ``{"switch": "LAN"}``
    for hyperv). With ``upload``, the written output is then sent by the writer's ``upload``. With
    ``inspect_guest`` and ``repair`` (the defaults), the converted boot disk's guest is repaired for the
    target (:mod:`vmferry.targets.clouds.repair`; ``settings``: ``vmferry.net.N.*=VALUE`` for it) before
    the bus and NIC are chosen from it."""
    from vmferry.checks.descriptor import descriptor_findings
    from vmferry.conversion import _refuse_broken, load, prepare
    from vmferry.disks.safety import atomic_directory, sigterm_as_interrupt
    from vmferry.tables.targets import target as target_row

    path, output = os.fspath(path), os.path.abspath(os.fspath(output))
    row = target_row(target)
    module = writer_module(target)
    if upload and not hasattr(module, "upload"):
        raise UsageError(f"{target} has no upload")
    if upload and hasattr(module, "check_upload"):   # refused before anything is written
        module.check_upload(dict(options or {}))
    fmt = disk_format or row.disk_formats[0]
    if fmt not in row.disk_formats:
        raise UsageError(f"{target} imports {', '.join(row.disk_formats)}, not {fmt}")
    nic_settings = None
    if repair and inspect_guest and row.cloud.repair_for:
        from vmferry.guest.repair import parse_settings

        nic_settings = parse_settings(list(settings))   # refused before anything is written
    envelope, pkg = load(path, False)
    portable, findings = prepare(envelope, target)
    _refuse_broken(path, envelope, findings, target)
    if profile is not None and profile not in [p.id for p in portable.profiles]:
        raise UsageError(f"no deployment profile {profile!r}", path=path)
    report = CloudReport(path, target, output, portable.source_dialect,
                         findings=[f for f in descriptor_findings(envelope) if f.severity != "info"] + findings)
    report.findings += pkg.verify_integrity()   # before anything is written
    pkg.content()   # every Disk's file and every reference resolved: missing or hostile ones raise
    chosen = profile or portable.default_profile
    from vmferry.targets.kvm import safe_stem

    with sigterm_as_interrupt(), atomic_directory(output, force=force) as tmp:
        stems: set[str] = set()
        for vm in portable.systems:
            stem = safe_stem(vm.name or vm.id)
            while stem in stems:
                stem += "-2"
            stems.add(stem)
            job = CloudJob(path, pkg, portable, vm, row, chosen, tmp, output, stem, report, dict(options or {}),
                           reporter=reporter)
            write_disks(job, fmt)
            if nic_settings is not None and repair_boot_disk(job, nic_settings):
                pass   # job.guest: the repaired guest, read in the appliance that repaired it
            elif inspect_guest:
                inspect_boot_disk(job)
            else:
                job.finding("VMF-CLOUD-004", "warning", "the guest was not inspected: the disk bus and NIC model "
                            "are a guess", "convert with guest inspection, or run 'vmferry guest' on the disk")
            job.choice = choose_hardware(job)
            if job.guest is not None and job.drivers is not None and job.drivers.checked and \
                    job.choice.bus not in job.drivers.storage_buses:
                job.finding("VMF-GUEST-001", "error", f"will not boot on {target}: the guest has drivers for "
                            f"none of {', '.join(row.boot_buses)}", "install the drivers before moving "
                            "(vmferry guest repair)")
            module.write(job)
            report.choices.append({"system": vm.id, "profile": chosen, **job.choice.to_dict()})
        _verify_uncarried(pkg, portable, report)
        _write_report(tmp, report, stems)
    if upload:
        report.uploads = module.upload(report, dict(options or {}))
    return report


def _verify_uncarried(pkg, portable, report: CloudReport) -> None:
    """Every file of the package the output does not carry (ISO images, other profiles' disks...) is read
    through the package reader all the same: confined to the package and checked against the manifest,
    so a reference outside the package or altered content stops the conversion as it does for the other
    targets."""
    carried = {f["source"] for f in report.files if f.get("source")}
    for f in portable.files:
        if f.href not in carried:   # missing or outside the package: the reader refuses, as for every target
            for _ in pkg.file(f.href).blocks():
                pass


def _write_report(tmp: str, report: CloudReport, stems: set[str]) -> None:
    name = (next(iter(stems)) if len(stems) == 1 else "conversion") + ".report.json"
    report.documents.append({"href": name, "what": "conversion report (mapped, converted, dropped, findings)"})
    doc = report.to_dict()
    doc["output"] = report.output
    with open(os.path.join(tmp, name), "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.chmod(os.path.join(tmp, name), 0o644)
