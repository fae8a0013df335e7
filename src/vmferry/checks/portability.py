"""Portability rules: what a target will reject or silently lose, and what ``convert`` does about it.

``portability_findings(envelope, package, target)`` reads the envelope (for locations and raw
spellings) and the portable profile (for meaning). Each rule has a stable id, documented in
``docs/rules.md``; ``fix`` says what ``vmferry convert --to TARGET`` does automatically, and
``fixed_by="convert"`` says so as data (``None`` where the fix is left to the user).
"""

from __future__ import annotations

from vmferry.findings import Finding
from vmferry.ovf import names as N
from vmferry.ovf.envelope import Envelope
from vmferry.ovf.xmlmodel import localname, location
from vmferry.portable import PortablePackage, PortableVM
from vmferry.tables import controllers, nics
from vmferry.tables.targets import TARGETS

VMWARE_OUI = ("00:50:56", "00:0c:29", "00:05:69", "00:1c:14")
VBOX_OUI = ("08:00:27",)
GUESTINFO = "com.vmware.guestInfo"


def _f(rule, severity, message, where="", fix=None, by: str | None = "convert") -> Finding:
    """A finding whose ``fix`` (when there is one) ``vmferry convert`` applies, unless ``by`` says otherwise
    (``None``: the fix is the user's to apply)."""
    return Finding(rule, severity, message, where, fix, by if fix else None)


def portability_findings(env: Envelope, pkg: PortablePackage, target: str) -> list[Finding]:
    from vmferry.tables.targets import target as target_row

    target_row(target)  # an unknown target is a UsageError naming the known ones
    out: list[Finding] = []
    out += _version_rules(env, target)
    for vm in pkg.systems:
        out += _family_rules(vm, target, env)
        out += _os_rules(vm, target, env)
        out += _nic_rules(vm, target)
        out += _storage_rules(vm, pkg, target)
        out += _firmware_rules(vm, target)
        out += _extension_rules(vm, target)
        out += _device_rules(vm, target)
        out += _property_rules(vm, target)
    out += _package_rules(env, pkg, target)
    if TARGETS[target].cloud is not None:   # disk images and the target's documents: its own rules too
        from vmferry.targets.clouds.rules import cloud_findings

        out += cloud_findings(pkg, TARGETS[target])
    return out


def _version_rules(env: Envelope, target: str) -> list[Finding]:
    from vmferry.tables.targets import ovf_version_support

    out = []
    where = location(env.root)
    support = ovf_version_support(target, env.version)
    if env.version == "2.x" and support != "reads":
        items2 = [el for el in env.root.iter() if isinstance(el.tag, str)
                  and localname(el) in ("StorageItem", "EthernetPortItem")]
        if items2:
            out.append(_f("VMF-VER-001", "error", f"{len(items2)} OVF 2.x StorageItem/EthernetPortItem elements: "
                          f"{target} reads OVF 1.x Items only", location(items2[0]),
                          "rewritten as OVF 1.x rasd Items"))
        out.append(_f("VMF-VER-003", "error" if support == "refuses" else "warning",
                      f"OVF 2.x envelope: {target} imports OVF 1.x descriptors", where,
                      "written as OVF 1.x (envelope/1)"))
    if env.version == "0.9" and support == "refuses":
        out.append(_f("VMF-VER-002", "error", "OVF 0.9 is VMware's pre-standard format; other consumers reject it",
                      where, "rewritten as OVF 1.x with named sections"))
    if env.version == "0.9" and support == "deprecated":
        out.append(_f("VMF-VER-002", "warning", "OVF 0.9 is deprecated; current vSphere releases import 1.x",
                      where, "rewritten as OVF 1.x with named sections"))
    return out


