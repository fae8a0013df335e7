"""``convert --to kvm``: qcow2 disks and a libvirt domain XML that the guest can really boot.

The disk bus and NIC model follow the guest: with the package's disks present, the boot disk is
inspected (:mod:`vmferry.guest`, libguestfs) and virtio is used only when the guest's initramfs or
kernel has the virtio drivers; otherwise SATA, then IDE (each checked the same way). Without disks
(``descriptor_only``) or without inspection, the bus follows the source controller, and a finding
says the guest was not checked.

The domain type is never read from the machine that converts (it is seldom the host the VM runs on):
the XML is written for a KVM host (type ``kvm``, host-model CPU) unless the caller forces a type, and
``vmferry deploy`` fits it to the host it lands on (:mod:`vmferry.sites.libvirt_host`: TCG with a
warning where there is no KVM). Given the target connection (``connect``), the same fit is made here,
from that host's capabilities, so the XML written is already the one the host will run.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field

from vmferry.errors import UsageError
from vmferry.findings import Finding
from vmferry.guest.drivers import guest_drivers, pick_bus, pick_nic
from vmferry.portable import PortableVM
from vmferry.tables.nics import nic_for_target
from vmferry.tables.targets import target
from vmferry.targets.libvirt_xml import (
    DEFAULT_NETWORK,
    DiskPlan,
    DomainPlan,
    NicPlan,
    domain_xml,
    plan_topology,
)
from vmferry.targets.macs import nic_mac

KVM = target("kvm")
# guest bus (vmferry.guest.drivers.Bus) -> libvirt <target bus=...> (scsi: on a virtio-scsi controller)
LIBVIRT_BUS = {"virtio": "virtio", "virtio-scsi": "scsi", "sata": "sata", "ide": "ide"}
GUEST_BUS = {v: k for k, v in LIBVIRT_BUS.items()}
OLD_OS = ("winxp", "win2000", "win2003", "win2k", "win2k3")   # whole libosinfo ids: win2k8/win2k22 are not old


@dataclass
class KvmReport:
    source: str
    output: str
    dialect: str | None
    domains: list[str] = field(default_factory=list)      # paths of the domain XML files
    files: list[dict] = field(default_factory=list)
    choices: list[dict] = field(default_factory=list)     # per system: bus, nic, machine, why
    changes: list = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    repairs: list[dict] = field(default_factory=list)     # per system: the guest repair report
    target: str = "kvm"
    ovf_version: str = "libvirt"

    def to_dict(self) -> dict:
        return {"source": self.source, "target": "kvm", "output": self.output, "dialect": self.dialect,
                "domains": self.domains, "files": self.files, "choices": self.choices,
                "changes": [c.to_dict() for c in self.changes], "findings": [f.to_dict() for f in self.findings],
                "repairs": self.repairs}


def parse_network_map(pairs: list[str]) -> dict[str, tuple[str, str]]:
    """``SRC=DST`` pairs: DST is a libvirt network name (or ``network:NAME``), ``bridge:BR`` for a host
    bridge, or ``user`` for user-mode networking (unprivileged, session libvirt)."""
    out = {}
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        if not sep or not src or not dst:
            raise UsageError(f"--network-map takes SRC=DST, not {pair!r}")
        kind, colon, name = dst.partition(":")
        if dst == "user":
            out[src] = ("user", "")
        elif colon and kind in ("network", "bridge") and name:
            out[src] = (kind, name)
        else:
            out[src] = ("network", dst)
    return out


def safe_stem(text: str | None, default: str = "vm", limit: int = 64) -> str:
    """A file name (and libvirt domain name) from a name in the descriptor: letters, digits, '.', '_'
    and '-', no leading dot, at most ``limit`` characters (a long name keeps a hash of the whole)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", text or "").strip("-.") or default
    if len(stem) > limit:
        import hashlib

        stem = f"{stem[:limit - 9]}-{hashlib.sha256(stem.encode()).hexdigest()[:8]}"
    return stem


def domain_name(vm: PortableVM) -> str:
    """A libvirt domain (and file) name from the system id."""
    return safe_stem(vm.id or vm.name)


