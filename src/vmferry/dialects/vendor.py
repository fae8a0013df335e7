"""Vendor facts with a portable meaning, harvested from vendor extensions (VMware firmware and cores per
socket, VirtualBox OS type and firmware, XenServer UEFI/secure boot/PV, Hyper-V generation 2); the rest
is listed as not portable. One function per vendor namespace role."""

from __future__ import annotations

from vmferry.ovf import names as N
from vmferry.ovf.envelope import Envelope, VirtualSystem
from vmferry.ovf.xmlmodel import localname, location
from vmferry.portable import NonPortable, PortableVM

HYPERV_GEN2 = "Microsoft:Hyper-V:SubType:2"
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
        elif role == "xenovf" and local == "VirtualSystemOtherConfigurationData":
            _xen_other_config(el, vm)
        elif role == "vbox" and local == "OSType":
            vm.os.virtualbox = (el.text or "").strip() or None
        elif role == "vbox" and local == "Machine":
            _vbox_machine(el, vm)
        else:
            vm.not_portable.append(NonPortable(VENDOR_ROLES[role], f"{role}:{local}",
                                               (el.text or "").strip()[:80], location(el)))
    if hw is not None and any(f.casefold() == HYPERV_GEN2.casefold() for f in hw.system_types):
        vm.firmware.kind = "efi"      # Hyper-V generation 2 machines boot with UEFI only
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


def _pairs(value: str) -> dict[str, str]:
    """``k1=v1;k2=v2`` (XenServer's map values in OVF) as a dict; a value without ``=`` gives ``{}``."""
    out = {}
    for part in value.split(";"):
        key, eq, val = part.partition("=")
        if eq:
            out[key.strip().lower()] = val.strip()
    return out


def _xen_other_config(el, vm: PortableVM) -> None:
    """Citrix XenServer/XenCenter's ``xenovf:VirtualSystemOtherConfigurationData Name="..."`` with a
    ``Value`` child (XenAdmin ``OVF.AddOtherSystemSettingData``): the VM's XenAPI fields. Portable:
    UEFI (``HVM_boot_params`` ``firmware=uefi``), secure boot (``platform`` ``secureboot=true``); a PV
    guest (empty ``HVM_boot_policy``) is named as such; the rest is XenServer's own."""
    name = el.get("Name") or next((v for k, v in el.attrib.items() if k.endswith("}Name")), "")
    value = next(((c.text or "").strip() for c in el if isinstance(c.tag, str) and localname(c) == "Value"), "")
    key = name.replace("-", "_")
    if key == "HVM_boot_params" and _pairs(value).get("firmware", "").lower() == "uefi":
        vm.firmware.kind = "efi"
        return
    if key == "platform" and _pairs(value).get("secureboot", "").lower() == "true":
        vm.firmware.secure_boot = True
    if key == "HVM_boot_policy":
        if not value:
            vm.not_portable.append(NonPortable("xen", "xenovf HVM_boot_policy", "empty: a paravirtualised (PV) "
                                               "guest, booted by XenServer's PV bootloader; elsewhere it needs "
                                               "an HVM-capable kernel and bootloader", location(el)))
        return  # "BIOS order": a fully virtualised (HVM) guest, as every other target runs it
    vm.not_portable.append(NonPortable("xen", f"xenovf {name}", value[:80], location(el)))