def _family_rules(vm: PortableVM, target: str, env: Envelope) -> list[Finding]:
    out = []
    style = TARGETS[target]
    fam = vm.hardware_family
    if not fam:
        out.append(_f("VMF-FAM-003", "warning", f"system '{vm.id}' states no hardware family (VirtualSystemType)",
                      vm.id, "the target's default family is written" if style.default_family else None))
        return out
    if len(fam) > 1:
        out.append(_f("VMF-FAM-002", "info", f"system '{vm.id}' lists {len(fam)} hardware families "
                      f"({' '.join(fam)}); the target uses the first it knows", vm.id))
    if "" not in style.accepts_family:
        if not any(f.startswith(p) for f in fam for p in style.accepts_family):
            out.append(_f("VMF-FAM-001", "error", f"hardware family {' '.join(fam)} is not accepted by {target}",
                          vm.id, f"replaced by a {target} family ({style.default_family} or newer as the "
                          "hardware needs)"))
    if target == "vmware":
        from vmferry.tables import families

        for f in fam:
            info = families.family(f)
            if info is None or info.target != "vmware":
                continue
            counts = [v.value.count for v in vm.cpus]
            if info.max_vcpus and counts and max(counts) > info.max_vcpus:
                out.append(_f("VMF-CPU-001", "error", f"{max(counts)} vCPUs exceed the {info.max_vcpus} that {f} "
                              "allows", vm.id, "a newer vmx family is chosen"))
            mems = [v.value for v in vm.memory_mib]
            if info.max_memory_gib and mems and max(mems) > info.max_memory_gib * 1024:
                out.append(_f("VMF-MEM-001", "error", f"{max(mems)} MiB exceed the {info.max_memory_gib} GiB that "
                              f"{f} allows", vm.id, "a newer vmx family is chosen"))
            break
    return out


def _os_rules(vm: PortableVM, target: str, env: Envelope) -> list[Finding]:
    out = []
    os = vm.os
    if os.cim_id is None and not (os.vmware or os.virtualbox):
        out.append(_f("VMF-OS-002", "warning", f"system '{vm.id}' states no operating system", vm.id,
                      "VMware gets 'other' (otherGuest64); other targets choose the OS at import"))
        return out
    if os.cim_id in (0, 1) and not (os.vmware or os.virtualbox):
        out.append(_f("VMF-OS-001", "warning", f"system '{vm.id}' declares only CIM 'Other' ({os.cim_id}); "
                      f"{target} will pick a generic guest type", vm.id))
    from vmferry.tables import os as ostable

    if os.vmware and ostable.from_vmware(os.vmware) is None:
        out.append(_f("VMF-OS-003", "warning", f"VMware guest type '{os.vmware}' is not in vmferry's tables",
                      vm.id, "mapped from the CIM id instead"))
    if os.virtualbox and ostable.from_virtualbox(os.virtualbox) is None:
        out.append(_f("VMF-OS-003", "warning", f"VirtualBox OS type '{os.virtualbox}' is not in vmferry's tables",
                      vm.id, "mapped from the CIM id instead"))
    vendor_row = (ostable.from_vmware(os.vmware) if os.vmware else None) or \
        (ostable.from_virtualbox(os.virtualbox) if os.virtualbox else None)
    cim_of_vendor = getattr(vendor_row, "cim", None) if vendor_row is not None else None
    if cim_of_vendor is not None and os.cim_id is not None and os.cim_id not in (cim_of_vendor, 1) \
            and ostable.from_cim(os.cim_id) is not None \
            and getattr(ostable.from_cim(os.cim_id), "family", None) != getattr(vendor_row, "family", None):
        out.append(_f("VMF-OS-004", "warning", f"CIM OS id {os.cim_id} and vendor type "
                      f"'{os.vmware or os.virtualbox}' name different OS families", vm.id,
                      "the vendor type is trusted"))
    own = TARGETS[target].os_ids[:1]  # a target with an OS id scheme of its own (vmware, virtualbox)
    if own == (target,) and getattr(os, target, None) is None:
        out.append(_f("VMF-OS-005", "info", f"no {target} guest type in the source; mapped from "
                      f"{'the ' + ('VirtualBox' if os.virtualbox else 'VMware') + ' type' if (os.virtualbox or os.vmware) else 'CIM id ' + str(os.cim_id)}",
                      vm.id, f"the {target} type is written"))
    return out