def new_mac(rng: random.Random) -> str:
    return "52:54:00:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))


def choose_machine(vm: PortableVM, requested: str | None) -> str:
    if requested:
        return requested
    libosinfo = vm.os.libosinfo or ""
    if libosinfo in OLD_OS or any(d.kind == "floppy" for d in vm.drives):
        return "pc"
    return "q35"


def fallback_bus(vm: PortableVM) -> str:
    """The bus when the guest cannot be inspected: the source's own kind of controller."""
    disks = vm.disks
    ctrl = vm.controller(disks[0].controller_id) if disks else None
    if ctrl is not None and ctrl.kind == "ide":
        return "ide"
    if ctrl is not None and ctrl.model in ("virtio-blk", "virtio-scsi"):
        return "virtio"   # the source (oVirt/RHV, KVM) ran the guest on virtio: its drivers are there
    return "sata"


def choose_bus(report, requested: str, vm: PortableVM) -> tuple[str, str, list[Finding]]:
    """(libvirt bus, why, guest findings) for the boot disk: the first bus of the KVM preference order
    (targets table: ``boot_buses``) the guest can boot from (:func:`vmferry.guest.drivers.guest_drivers`)."""
    if requested != "auto":
        return requested, "requested", []
    drv = guest_drivers(report) if report is not None else None
    if drv is None or not drv.checked:
        return fallback_bus(vm), "guest not inspected: same kind of controller as the source", []
    bus = pick_bus(drv, KVM.boot_buses)
    if bus is not None:
        return LIBVIRT_BUS[bus], f"the guest can boot from {bus} ({drv.evidence[bus]})", []
    from vmferry.guest.readiness import readiness

    first = KVM.boot_buses[0]
    result = readiness(report, "kvm", bus=first)
    return LIBVIRT_BUS[first], "no bus the guest can boot from", [
        Finding(f.rule, "error", f.message, "guest", f.fix) for f in result.reasons if f.rule == "VMF-GUEST-001"]


def choose_nic(report, requested: str) -> str:
    """The NIC model: the first of the KVM preference order (targets table: ``guest_nics``) the guest has
    a driver for; e1000 (the widest inbox support) when the guest was not inspected or has none of them."""
    if requested != "auto":
        return requested
    drv = guest_drivers(report) if report is not None else None
    return pick_nic(drv, KVM.guest_nics) or nic_for_target("kvm", "other").value


def convert_to_kvm(path: str | os.PathLike, output: str | os.PathLike, *, descriptor_only: bool = False,
                   network_map: list[str] | tuple = (), new_macs: bool = False, profile: str | None = None,
                   disk_format: str | None = None, force: bool = False, reporter=None, disk_bus: str = "auto",
                   nic_model: str = "auto", inspect_guest: bool = True, domain_type: str | None = None,
                   machine: str | None = None, seed: int | None = None, repair: bool = True,
                   settings: list[str] | tuple = (), connect: str | None = None) -> KvmReport:
    """Convert a package for KVM/libvirt. With the disks present and ``repair`` (the default), the boot
    disk's Linux guest is repaired for kvm and for the hypervisor it came from (:mod:`vmferry.guest.repair`)
    before the bus and NIC are chosen; ``settings`` are ``vmferry.net.N.*=VALUE`` given to the repair.
    ``connect``: the libvirt URI of the target host, whose capabilities the domain is fitted to (type,
    machine, CPU, emulator, networks); without it the domain is written for a KVM host."""
    from vmferry.conversion import load, prepare
    from vmferry.disks.safety import atomic_directory, sigterm_as_interrupt

    path, output = os.fspath(path), os.path.abspath(os.fspath(output))
    envelope, pkg = load(path, descriptor_only)
    portable, findings = prepare(envelope, "kvm")
    report = KvmReport(path, output, portable.source_dialect, findings=list(findings))
    chosen_profile = profile or portable.default_profile
    if profile is not None and profile not in [p.id for p in portable.profiles]:
        raise UsageError(f"no deployment profile {profile!r}", path=path)
    netmap = parse_network_map(list(network_map))
    rng = random.Random(seed)
    nic_settings = None
    if repair and not descriptor_only and inspect_guest:
        from vmferry.guest.repair import parse_settings

        nic_settings = parse_settings(list(settings))
    facts = _target_facts(connect) if connect else None     # read before anything is written
    dtype = domain_type or "kvm"
    fmt_name = disk_format or KVM.disk_formats[0]
    if pkg is not None:
        report.findings += pkg.verify_integrity()   # before anything is written
        pkg.content()   # every Disk's file and every reference resolved: missing or hostile ones raise
    with sigterm_as_interrupt(), atomic_directory(output, force=force) as tmp:
        for vm in portable.systems:
            _convert_system(pkg, portable, vm, chosen_profile, tmp, output, report, netmap=netmap,
                            new_macs=new_macs, rng=rng, fmt_name=fmt_name, reporter=reporter,
                            disk_bus=disk_bus, nic_model=nic_model, inspect_guest=inspect_guest and not
                            descriptor_only, dtype=dtype, machine=machine, descriptor_only=descriptor_only,
                            source_path=path, nic_settings=nic_settings, facts=facts, forced_type=domain_type)
    return report


