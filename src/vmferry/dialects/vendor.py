"""Vendor facts with a portable meaning, harvested from vendor extensions; the rest is listed as not
portable. One function per vendor namespace role, in a plain table."""

from __future__ import annotations

from vmferry.ovf import names as N
from vmferry.ovf.envelope import Envelope, VirtualSystem
from vmferry.ovf.xmlmodel import localname, location
from vmferry.portable import NonPortable, PortableVM

VENDOR_ROLES = {"vmw": "vmware", "vbox": "virtualbox", "xenovf": "xen", "hyperv": "hyperv", "ovirt": "ovirt"}


def _role(tag_or_key: str) -> str | None:
    if tag_or_key.startswith("{"):
        return N.role_of(tag_or_key[1:].split("}", 1)[0])
    return None


def _vmw_get(el, name: str) -> str | None:
    for key, value in el.attrib.items():
        if key.endswith("}" + name):
            return value
    return None


def harvest(env: Envelope, system: VirtualSystem, vm: PortableVM) -> None:
    hw = system.hardware
    cores = {}
    for el in system.element.iter():
        if not isinstance(el.tag, str):
            continue
        role = _role(el.tag)
        local = localname(el)
        # attributes in vendor namespaces on standard elements (a vendor element is reported whole)
        for key, value in (el.attrib.items() if role not in VENDOR_ROLES else ()):
            arole = _role(key)
            if arole in VENDOR_ROLES:
                aname = key.split("}", 1)[1]
                if arole == "vmw" and aname == "osType":
                    vm.os.vmware = value
                    continue
                vm.not_portable.append(NonPortable(VENDOR_ROLES[arole], f"{arole}:{aname}", value,
                                                   location(el)))
        if role not in VENDOR_ROLES:
            continue
        parent = el.getparent()
        if parent is not None and _role(parent.tag) in VENDOR_ROLES:
            continue  # reported with its vendor parent
        if role == "vmw" and local == "Config":
            key, value = _vmw_get(el, "key"), _vmw_get(el, "value")
            if key == "firmware" and value:
                vm.firmware.kind = "efi" if value.lower() == "efi" else "bios"
                continue
            if key == "uefi.secureBoot.enabled" and value:
                vm.firmware.secure_boot = value.lower() == "true"
                continue
            vm.not_portable.append(NonPortable("vmware", f"vmw:Config {key}", value or "", location(el)))
        elif role == "vmw" and local == "CoresPerSocket":
            iid = next((c.text for c in parent if isinstance(c.tag, str) and localname(c).lower() == "instanceid"),
                       None) if parent is not None else None
            try:
                cores[iid] = int((el.text or "").strip())
            except ValueError:
                vm.not_portable.append(NonPortable("vmware", "vmw:CoresPerSocket", el.text or "", location(el)))
        elif role == "vbox" and local == "OSType":
            vm.os.virtualbox = (el.text or "").strip() or None
        elif role == "vbox" and local == "Machine":
            _vbox_machine(el, vm)
        else:
            vm.not_portable.append(NonPortable(VENDOR_ROLES[role], f"{role}:{local}",
                                               (el.text or "").strip()[:80], location(el)))
    if hw is not None and cores:
        for item in hw.items:
            if item.instance_id in cores:
                for variant in vm.cpus:
                    if variant.value.count == item.virtual_quantity:
                        variant.value.cores_per_socket = cores[item.instance_id]


def _vbox_machine(machine, vm: PortableVM) -> None:
    """VirtualBox's machine blob: firmware and OS type are portable; the rest is VirtualBox's own."""
    for el in machine.iter():
        if not isinstance(el.tag, str):
            continue
        name = localname(el)
        if name == "Firmware" and (el.get("type") or "").upper().startswith("EFI"):
            vm.firmware.kind = "efi"
        elif name == "Machine" and el.get("OSType") and not vm.os.virtualbox:
            vm.os.virtualbox = el.get("OSType")
    vm.not_portable.append(NonPortable("virtualbox", "vbox:Machine", "VirtualBox machine settings (ExtraData, "
                                       "GUI, storage attachments, ...)", location(machine)))