def _nic_rules(vm: PortableVM, target: str) -> list[Finding]:
    out = []
    row = TARGETS[target]
    for nic in vm.nics:
        where = f"{vm.id} NIC {nic.index}"
        if nic.source_model and len(nic.source_model.split()) > 1:
            out.append(_f("VMF-NIC-002", "info", f"NIC {nic.index} lists alternative models "
                          f"'{nic.source_model}'; {target} takes one", where, "the first the target knows"))
        alternatives = nics.nic_models(nic.source_model) or ((nic.model,) if nic.model else ())
        choice = nics.best_nic(target, alternatives) if alternatives else None
        if row.follows_guest:  # the conversion picks among the guest NICs, whatever the target could emulate
            missing = bool(alternatives) and not set(alternatives) & set(row.guest_nics)
            fix = f"the first of {', '.join(row.guest_nics)} the guest has a driver for, else " \
                f"{nics.nic_for_target(target, 'other').value}"
        else:
            missing = choice is not None and not choice.exact
            fix = f"mapped to {choice.value}" if choice is not None else ""
        if missing:
            out.append(_f("VMF-NIC-001", "warning", f"NIC {nic.index} model {nic.source_model} is not available on "
                          f"{target}", where, fix))
        mac = (nic.mac or "").lower().replace("-", ":")
        if mac and ((target != "vmware" and mac.startswith(VMWARE_OUI)) or
                    (target != "virtualbox" and mac.startswith(VBOX_OUI))):
            out.append(_f("VMF-NIC-003", "warning", f"NIC {nic.index} has the fixed MAC {nic.mac} from another "
                          f"vendor's range; {target} may refuse it or it may clash", where,
                          "kept; use --new-macs to regenerate", by=None))
        if not nic.network:
            out.append(_f("VMF-NIC-004", "warning", f"NIC {nic.index} is connected to no network", where))
    limit = row.limits.max_nics
    if limit and len(vm.nics_for(None) or vm.nics) > limit:
        out.append(_f("VMF-NIC-005", "error", f"{len(vm.nics)} NICs: {target} supports {limit}", vm.id))
    return out


def _storage_rules(vm: PortableVM, pkg: PortablePackage, target: str) -> list[Finding]:
    out = []
    row = TARGETS[target]
    for c in vm.controllers:
        where = f"{vm.id} controller {c.id}"
        if c.kind not in controllers.KINDS:
            continue
        if c.kind in row.refuses_controllers:
            out.append(_f("VMF-DISK-003", "error", f"{c.kind.upper()} controller: {target} cannot import it from OVF",
                          where))
            continue
        ch = controllers.controller_for_target(target, c.kind, c.model if c.model in controllers.MODELS[c.kind]
                                               else None)
        # where convert puts the boot disk on the bus the guest has drivers for, it says so
        follows = f"the disk bus follows the guest's drivers ({' > '.join(row.boot_buses)})" \
            if row.follows_guest and row.cloud is not None else None
        if ch.kind != c.kind:
            out.append(_f("VMF-DISK-001", "warning", f"{c.kind.upper()} controller: {target} has none ({ch.note})",
                          where, follows or f"its disks move to {ch.kind.upper()}"))
        elif not ch.exact:
            out.append(_f("VMF-DISK-002", "warning", f"{c.kind.upper()} controller model {c.source_model} is not "
                          f"available on {target}", where, follows or f"mapped to {ch.subtype or ch.model}"))
        if c.kind == "sata" and c.source_model and target == "vmware" and ch.exact and c.source_model != ch.subtype:
            out.append(_f("VMF-DISK-009", "warning", f"SATA controller written as '{c.source_model}': VMware reads "
                          f"{ch.subtype}", where, f"rewritten as ResourceType {ch.resource_type} {ch.subtype}"))
    for d in vm.disks:
        where = f"{vm.id} disk {d.id}"
        if d.capacity_bytes is None:
            out.append(_f("VMF-DISK-005", "error", f"disk {d.id} has no usable capacity", where))
        elif row.limits.max_disk_bytes and d.capacity_bytes > row.limits.max_disk_bytes:
            out.append(_f("VMF-DISK-007", "error", f"disk {d.id} is {d.capacity_bytes >> 30} GiB; {target} holds "
                          f"{row.limits.max_disk_bytes >> 30} GiB at most", where))
        if d.file_id is None:
            out.append(_f("VMF-DISK-008", "info", f"disk {d.id} is blank (no file): the target creates it empty",
                          where))
        elif d.format and d.format not in row.disk_formats:
            out.append(_f("VMF-DISK-004", "warning", f"disk {d.id} is {d.format}; {target} imports "
                          f"{' or '.join(row.disk_formats)}", where, f"converted to {row.disk_formats[0]}"))
    for f in pkg.files:
        if f.compression or f.chunk_size:
            out.append(_f("VMF-DISK-006", "info" if row.reads_packed_files else "warning",
                          f"file {f.href} is {'gzip-compressed' if f.compression else ''}"
                          f"{' and ' if f.compression and f.chunk_size else ''}{'chunked' if f.chunk_size else ''}; "
                          "not every consumer reads that", f.href, "written as one plain file"))
    return out


