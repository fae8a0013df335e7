"""``check --target T`` rules of the cloud targets (rows with ``output == "cloud"``): the framework's own
(VMF-CLOUD-0xx, from the row's :class:`~vmferry.tables.targets.CloudSpec`) and each writer module's
``rules(portable, vm, row)``. Read by :func:`vmferry.checks.portability.portability_findings`; every
finding says whether ``convert`` fixes it (``fixed_by``). Documented in docs/rules.md.
"""

from __future__ import annotations

from vmferry.findings import Finding
from vmferry.portable import PortablePackage
from vmferry.tables.targets import Target


def cloud_findings(portable: PortablePackage, row: Target) -> list[Finding]:
    from vmferry.targets.clouds import writer_module

    spec = row.cloud
    if spec is None:
        return []
    out: list[Finding] = []
    module = writer_module(row.name)
    for vm in portable.systems:
        disks = vm.disks
        if spec.max_disks is not None and len(disks) > spec.max_disks:
            out.append(Finding("VMF-CLOUD-002", "error", f"{len(disks)} disks: {row.name} takes {spec.max_disks} "
                               "per VM", vm.id, "move data to fewer, larger disks at the source"))
        for d in disks:
            if d.capacity_bytes and spec.size_align > 1 and d.capacity_bytes % spec.size_align:
                out.append(Finding("VMF-CLOUD-003", "warning", f"disk {d.id} holds {d.capacity_bytes} bytes, not a "
                                   f"multiple of {_size(spec.size_align)} as {row.name} requires", vm.id,
                                   f"convert grows it to the next multiple of {_size(spec.size_align)}", "convert"))
        boot = disks[0] if disks else None
        if boot is not None and spec.max_boot_disk_bytes and (boot.capacity_bytes or 0) > spec.max_boot_disk_bytes:
            out.append(Finding("VMF-CLOUD-005", "error", f"boot disk {boot.id} holds {boot.capacity_bytes} bytes: "
                               f"{row.name} boots from {_size(spec.max_boot_disk_bytes)} at most", vm.id,
                               "shrink the boot volume at the source"))
        if vm.properties():
            out.append(Finding("VMF-CLOUD-001", "warning", f"{len(vm.properties())} OVF properties: {row.name} has "
                               "no OVF environment, their values do not reach the guest", vm.id,
                               "pass them as instance metadata or cloud-init user data at deployment"))
        dropped = [d.kind for d in vm.drives] + [d.kind for d in vm.devices if d.kind in ("sound", "usb", "serial")]
        if dropped:
            out.append(Finding("VMF-CLOUD-006", "info", f"{', '.join(sorted(set(dropped)))} not carried: {row.name} "
                               "imports disk images", vm.id, "dropped and listed in the conversion report",
                               "convert"))
        if hasattr(module, "rules"):
            out += module.rules(portable, vm, row)
    return out


def _size(n: int) -> str:
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"