def _target_facts(uri: str):
    """What the target libvirt host offers (:func:`vmferry.sites.libvirt_host.probe`)."""
    from vmferry.sites.libvirt_host import probe
    from vmferry.tools.libvirt import connect

    with connect(uri) as conn:
        return probe(conn)


def _convert_system(pkg, portable, vm: PortableVM, profile, tmp, output, report: KvmReport, *, netmap, new_macs,
                    rng, fmt_name, reporter, disk_bus, nic_model, inspect_guest, dtype, machine,
                    descriptor_only, source_path, nic_settings=None, facts=None,
                    forced_type=None) -> None:
    name = domain_name(vm)
    disks: list[DiskPlan] = []
    boot_images = []
    for order, disk in enumerate(vm.disks_for(profile), start=1):
        fspec = portable.file(disk.file_id)
        stem = (os.path.basename(fspec.href).rsplit(".", 1)[0] if fspec
                else safe_stem(f"{vm.id}-{disk.id}", default=f"disk{order}"))
        fname = f"{stem}.{fmt_name}"
        final = os.path.join(output, fname)
        if not descriptor_only:
            _write_disk(pkg, fspec, disk, os.path.join(tmp, fname), fmt_name, reporter, report)
            boot_images.append(os.path.join(tmp, fname))
        disks.append(DiskPlan(final, fmt_name, "pending", boot_order=order))
    # the source's MAC, else one derived from the VM's identity (the same on every conversion)
    macs = [new_mac(rng) if new_macs else nic_mac(vm, n) for n in vm.nics_for(profile)]
    guest = None
    inspectable = True
    if inspect_guest and boot_images and nic_settings is not None:
        # readiness is read from the repaired image, in the appliance that repaired it
        inspectable, guest = _repair(boot_images[0], vm, portable.source_dialect, macs, nic_settings, report)
    if inspect_guest and boot_images and inspectable and guest is None:
        guest = _inspect(boot_images[0], report)
    bus, why, guest_findings = choose_bus(guest, disk_bus, vm)
    report.findings += guest_findings
    nic = choose_nic(guest, nic_model)
    if guest is None and not descriptor_only and inspect_guest:
        why += " (libguestfs could not inspect it)"
    if guest is None:
        report.findings.append(Finding("VMF-KVM-002", "warning", f"the guest of '{vm.id}' was not inspected; disk "
                                       f"bus {bus} and NIC {nic} are a guess", vm.id,
                                       "run 'vmferry guest' on the disk, or 'vmferry convert --to kvm' with the "
                                       "disks present"))
    for d in disks:
        d.bus = bus
    mach = choose_machine(vm, machine)
    cd_bus = "sata" if mach == "q35" else "ide"
    for drive in vm.drives:
        fspec = portable.file(drive.file_id)
        if drive.kind == "cdrom" and fspec is not None:
            final = os.path.join(output, os.path.basename(fspec.href))
            if not descriptor_only:
                _copy_file(pkg, fspec, os.path.join(tmp, os.path.basename(fspec.href)), report)
            disks.append(DiskPlan(final, "raw", cd_bus, device="cdrom", readonly=True))
        elif drive.kind == "floppy":
            report.changes.append(_change("dropped", f"floppy drive {drive.instance_id}", "not attached"))
    nics = []
    for n, mac in zip(vm.nics_for(profile), macs, strict=True):
        kind, dst = netmap.get(n.network or "", (None, None))
        if kind is None:
            kind, dst = "network", DEFAULT_NETWORK
            report.findings.append(Finding("VMF-KVM-001", "warning", f"network '{n.network}' of NIC {n.index} is "
                                           "not mapped; it is connected to libvirt's 'default' network "
                                           "(deploy picks the connection's own when it has no 'default')",
                                           f"{vm.id} NIC {n.index}", "pass --network-map SRC=DST"))
        nics.append(NicPlan(dst, nic, mac, kind))
    if vm.properties() and pkg is not None:
        iso = _env_iso(source_path, portable, vm, profile, os.path.join(tmp, f"{name}-ovf-env.iso"),
                       descriptor_only, report, [p.mac for p in nics], envelope=pkg.envelope)
        if iso:
            disks.append(DiskPlan(os.path.join(output, os.path.basename(iso)), "raw", cd_bus, device="cdrom",
                                  readonly=True))
    vcpus, sockets, cores, threads = plan_topology(vm, profile)
    plan = DomainPlan(name=name, domain_type=dtype, machine=mach, vcpus=vcpus, sockets=sockets, cores=cores,
                      threads=threads,
                      memory_mib=vm.memory_for(profile) or 1024, firmware=vm.firmware.kind,
                      secure_boot=vm.firmware.secure_boot, disks=disks, nics=nics,
                      console_log=os.path.join(output, f"{name}-console.log"),
                      description=f"converted by vmferry from {os.path.basename(source_path)}",
                      libosinfo=vm.os.libosinfo)
    xml = domain_xml(plan)
    if facts is not None:
        xml, dtype, fitted_machine = fit_to_host(xml, facts, forced_type, vm.id, report)
        mach = fitted_machine or mach
    xml_name = f"{name}.xml"
    with open(os.path.join(tmp, xml_name), "w", encoding="utf-8") as fh:
        fh.write(xml)
    report.domains.append(os.path.join(output, xml_name))
    report.choices.append({"system": vm.id, "disk_bus": bus, "nic_model": nic, "machine": mach,
                           "domain_type": dtype, "why": why, "profile": profile,
                           "fitted_to": facts.uri if facts is not None else None})