def _firmware_rules(vm: PortableVM, target: str) -> list[Finding]:
    out = []
    row = TARGETS[target]
    if vm.firmware.kind == "efi" and "efi" not in row.firmware:
        out.append(_f("VMF-FW-001", "warning", f"system '{vm.id}' needs EFI firmware, which only a vendor "
                      f"extension states; {target} boots BIOS unless told at deployment", vm.id,
                      "stated in the conversion report; set EFI at deployment", by=None))
    if vm.firmware.secure_boot and "secure_boot" not in row.firmware:
        out.append(_f("VMF-FW-002", "warning", f"system '{vm.id}' requests secure boot, which {target}'s OVF "
                      "import cannot set", vm.id))
    return out


def _extension_rules(vm: PortableVM, target: str) -> list[Finding]:
    out = []
    groups: dict[str, list] = {}
    for np in vm.not_portable:
        if np.origin != "descriptor":  # repairs of a broken descriptor are reported by validate's rules
            groups.setdefault(np.origin, []).append(np)
    for origin, items in groups.items():
        if origin == target or (origin == "vmware" and target == "vmware"):
            continue
        machine = [n for n in items if n.what == "vbox:Machine"]
        if machine:
            out.append(_f("VMF-EXT-002", "warning", f"VirtualBox machine settings (vbox:Machine) are read by "
                          f"VirtualBox only; {target} ignores them", machine[0].location,
                          "dropped; the portable facts (OS type, firmware) are kept"))
        rest = [n for n in items if n.what != "vbox:Machine"]
        if rest:
            names = sorted({n.what for n in rest})
            out.append(_f("VMF-EXT-001", "info", f"{len(rest)} {origin} extension(s) have no portable meaning: "
                          f"{', '.join(names[:6])}{' …' if len(names) > 6 else ''}", rest[0].location,
                          "dropped, each listed in the conversion report"))
    return out


def _device_rules(vm: PortableVM, target: str) -> list[Finding]:
    out = []
    for dev in vm.devices:
        if dev.kind == "other":
            out.append(_f("VMF-DEV-001", "info", f"device '{dev.name or dev.instance_id}' ({dev.model or 'other'}) "
                          "has no portable meaning", f"{vm.id} item {dev.instance_id}", "dropped"))
        if dev.kind == "sound" and target in ("xen", "dmtf"):
            out.append(_f("VMF-DEV-003", "info", f"sound device {dev.model or ''} is not carried to {target}",
                          f"{vm.id} item {dev.instance_id}", "dropped" if target == "xen" else None))
    if target == "kvm" and any(d.kind == "floppy" for d in vm.drives):
        out.append(_f("VMF-DEV-002", "warning", "floppy drive: the q35 machine type has no floppy controller",
                      vm.id, "dropped, or use --machine pc"))
    return out


