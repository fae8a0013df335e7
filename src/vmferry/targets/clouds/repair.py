"""Guest repair for the cloud targets: the converted boot disk's Linux guest made to boot and keep its
network where the target runs it (:mod:`vmferry.guest.repair`), as ``convert --to kvm`` does.

The row's ``cloud.repair_for`` names the hypervisors whose drivers, tools and device naming the guest is
repaired for: ``kvm`` (virtio) for OpenStack, Compute Engine and Proxmox VE, ``aws`` (NVMe and ENA, or
Xen's) for EC2, ``hyperv`` (``hv_*``) for Azure and Hyper-V; the drivers of the hypervisor the package
came from are kept. Only the converted copy in the output being built is changed, never the package.

A disk format libguestfs cannot write (streamOptimized VMDK, AWS's default) is repaired as a raw copy
beside it, which is then written in that format again. NICs keep their MACs on targets whose output sets
them (``cloud.keeps_macs``: Hyper-V, Proxmox); elsewhere the cloud gives them its own, so configuration
bound to an interface name cannot be rebound by MAC and is reported (VMF-CLOUD-007).
"""

from __future__ import annotations

import contextlib
import os

from vmferry.targets.clouds.base import CloudJob

WRITABLE = ("raw", "vhd-fixed", "qcow2", "vhdx", "vhd", "vmdk-sparse")


def repair_boot_disk(job: CloudJob, settings: list | None = None) -> bool:
    """Repair the guest on ``job``'s written boot disk for ``job.row.cloud.repair_for`` and read the
    repaired guest into ``job.guest``. False when it was not repaired (no guest found: not inspected
    either; repair failed: the finding says why, the caller inspects it as it is)."""
    from vmferry.errors import VmferryError
    from vmferry.guest.netrepair import NicSetting
    from vmferry.guest.repair import merge_settings, repair_image
    from vmferry.targets.kvm import DIALECT_HYPERVISOR

    boot, cloud = job.boot_disk, job.row.cloud
    if boot is None or cloud is None or not cloud.repair_for:
        return False
    nics = job.vm.nics_for(job.profile)
    if cloud.keeps_macs:
        given = merge_settings([n.mac or "" for n in nics], list(settings or []))
    else:
        given = [NicSetting(i) for i in range(len(nics))]
    source = [hv] if (hv := DIALECT_HYPERVISOR.get(job.portable.source_dialect or "")) else None
    image = boot.path if boot.format in WRITABLE else _raw_copy(job, boot)
    try:
        try:
            result = repair_image(image, list(cloud.repair_for), nics=given, source=source, inspect=True)
        except VmferryError as exc:
            if "no operating system" in str(exc):
                job.finding("VMF-CLOUD-004", "warning", f"the guest on {boot.href} could not be inspected ({exc.message})"
                            ": the disk bus and NIC model are a guess", "run 'vmferry guest' on the disk and check them")
                return True
            job.finding("VMF-CLOUD-007", "warning", f"the guest of '{job.vm.id}' was not repaired for "
                        f"{job.row.name}: {exc.message}", "run 'vmferry guest repair' on the converted disk")
            return False
        if image != boot.path and result.changes and not result.dry_run:
            _write_back(job, boot, image)
    finally:
        if image != boot.path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(image)
    result.image = boot.href
    job.report.repairs.append({"system": job.vm.id, **result.to_dict()})
    for c in result.changes:
        job.change("repaired", f"guest {c.file}", c.reason)
    for problem in result.problems:
        fix = "repair this by hand in the guest"
        if not cloud.keeps_macs and "MAC" in problem:
            fix = (f"{job.row.name} gives the NICs MACs of its own: configure the guest's network by DHCP on any "
                   "interface (or with cloud-init) rather than by interface name")
        job.finding("VMF-CLOUD-007", "warning", f"guest repair of '{job.vm.id}' for {job.row.name}: {problem}", fix)
    job.guest = result.guest
    return True


def _raw_copy(job: CloudJob, boot) -> str:
    """A raw copy of the boot disk in the output being built (hidden name), for a format libguestfs
    cannot write."""
    from vmferry.disks.convert import convert_disk, open_disk

    tmp = os.path.join(job.workdir, f".{boot.href}.repair.raw")
    convert_disk(open_disk(boot.path), tmp, "raw", force=True)
    return tmp


def _write_back(job: CloudJob, boot, raw: str) -> None:
    """The repaired raw copy written in the boot disk's format again, in place of the unrepaired one."""
    from vmferry.disks.convert import convert_disk, open_disk

    convert_disk(open_disk(raw), boot.path, boot.format, force=True)
    for f in job.report.files:
        if f["href"] == boot.href:
            f["size"] = os.path.getsize(boot.path)
