"""Write a :class:`~vmferry.portable.PortablePackage` as an OVF descriptor in one target's dialect.

The output is built fresh (the target demands it: other namespaces, other spellings, OVF 1.x items
instead of 2.x ones), so every decision is recorded as a :class:`Change`: what was mapped, what was
converted, what was dropped. Elements are written in the order the DMTF schema requires (RASD and VSSD
properties are alphabetical sequences), so that the generic profile validates against DSP8023.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from vmferry.ovf import names as N
from vmferry.ovf.formats import FORMAT_URIS
from vmferry.portable import PortablePackage, PortableVM, ProductInfo, Variant
from vmferry.tables import controllers, nics
from vmferry.tables.targets import Target

RASD_ORDER = ("Address", "AddressOnParent", "AllocationUnits", "AutomaticAllocation", "AutomaticDeallocation",
              "Caption", "Connection", "ConsumerVisibility", "Description", "ElementName", "HostResource",
              "InstanceID", "Limit", "MappingBehavior", "OtherResourceType", "Parent", "PoolID", "Reservation",
              "ResourceSubType", "ResourceType", "VirtualQuantity", "VirtualQuantityUnits", "Weight")


@dataclass(frozen=True)
class Change:
    kind: str        # "mapped", "converted", "dropped", "added", "kept"
    what: str
    detail: str = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "what": self.what, "detail": self.detail}


class _Writer:
    def __init__(self, pkg: PortablePackage, style: Target) -> None:
        if style.ovf is None:
            raise ValueError(f"target {style.name} has no OVF dialect")
        self.pkg = pkg
        self.style = style
        self.dialect = style.ovf
        self.ovf = N.OVF_1 if self.dialect.version == "1.x" else N.OVF_2
        self.changes: list[Change] = []
        nsmap = {None: self.ovf, "ovf": self.ovf, "rasd": N.RASD, "vssd": N.VSSD, "xsi": N.XSI}
        nsmap.update({role: N.CANONICAL[role] for role in self.dialect.vendor_ns})
        self.nsmap = nsmap

    # -- small builders -------------------------------------------------------------------------
    def q(self, local: str) -> str:
        return f"{{{self.ovf}}}{local}"

    def el(self, parent, local: str, text: str | None = None, **attrs) -> etree._Element:
        e = etree.SubElement(parent, self.q(local))
        for k, v in attrs.items():
            if v is not None:
                e.set(self.q(k), str(v))
        if text is not None:
            e.text = text
        return e

    def section(self, parent, name: str, info: str) -> etree._Element:
        sec = self.el(parent, name)
        self.el(sec, "Info", info)
        return sec

    def item(self, parent, props: dict[str, object], profiles: tuple[str, ...] | None = None,
             required: bool | None = None) -> etree._Element:
        it = self.el(parent, "Item")
        if profiles:
            it.set(self.q("configuration"), " ".join(profiles))
        if required is False:
            it.set(self.q("required"), "false")
        for name in RASD_ORDER:
            value = props.get(name)
            if value is None:
                continue
            for v in (value if isinstance(value, list) else [value]):
                etree.SubElement(it, f"{{{N.RASD}}}{name}").text = str(v)
        return it

    # -- envelope -------------------------------------------------------------------------------
    def envelope(self, files) -> etree._Element:
        root = etree.Element(self.q("Envelope"), nsmap=self.nsmap)
        root.set(self.q("version"), self.dialect.declared_version)
        refs = self.el(root, "References")
        for f in files:
            self.el(refs, "File", href=f.href, id=f.id, size=f.size, compression=f.compression,
                    chunkSize=f.chunk_size)
        disks = [d for vm in self.pkg.systems for d in vm.disks] + list(self.pkg.spare_disks)
        if disks:
            sec = self.section(root, "DiskSection", "Virtual disk information")
            seen = set()
            for d in disks:
                if d.id in seen:
                    continue
                seen.add(d.id)
                fmt_uri = FORMAT_URIS.get(d.format or "", d.format_uri) if d.file_id else None
                self.el(sec, "Disk", capacity=d.capacity_bytes if d.capacity_bytes is not None else 0,
                        capacityAllocationUnits="byte", diskId=d.id, fileRef=d.file_id, format=fmt_uri,
                        populatedSize=d.populated_bytes)
        if self.pkg.networks:
            sec = self.section(root, "NetworkSection", "The list of logical networks")
            for name, desc in self.pkg.networks:
                net = self.el(sec, "Network", name=name)
                self.el(net, "Description", desc or name)
        if self.pkg.profiles:
            sec = self.section(root, "DeploymentOptionSection", "Deployment profiles")
            for p in self.pkg.profiles:
                cfg = self.el(sec, "Configuration", id=p.id, default="true" if p.default else None)
                self.el(cfg, "Label", p.label or p.id)
                self.el(cfg, "Description", p.description or p.label or p.id)
        if self.pkg.collection_id is not None:
            coll = self.el(root, "VirtualSystemCollection", id=self.pkg.collection_id)
            self.el(coll, "Info", "A collection of virtual systems")
            if self.pkg.startup:
                sec = self.section(coll, "StartupSection", "Startup order of the virtual systems")
                for s in self.pkg.startup:
                    self.el(sec, "Item", id=s.id, order=s.order if s.order is not None else 0,
                            startDelay=s.start_delay, stopDelay=s.stop_delay, startAction=s.start_action,
                            stopAction=s.stop_action, waitingForGuest="true" if s.wait_for_guest else None)
            for product in self.pkg.collection_products:
                self.product(coll, product)
            for vm in self.pkg.systems:
                self.system(coll, vm)
        else:
            for vm in self.pkg.systems:
                self.system(root, vm)
        return root

    def system(self, parent, vm: PortableVM) -> None:
        vs = self.el(parent, "VirtualSystem", id=vm.id)
        self.el(vs, "Info", vm.info or "A virtual machine")
        if vm.name:
            self.el(vs, "Name", vm.name)
        if vm.annotation:
            sec = self.section(vs, "AnnotationSection", "A human-readable annotation")
            self.el(sec, "Annotation", vm.annotation)
        for product in vm.products:
            self.product(vs, product)
        for text in vm.eulas:
            sec = self.section(vs, "EulaSection", "License agreement")
            self.el(sec, "License", text)
        self.operating_system(vs, vm)
        self.hardware(vs, vm)
        for np in vm.not_portable:
            if not (self.dialect.keep_vendor_config and np.origin == "vmware" and np.what.startswith("vmw:Config")):
                self.changes.append(Change("dropped", np.what, f"{np.origin}: {np.detail}"[:160]))

    def product(self, parent, product: ProductInfo) -> None:
        sec = self.el(parent, "ProductSection")
        if product.product_class:
            sec.set(self.q("class"), product.product_class)
        if product.instance:
            sec.set(self.q("instance"), product.instance)
        self.el(sec, "Info", product.info or "Information about the installed software")
        for local, value in (("Product", product.product), ("Vendor", product.vendor), ("Version", product.version),
                             ("FullVersion", product.full_version), ("ProductUrl", product.product_url),
                             ("VendorUrl", product.vendor_url)):
            if value:
                self.el(sec, local, value)
        category = None
        for p in product.properties:
            if p.category and p.category != category:
                self.el(sec, "Category", p.category)
                category = p.category
            prop = self.el(sec, "Property", key=p.key, type=p.type or "string", qualifiers=p.qualifiers,
                           userConfigurable="true" if p.user_configurable else None, value=p.value or "",
                           password="true" if p.password else None)
            if p.label:
                self.el(prop, "Label", p.label)
            if p.description:
                self.el(prop, "Description", p.description)
            for v in p.values:
                value = self.el(prop, "Value", value=v.value)
                if v.profiles:
                    value.set(self.q("configuration"), " ".join(v.profiles))

    def operating_system(self, parent, vm: PortableVM) -> None:
        from vmferry.targets import osmap

        known = vm.os.cim_id is not None or vm.os.vmware or vm.os.virtualbox or vm.os.libosinfo
        if not known and self.style.name != "vmware":
            return  # nothing to state: the target chooses at import (VMF-OS-002)
        cim = vm.os.cim_id if vm.os.cim_id is not None else osmap.cim_for(vm.os)
        sec = self.el(parent, "OperatingSystemSection", id=cim if cim is not None else 1, version=vm.os.version)
        self.el(sec, "Info", "The kind of installed guest operating system")
        self.el(sec, "Description", vm.os.description or f"CIM OS {cim}")
        style = self.dialect
        if style.os_attr == "vmw:osType":
            guest = osmap.vmware_for(vm.os)
            sec.set(f"{{{N.VMW}}}osType", guest)
            if guest != vm.os.vmware:
                self.changes.append(Change("mapped", "guest OS type",
                                           f"{vm.os.vmware or vm.os.virtualbox or cim} -> {guest}"))
        if style.os_element == "vbox:OSType":
            ostype = osmap.virtualbox_for(vm.os)
            e = etree.SubElement(sec, f"{{{N.VBOX}}}OSType")
            e.set(self.q("required"), "false")
            e.text = ostype
            if ostype != vm.os.virtualbox:
                self.changes.append(Change("mapped", "guest OS type",
                                           f"{vm.os.vmware or vm.os.virtualbox or cim} -> {ostype}"))

    def families(self, vm: PortableVM) -> list[str]:
        from vmferry.targets import osmap

        style = self.style
        src = vm.hardware_family
        if style.name == "dmtf":
            return src
        kept = [f for f in src if any(f.startswith(p) for p in style.accepts_family)]
        if kept:
            return kept
        family = osmap.family_for(style.name, vm) or style.default_family
        self.changes.append(Change("mapped", "hardware family", f"{' '.join(src) or '(none)'} -> {family}"))
        return [family] if family else []

    def hardware(self, parent, vm: PortableVM) -> None:
        style = self.style
        hw = self.section(parent, "VirtualHardwareSection", "Virtual hardware requirements")
        if vm.transports:
            hw.set(self.q("transport"), " ".join(vm.transports))
        system = self.el(hw, "System")
        for name, value in (("ElementName", "Virtual Hardware Family"), ("InstanceID", "0"),
                            ("VirtualSystemIdentifier", vm.name or vm.id),
                            ("VirtualSystemType", " ".join(self.families(vm)) or None)):
            if value is not None:
                etree.SubElement(system, f"{{{N.VSSD}}}{name}").text = value
        next_id = _IdAllocator(vm)
        self._cpu_memory(hw, vm, next_id)
        for c in vm.controllers:
            rt, sub = self._controller_spelling(vm, c)
            if rt is None:
                continue
            self.item(hw, {"Address": c.address or "0", "ElementName": f"{c.kind.upper()} controller {c.id}",
                           "InstanceID": c.id, "ResourceSubType": sub, "ResourceType": rt}, c.profiles)
        fallback = next((c.id for c in vm.controllers if c.kind == "ide"), None)
        for d in vm.disks:
            parent_id = d.controller_id if self._controller_kept(vm, d.controller_id) else fallback
            self.item(hw, {"AddressOnParent": d.address, "ElementName": d.name or f"disk {d.id}",
                           "HostResource": f"ovf:/disk/{d.id}", "InstanceID": d.instance_id or next_id(),
                           "Parent": parent_id, "ResourceType": 17}, d.profiles)
        for drv in vm.drives:
            parent_id = drv.controller_id if self._controller_kept(vm, drv.controller_id) else fallback
            self.item(hw, {"AddressOnParent": drv.address, "AutomaticAllocation": "false",
                           "ElementName": drv.kind, "HostResource": f"ovf:/file/{drv.file_id}" if drv.file_id else None,
                           "InstanceID": drv.instance_id or next_id(), "Parent": parent_id,
                           "ResourceType": 14 if drv.kind == "floppy" else 15}, drv.profiles, required=False)
        for nic in vm.nics:
            sub = self._nic_spelling(nic)
            self.item(hw, {"Address": nic.mac, "AutomaticAllocation": "true", "Connection": nic.network,
                           "ElementName": nic.name or f"ethernet{nic.index}",
                           "InstanceID": nic.instance_id or next_id(), "ResourceSubType": sub,
                           "ResourceType": 10}, nic.profiles)
        kinds = {"serial": 21, "parallel": 22, "usb": 23, "sound": 35, "video": 24}
        for dev in vm.devices:
            if dev.kind not in kinds:
                self.changes.append(Change("dropped", f"device {dev.name or dev.instance_id}",
                                           f"{dev.kind} {dev.model or ''} has no portable meaning"))
                continue
            self.item(hw, {"ElementName": dev.name or dev.kind, "InstanceID": dev.instance_id or next_id(),
                           "ResourceSubType": dev.model if style.name != "dmtf" or dev.kind != "usb" else dev.model,
                           "ResourceType": kinds[dev.kind]}, dev.profiles, required=False)
        if self.dialect.keep_vendor_config and vm.firmware.kind == "efi":
            cfg = etree.SubElement(hw, f"{{{N.VMW}}}Config")
            cfg.set(self.q("required"), "false")
            cfg.set(f"{{{N.VMW}}}key", "firmware")
            cfg.set(f"{{{N.VMW}}}value", "efi")
        elif vm.firmware.kind == "efi":
            self.changes.append(Change("dropped", "firmware", f"EFI firmware cannot be stated in {style.name}'s "
                                       "OVF; set it at deployment"))

    def _cpu_memory(self, hw, vm: PortableVM, next_id) -> None:
        cpu_id, mem_id = next_id(), next_id()
        for v in vm.cpus:
            it = self.item(hw, {"AllocationUnits": "hertz * 10^6", "Description": "Number of virtual CPUs",
                                "ElementName": f"{v.value.count} virtual CPU(s)", "InstanceID": cpu_id,
                                "ResourceType": 3, "VirtualQuantity": v.value.count}, v.profiles)
            if self.dialect.keep_vendor_config and v.value.cores_per_socket:
                cps = etree.SubElement(it, f"{{{N.VMW}}}CoresPerSocket")
                cps.set(self.q("required"), "false")
                cps.text = str(v.value.cores_per_socket)
        for v in vm.memory_mib:
            self.item(hw, {"AllocationUnits": "byte * 2^20", "Description": "Memory Size",
                           "ElementName": f"{v.value}MB of memory", "InstanceID": mem_id, "ResourceType": 4,
                           "VirtualQuantity": v.value}, v.profiles)

    def _nic_spelling(self, nic) -> str | None:
        """The ResourceSubType for a NIC (targets table through :mod:`vmferry.tables.nics`); None: none."""
        if not nic.model:
            return None
        choice = nics.best_nic(self.style.name, nics.nic_models(nic.source_model) or (nic.model,))
        sub = choice.value
        first = nic.source_model.split()[0] if nic.source_model else ""
        if choice.exact and first and sub.lower() == first.lower():
            return first  # the source's own spelling, when it means the same
        if nic.source_model and sub.lower() != nic.source_model.lower():
            detail = f"{nic.source_model} -> {sub}" + ("" if choice.exact else f" ({choice.note})")
            self.changes.append(Change("mapped", f"NIC {nic.index} model", detail[:200]))
        return sub

    def _controller_choice(self, vm: PortableVM, c) -> tuple[int | None, str | None, str | None]:
        """(ResourceType, ResourceSubType, change detail) for a controller; (None, None, why) when it is
        dropped and its devices move to the VM's IDE controller."""
        if c.kind == "usb":
            return 23, c.source_model, None
        if c.kind not in controllers.KINDS:
            return None, None, f"{c.kind} {c.model or ''}: {self.style.name} has no such controller; its devices " \
                "move to IDE"
        model = c.model if c.model in controllers.MODELS[c.kind] else None
        ch = controllers.controller_for_target(self.style.name, c.kind, model)
        if ch.kind == "ide" and c.kind != "ide" and any(x.kind == "ide" for x in vm.controllers):
            return None, None, f"{c.kind} {c.model or ''}: {self.style.name} has no such controller; its devices " \
                f"move to IDE ({ch.note})"
        detail = None
        spelled = (c.source_model or "").lower() != (ch.subtype or "").lower()
        if ch.kind != c.kind or (spelled and (c.source_model or c.kind == "sata")):
            what = f"ResourceType {ch.resource_type} {ch.subtype or ''}".strip()
            detail = f"{c.source_model or c.kind} -> {what}" + ("" if ch.exact else f" ({ch.note})")
        return ch.resource_type, ch.subtype, detail

    def _controller_spelling(self, vm: PortableVM, c) -> tuple[int | None, str | None]:
        rt, sub, detail = self._controller_choice(vm, c)
        if rt is None:
            self.changes.append(Change("dropped", f"controller {c.id}", detail or ""))
        elif detail:
            self.changes.append(Change("mapped", f"{c.kind.upper()} controller {c.id}", detail))
        return rt, sub

    def _controller_kept(self, vm: PortableVM, controller_id: str | None) -> bool:
        c = vm.controller(controller_id)
        return c is not None and self._controller_choice(vm, c)[0] is not None


