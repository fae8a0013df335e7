"""Read an :class:`~vmferry.ovf.Envelope` of any dialect into a :class:`~vmferry.portable.PortablePackage`.

The generic DMTF reading is done here once; vendor facts that have a portable meaning (VMware's
firmware and cores per socket, VirtualBox's OS type and firmware) are harvested by
:mod:`vmferry.dialects.vendor`, and every vendor element or attribute that has none is listed in
``not_portable`` with its origin and location.
"""

from __future__ import annotations

from vmferry.dialects import ovirt, vendor, vocab
from vmferry.ovf.envelope import Envelope, VirtualSystem, VirtualSystemCollection
from vmferry.ovf.hardware import Item
from vmferry.ovf.rasd import ResourceType
from vmferry.portable import (
    Controller,
    Cpu,
    Device,
    Disk,
    Drive,
    FileSpec,
    Nic,
    NonPortable,
    OsSpec,
    PortablePackage,
    PortableVM,
    ProductInfo,
    Profile,
    PropertySpec,
    StartupEntry,
    Variant,
)

RT = ResourceType
DEVICE_KINDS = {RT.SERIAL_PORT: "serial", RT.PARALLEL_PORT: "parallel", RT.USB_CONTROLLER: "usb",
                RT.SOUND_CARD: "sound", RT.GRAPHICS_CONTROLLER: "video", RT.OTHER: "other",
                RT.IEEE_1394_CONTROLLER: "firewire"}
NIC_TYPES = {int(RT.ETHERNET_ADAPTER), int(RT.OTHER_NETWORK_ADAPTER), int(RT.ETHERNET_CONNECTION)}
CONTROLLER_TYPES = {int(RT.IDE_CONTROLLER), int(RT.PARALLEL_SCSI_HBA), int(RT.OTHER_STORAGE_DEVICE),
                    int(RT.FC_HBA), int(RT.ISCSI_HBA)}


def _profiles(item: Item) -> tuple[str, ...] | None:
    configs = item.configurations
    return tuple(sorted(configs)) if configs else None


def _host_id(item: Item, kind: str) -> str | None:
    for res in item.host_resources:
        r = res.strip()
        for prefix in (f"ovf:/{kind}/", f"/{kind}/", f"ovf://{kind}/"):
            if r.startswith(prefix):
                return r[len(prefix):]
    return None


def read_products(system: VirtualSystem) -> list[ProductInfo]:
    out = []
    for ps in system.product_sections:
        props = []
        for p in ps.properties():
            values = [Variant(v.value, tuple(v.configuration.split()) if v.configuration else None)
                      for v in p.values()]
            props.append(PropertySpec(key=p.key or "", type=p.type or "string", value=p.default, values=values,
                                      qualifiers=p.qualifiers, user_configurable=p.user_configurable,
                                      password=p.password, label=p.label, description=p.description,
                                      category=p.category))
        out.append(ProductInfo(ps.product_class, ps.instance, ps.product, ps.vendor, ps.version,
                               ps.full_version, ps.product_url, ps.vendor_url, ps.info, props))
    return out


def _cpu(item: Item) -> Cpu:
    """The CPUs of a processor Item, with oVirt's topology when it states one."""
    topology = item.cpu_topology
    cpu = Cpu(item.cpu_count or 1)
    if topology is not None and topology[0] * topology[1] * topology[2] == cpu.count:
        cpu.cores_per_socket, cpu.threads_per_core = topology[1], topology[2]
    return cpu