def _property_rules(vm: PortableVM, target: str) -> list[Finding]:
    out = []
    props = vm.properties()
    row = TARGETS[target]
    if GUESTINFO in vm.transports and GUESTINFO not in row.env_transports:
        out.append(_guestinfo_finding(vm, target))
    if row.cloud is not None and not row.env_transports:   # no OVF environment at all: VMF-CLOUD-001 says so
        return out
    if any(p.password for p in props) and not row.masked_properties:
        out.append(_f("VMF-PROP-011", "warning", f"{sum(p.password for p in props)} password properties: "
                      f"{target} has no masked entry; values travel in clear in the OVF environment", vm.id))
    for index, cfg in sorted(vm.net_config.items()):
        origin = cfg.origin or "vendor"
        if origin not in ("vmferry",) and not row.vendor_net_properties:
            out.append(_f("VMF-PROP-010", "info", f"NIC {index} network settings are in the {origin} property "
                          f"convention, which guests on {target} do not read", vm.id,
                          "also written under vmferry's portable keys (vmferry.net.N.*) and into the OVF "
                          "environment in cloud-init's form"))
    return out


def _guestinfo_finding(vm: PortableVM, target: str) -> Finding:
    """VMF-PROP-012, said as the target's row has it: the transport it delivers the OVF environment by
    instead, or (a target with none, e.g. a cloud) where its guests read their settings."""
    row = TARGETS[target]
    if row.env_transports:
        first = row.env_transports[0]
        return _f("VMF-PROP-012", "warning", f"transport {GUESTINFO} exists only on VMware; {target} delivers the "
                  f"OVF environment by {first}", vm.id, f"transport '{first}' is written")
    where = ", ".join(row.datasources) or "its own metadata"
    return _f("VMF-PROP-012", "warning", f"transport {GUESTINFO} exists only on VMware; {target} delivers no OVF "
              f"environment at all (its guests read their settings from {where})", vm.id,
              f"no transport is written: give the guest its settings through {where} at deployment", by=None)


def _profile_finding(pkg: PortablePackage, target: str) -> Finding:
    """VMF-PROF-010, said as the target's row writes its output: an OVF keeps every profile, a libvirt
    domain or a cloud's documents hold the chosen one's hardware only."""
    row = TARGETS[target]
    head = f"{len(pkg.profiles)} deployment profiles: {target} imports one configuration"
    default = f"'{pkg.default_profile}'"
    if row.output == "ovf":
        return _f("VMF-PROF-010", "warning", f"{head} (the default, {default})", "DeploymentOptionSection",
                  "all profiles are kept in the descriptor; choose the profile at conversion or at import",
                  by=None)
    if row.output == "libvirt":
        return _f("VMF-PROF-010", "warning", f"{head}: one domain is written, with the hardware of the chosen "
                  f"profile (the default, {default})", "DeploymentOptionSection",
                  "choose the profile at conversion; the other profiles are not carried", by=None)
    if row.output == "cloud":
        what = "an OVF with one configuration" if row.cloud and row.cloud.writer == "proxmox" else "its documents"
        return _f("VMF-PROF-010", "warning", f"{head}: {what} and the disks hold the chosen profile's CPU, memory, "
                  f"NICs and disks only (the default, {default})", "DeploymentOptionSection",
                  "choose the profile at conversion; the other profiles are dropped", by=None)
    return _f("VMF-PROF-010", "warning", f"{head} (the default, {default})", "DeploymentOptionSection", by=None)


def _package_rules(env: Envelope, pkg: PortablePackage, target: str) -> list[Finding]:
    out = []
    row = TARGETS[target]
    if pkg.profiles and not row.profiles:
        out.append(_profile_finding(pkg, target))
    if pkg.collection_id is not None and not row.collections:
        out.append(_f("VMF-COLL-001", "warning", f"VirtualSystemCollection '{pkg.collection_id}' with "
                      f"{len(pkg.systems)} systems: {target} imports them as separate VMs", pkg.collection_id))
    if pkg.startup and target == "vmware":
        def foreign(name: str) -> bool:
            return name.startswith("{") and N.role_of(name[1:].split("}")[0]) not in ("ovf", "xsi", "xml")

        extra = [el for el in env.root.iter() if isinstance(el.tag, str) and localname(el) == "StartupSection"
                 and any(isinstance(c.tag, str) and (foreign(c.tag) or any(foreign(k) for k in c.attrib))
                         for c in el.iter())]
        if extra:
            out.append(_f("VMF-START-001", "warning", "StartupSection carries vendor extensions (as XenCenter "
                          "writes them) that VMware Workstation rejects", location(extra[0]),
                          "rewritten with standard attributes only"))
    return out