class _IdAllocator:
    """New InstanceIDs that do not collide with those the VM already uses."""

    def __init__(self, vm: PortableVM) -> None:
        used = {c.id for c in vm.controllers}
        used |= {d.instance_id for d in vm.disks} | {d.instance_id for d in vm.drives}
        used |= {n.instance_id for n in vm.nics} | {d.instance_id for d in vm.devices}
        self.used = {u for u in used if u}
        self.n = 0

    def __call__(self) -> str:
        while True:
            self.n += 1
            cand = str(100 + self.n)
            if cand not in self.used:
                self.used.add(cand)
                return cand


def write_descriptor(pkg: PortablePackage, style: Target, files=None) -> tuple[bytes, list[Change]]:
    """The descriptor bytes for ``style`` and the list of changes made."""
    writer = _Writer(pkg, style)
    if pkg.source_version == "2.x" and style.ovf is not None and style.ovf.version == "1.x":
        writer.changes.append(Change("converted", "OVF version", "2.x StorageItem/EthernetPortItem -> 1.x Item"))
    if pkg.source_version == "0.9":
        writer.changes.append(Change("converted", "OVF version", "0.9 typed Sections -> 1.x named sections"))
    root = writer.envelope(files if files is not None else pkg.files)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data, writer.changes


__all__ = ["Change", "write_descriptor", "Variant"]