def read_system(env: Envelope, system: VirtualSystem, dialect: str | None = None) -> PortableVM:
    vm = PortableVM(id=system.id or "vm", name=system.name, info=system.info)
    os_sec = system.operating_system
    if os_sec is not None:
        vm.os = OsSpec(cim_id=os_sec.cim_id, description=os_sec.description, version=os_sec.version)
        if dialect == "ovirt" or os_sec.ovirt_id:
            ovirt.read_os(os_sec, vm.os)
    hw = system.hardware
    if hw is not None:
        vm.hardware_family = hw.system_types
        if hw.transport:
            vm.transports = hw.transport.split()
        nic_index = 0
        for item in hw.items:
            rt = item.resource_type
            profiles = _profiles(item)
            kind = ovirt.device_kind(item) if dialect == "ovirt" else None
            if kind is not None:
                vm.devices.append(Device(kind, item.get("Device"), profiles, item.instance_id, item.element_name))
                continue
            if rt == RT.PROCESSOR and item.cpu_count is not None:
                vm.cpus.append(Variant(_cpu(item), profiles))
            elif rt == RT.MEMORY and item.memory_mib is not None:
                vm.memory_mib.append(Variant(item.memory_mib, profiles))
            elif rt in CONTROLLER_TYPES:
                kind, model = vocab.controller(rt, item.resource_subtype)
                vm.controllers.append(Controller(item.instance_id or "", kind, model, item.resource_subtype,
                                                 profiles, item.get("Address")))
            elif rt == RT.DISK_DRIVE:
                ddef = next((d for d in map(env.disk_for_host_resource, item.host_resources) if d is not None),
                            None)
                if ddef is None:
                    vm.not_portable.append(NonPortable(
                        "descriptor", f"disk Item {item.instance_id}",
                        f"HostResource {item.host_resources or '(none)'} names no Disk of DiskSection",
                        item.location))
                    continue
                backing = env.file_for_ref(ddef.file_ref)
                file_ref = backing.id if backing is not None else None
                if ddef.file_ref and file_ref is None:
                    vm.not_portable.append(NonPortable(
                        "descriptor", f"Disk {ddef.disk_id} fileRef",
                        f"'{ddef.file_ref}' is not in References: the disk is written blank", ddef.location))
                controller_id = item.parent
                bus = ovirt.disk_controller(ddef) if controller_id is None else None
                if bus is not None:
                    controller_id = bus.id
                    if vm.controller(bus.id) is None:
                        vm.controllers.append(bus)
                vm.disks.append(Disk(
                    id=ddef.disk_id or "disk", name=item.element_name, capacity_bytes=ddef.capacity_bytes,
                    file_id=file_ref, format=ddef.format_name if file_ref else None,
                    format_uri=ddef.format if file_ref else None,
                    populated_bytes=ddef.populated_bytes if file_ref else None, controller_id=controller_id,
                    address=item.address_on_parent, profiles=profiles, instance_id=item.instance_id))
            elif rt in (RT.CD_DRIVE, RT.DVD_DRIVE, RT.FLOPPY_DRIVE):
                vm.drives.append(Drive("floppy" if rt == RT.FLOPPY_DRIVE else "cdrom", item.parent,
                                       item.address_on_parent, _host_id(item, "file"), profiles, item.instance_id))
            elif rt in NIC_TYPES:
                vm.nics.append(Nic(nic_index, item.connections[0] if item.connections else None,
                                   vocab.nic_model(item.resource_subtype),
                                   item.resource_subtype, item.mac, profiles, item.instance_id,
                                   item.element_name))
                nic_index += 1
            elif rt in DEVICE_KINDS:
                vm.devices.append(Device(DEVICE_KINDS[RT(rt)], item.resource_subtype, profiles, item.instance_id,
                                         item.element_name))
            else:
                vm.devices.append(Device("other", item.resource_subtype, profiles, item.instance_id,
                                         item.element_name))
    vm.products = read_products(system)
    vm.eulas = [e.license for e in system.eulas if e.license]
    vm.annotation = system.annotation.annotation if system.annotation else None
    vendor.harvest(env, system, vm)
    return vm


def read_envelope(env: Envelope, dialect: str | None = None) -> PortablePackage:
    top = env.entity
    pkg = PortablePackage(
        name=(top.name if top else None), systems=[read_system(env, s, dialect) for s in env.systems],
        networks=[(n.name or "", n.description) for n in env.networks],
        files=[FileSpec(f.id or "", f.href or "", f.size, f.compression, f.chunk_size) for f in env.references],
        profiles=[Profile(o.id or "", o.label, o.description, o.id == env.default_profile)
                  for o in env.deployment_options],
        source_dialect=dialect, source_version=env.version)
    if isinstance(top, VirtualSystemCollection):
        pkg.collection_id = top.id
        pkg.collection_products = read_products(top)
        pkg.startup = [StartupEntry(s.id or "", s.order, s.start_delay, s.stop_delay, s.start_action,
                                    s.stop_action, (s.wait_for_guest or "").lower() == "true")
                       for s in top.startup]
    attached = {d.id for vm in pkg.systems for d in vm.disks}
    for ddef in env.disks:
        if ddef.disk_id and ddef.disk_id not in attached:
            backing = env.file_for_ref(ddef.file_ref)
            file_ref = backing.id if backing is not None else None
            pkg.spare_disks.append(Disk(ddef.disk_id, ddef.capacity_bytes, file_ref,
                                        ddef.format_name if file_ref else None,
                                        ddef.format if file_ref else None, ddef.populated_bytes))
    for vm in pkg.systems:
        _fill_os(vm)
        _fill_net_config(vm)
    return pkg


def _fill_os(vm: PortableVM) -> None:
    """Complete the OS spec from whichever id the source gave (VMware guestId, VirtualBox OSType, CIM)."""
    from vmferry.tables import os as ostable
    from vmferry.tables.os_ovirt import from_ovirt

    row = from_ovirt(vm.os.ovirt) or ostable.resolve(vm.os)
    if row is None:
        return
    if vm.os.ovirt:
        vm.os.version = vm.os.version or row.version
    vm.os.family = vm.os.family or row.family
    vm.os.distro = vm.os.distro or row.distro
    vm.os.bits = vm.os.bits or row.bits
    vm.os.libosinfo = vm.os.libosinfo or row.libosinfo
    if vm.os.cim_id is None:
        vm.os.cim_id = row.cim


def _fill_net_config(vm: PortableVM) -> None:
    """Guest network settings from the properties, by whichever vendor convention they follow."""
    from vmferry import netconv

    props: dict[str, str] = {}
    for product in vm.products:
        for p in product.properties:
            if p.value is None:
                continue
            props.setdefault(p.key, p.value)
            # DSP0243 full key: class.key.instance (e.g. ovf:class="vmferry" + "net.0.address")
            full = ".".join(x for x in (product.product_class, p.key, product.instance) if x)
            props[full] = p.value
    if props:
        configs, _findings = netconv.read_properties(props)
        vm.net_config = dict(configs)