def fit_to_host(xml: str, facts, domain_type: str | None, system: str,
                report: KvmReport) -> tuple[str, str, str | None]:
    """The domain XML of ``system`` fitted to the target host's ``facts``
    (:class:`vmferry.sites.libvirt_host.HostFacts`) as ``deploy`` fits it: (xml, domain type, machine).
    What changed is recorded in ``report.changes``, each compromise (TCG, another machine or network) as
    a VMF-KVM-005 finding."""
    from vmferry.sites.libvirt_host import fit_domain

    fit = fit_domain(xml, facts, domain_type=domain_type)
    for change in fit.changes:
        report.changes.append(_change("fitted", f"domain of '{system}'", f"{change} ({facts.uri})"))
    for warning in fit.warnings:
        report.findings.append(Finding("VMF-KVM-005", "warning", warning, system,
                                       "convert on (or for) a host with KVM, or accept the slower emulation"
                                       if "TCG" in warning else "check the target host's libvirt"))
    return fit.xml, fit.domain_type, fit.machine


def _change(kind, what, detail=""):
    from vmferry.targets.ovf_writer import Change

    return Change(kind, what, detail)


# OVF dialect of the source -> the hypervisor whose drivers the repaired image keeps
DIALECT_HYPERVISOR = {"vmware": "vmware", "cisco": "vmware", "virtualbox": "virtualbox", "xen": "xen",
                      "hyperv": "hyperv", "ovirt": "kvm"}


