"""OS ids and hardware families for a target, through :mod:`vmferry.tables` (the translation tables)."""

from __future__ import annotations

from vmferry.portable import OsSpec, PortableVM


def cim_for(os: OsSpec) -> int:
    from vmferry.tables import os as ostable

    return ostable.to_cim(os)


def vmware_for(os: OsSpec) -> str:
    """The source's own guestId when the tables know it, else the mapped one."""
    from vmferry.tables import os as ostable

    if os.vmware and ostable.from_vmware(os.vmware) is not None:
        return os.vmware
    return ostable.to_vmware(os)


def virtualbox_for(os: OsSpec) -> str:
    from vmferry.tables import os as ostable

    if os.virtualbox and ostable.from_virtualbox(os.virtualbox) is not None:
        return os.virtualbox
    return ostable.to_virtualbox(os)


def family_for(target: str, vm: PortableVM) -> str | None:
    """The hardware family to write for ``target``, new enough for what the VM needs."""
    try:
        from vmferry.tables import families
    except ImportError:
        return None
    from vmferry.tables.controllers import native

    needs = set()  # only what the target will really be given (a vmxnet3 mapped to E1000 needs nothing)
    if any(c.kind == "sata" for c in vm.controllers) and native(target, "sata") is not None:
        needs.add("sata")
    if target == "vmware":
        if any(c.kind == "nvme" for c in vm.controllers):
            needs.add("nvme")
        if vm.firmware.kind == "efi":
            needs.add("efi")
        if vm.firmware.secure_boot:
            needs.add("secure_boot")
        if any(n.model == "vmxnet3" for n in vm.nics):
            needs.add("vmxnet3")
    return families.family_for(target, needs=needs)