def _repair(image: str, vm: PortableVM, dialect: str | None, macs: list[str], settings, report: KvmReport):
    """Repair the converted boot disk's guest for kvm (the source is never touched: this is the copy).
    (inspectable, the repaired guest's report or None); not inspectable when libguestfs finds no OS."""
    from vmferry.errors import VmferryError
    from vmferry.guest.repair import merge_settings, repair_image

    source = [hv] if (hv := DIALECT_HYPERVISOR.get(dialect or "")) else None
    try:
        result = repair_image(image, ["kvm"], nics=merge_settings(macs, settings), source=source, inspect=True)
    except VmferryError as exc:
        if "no operating system" in str(exc):
            report.findings.append(Finding("VMF-KVM-003", "warning", f"guest inspection failed: {exc}", image))
            return False, None
        report.findings.append(Finding("VMF-KVM-004", "warning", f"the guest of '{vm.id}' was not repaired: {exc}",
                                       vm.id, "run 'vmferry guest repair' on the converted disk"))
        return True, None
    result.image = os.path.basename(image)
    report.repairs.append(result.to_dict())
    for c in result.changes:
        report.changes.append(_change("repaired", f"guest {c.file}", c.reason))
    for problem in result.problems:
        report.findings.append(Finding("VMF-KVM-004", "warning", f"guest repair of '{vm.id}': {problem}", vm.id,
                                       "repair this by hand in the guest"))
    return True, result.guest


def _inspect(image: str, report: KvmReport):
    from vmferry.errors import VmferryError
    from vmferry.guest import inspect_image

    try:
        return inspect_image(image)
    except VmferryError as exc:
        report.findings.append(Finding("VMF-KVM-003", "warning", f"guest inspection failed: {exc}", image))
        return None


def _write_disk(pkg, fspec, disk, out: str, fmt_name: str, reporter, report: KvmReport) -> None:
    from vmferry.disks.ova_read import convert_file
    from vmferry.tools import qemu_img

    if fspec is None:  # a blank disk: created empty at its capacity
        qemu_img.create(out, fmt_name, disk.capacity_bytes or 1 << 30)
        report.files.append({"href": os.path.basename(out), "blank": True})
        return
    result = convert_file(pkg.file(fspec.href), out, fmt_name, reporter=reporter)   # verified while read
    report.files.append({"href": os.path.basename(out), "size": result.file_size,
                         "virtual_size": result.virtual_size})
    report.changes.append(_change("converted", f"disk {fspec.href}", f"-> {fmt_name}"))


def _copy_file(pkg, fspec, out: str, report: KvmReport) -> None:
    from vmferry.conversion import copy_package_file

    written, digest = copy_package_file(pkg.file(fspec.href), out)
    report.files.append({"href": os.path.basename(out), "size": written, "sha256": digest})


def _env_iso(source_path: str, portable, vm: PortableVM, profile, out: str, descriptor_only: bool,
             report: KvmReport, macs: list[str | None], envelope=None):
    """The OVF environment ISO (the "iso" transport) with the properties' values for ``profile``, the
    portable network keys (``vmferry.net.N.*``) that :func:`vmferry.conversion.prepare` added, and a
    cloud-init network config that matches each NIC by the MAC the domain gives it."""
    from vmferry.ovfenv import EnvProperty, build_environment, package_properties, write_iso
    from vmferry.portable import pick

    props = package_properties(source_path, profile=profile, system=vm.id, envelope=envelope)
    have = {p.full_key for p in props.properties}
    for p in vm.properties():
        if p.key.startswith("vmferry.net.") and p.key not in have:
            value = (pick(p.values, profile) if profile is not None else None)
            props.properties.append(EnvProperty(p.key, p.key, value if value is not None else p.value or ""))
    for nic, mac in zip(props.nics, macs, strict=True):
        nic.mac = mac or nic.mac
    result = build_environment(props.system_id, props.properties, nics=props.nics)
    report.findings += result.findings
    if descriptor_only:
        return out
    write_iso(result.environment.to_xml(), out)
    report.files.append({"href": os.path.basename(out), "ovf_environment": True})
    return out
