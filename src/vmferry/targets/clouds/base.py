"""The framework of the targets that import disk images and documents (``output == "cloud"`` rows).

A writer module (``vmferry.targets.clouds.<row.cloud.writer>``) is handed one :class:`CloudJob` per
system, after the framework has

1. converted every disk of the system from inside the package (:func:`write_disks`: through the
   confined, verifying package reader, :func:`vmferry.disks.ova_read.convert_file`; the OVA is never
   extracted) into the row's first disk format (or the one asked for), each virtual size rounded up to
   ``row.cloud.size_align``;
2. inspected the guest on the boot disk (libguestfs, read-only) and chosen the boot bus, the NIC model
   and the firmware (:func:`choose_hardware`: the first of ``row.boot_buses`` / ``row.guest_nics`` the
   guest has drivers for, :mod:`vmferry.guest.drivers`).

The writer then writes the target's own documents into ``job.workdir`` with :meth:`CloudJob.write_json`
/ :meth:`CloudJob.write_text` (recorded in the report), may replace disks (:meth:`CloudJob.replace_disk`)
and records what it mapped or dropped with :meth:`CloudJob.change` and findings with
:meth:`CloudJob.finding`. Everything lands in the output directory only when every system is written
(:func:`vmferry.disks.safety.atomic_directory`).

Writer module protocol (all plain functions)::

    def write(job: CloudJob) -> None                   # required: the target's documents
    def rules(portable, vm, row) -> list[Finding]      # optional: check rules of the target (descriptor)
    def upload(report, options: dict) -> list[dict]    # optional: send the written output (--upload)
    def check_upload(options: dict) -> None             # optional: refuse bad upload options before writing
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from vmferry.findings import Finding
from vmferry.portable import Disk, PortablePackage, PortableVM
from vmferry.tables.targets import Target


@dataclass
class CloudReport:
    """What ``convert --to T`` wrote for a cloud target (the same keys as the OVF targets' report, plus
    the documents written, the hardware chosen per system and what was uploaded)."""
    source: str
    target: str
    output: str
    dialect: str | None
    files: list[dict] = field(default_factory=list)       # disk images: href, format, virtual_size, size
    documents: list[dict] = field(default_factory=list)   # href, what
    choices: list[dict] = field(default_factory=list)     # per system: bus, nic, firmware, why
    changes: list = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    uploads: list[dict] = field(default_factory=list)
    repairs: list[dict] = field(default_factory=list)     # per system: the guest repair report
    ovf_version: str = "none"

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "output": self.output, "dialect": self.dialect,
                "files": self.files, "documents": self.documents, "choices": self.choices,
                "changes": [c.to_dict() for c in self.changes], "findings": [f.to_dict() for f in self.findings],
                "uploads": self.uploads, "repairs": self.repairs}


@dataclass
class WrittenDisk:
    disk: Disk                    # the portable disk
    href: str                     # file name in the output directory
    path: str                     # where it is now (in the work directory)
    format: str                   # vmferry.disks.formats name
    virtual_size: int
    boot: bool                    # the system's first disk
    source: str | None            # the package file it came from (None: a blank disk)


@dataclass
class HardwareChoice:
    """The boot bus, NIC model and firmware the target's documents name, and why."""
    bus: str                      # guest bus (vmferry.guest.drivers.Bus)
    bus_value: str                # the target's spelling (row.cloud.bus_values)
    nic: str                      # guest NIC model
    nic_value: str
    firmware: str                 # bios or efi
    secure_boot: bool
    why: str
    guest_checked: bool           # False: the guest was not inspected, bus and NIC are a guess

    def to_dict(self) -> dict:
        return {"disk_bus": self.bus, "disk_bus_value": self.bus_value, "nic_model": self.nic,
                "nic_value": self.nic_value, "firmware": self.firmware, "secure_boot": self.secure_boot,
                "why": self.why, "guest_checked": self.guest_checked}


@dataclass
class CloudJob:
    """One system being written for a cloud target: what the writer module reads and writes."""
    source: str
    pkg: object | None            # vmferry.package.base.Package (None: descriptor only)
    portable: PortablePackage
    vm: PortableVM
    row: Target
    profile: str | None
    workdir: str                  # the output directory being built (renamed into place at the end)
    output: str                   # the final output directory
    stem: str                     # file-name stem of this system's files
    report: CloudReport
    options: dict = field(default_factory=dict)  # target options from the caller (cloud name, switch...)
    disks: list[WrittenDisk] = field(default_factory=list)
    guest: object | None = None   # vmferry.guest.model.GuestReport of the boot disk, when inspected
    drivers: object | None = None  # vmferry.guest.drivers.GuestDrivers of it
    choice: HardwareChoice | None = None
    reporter: object | None = None

    # -- what writers call ----------------------------------------------------------------------
    def change(self, kind: str, what: str, detail: str = "") -> None:
        from vmferry.targets.ovf_writer import Change

        self.report.changes.append(Change(kind, what, detail))

    def finding(self, rule: str, severity: str, message: str, fix: str | None = None,
                fixed_by: str | None = None) -> None:
        self.report.findings.append(Finding(rule, severity, message, self.vm.id, fix, fixed_by))

    def path(self, href: str) -> str:
        if os.path.basename(href) != href or href.startswith("."):
            raise ValueError(f"output file names are plain names, not {href!r}")
        return os.path.join(self.workdir, href)

    def write_text(self, href: str, text: str, what: str, *, mode: int = 0o644) -> str:
        path = self.path(href)
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(path, mode)
        self.report.documents.append({"href": href, "what": what, "system": self.vm.id})
        return path

    def write_json(self, href: str, doc, what: str) -> str:
        return self.write_text(href, json.dumps(doc, indent=2, sort_keys=True) + "\n", what)

    def replace_disk(self, written: WrittenDisk, href: str, path: str, fmt: str) -> None:
        """``written`` is now ``path`` (in the work directory) named ``href``, in ``fmt`` (the file it was
        is removed when it is another one)."""
        if os.path.abspath(path) != os.path.abspath(written.path) and os.path.exists(written.path):
            os.unlink(written.path)
        for f in self.report.files:
            if f["href"] == written.href:
                f.update(href=href, format=fmt, size=os.path.getsize(path))
        written.href, written.path, written.format = href, path, fmt

    @property
    def boot_disk(self) -> WrittenDisk | None:
        return next((d for d in self.disks if d.boot), None)

    @property
    def cpu(self) -> tuple[int, int, int, int]:
        """(vCPUs, sockets, cores per socket, threads per core) for the chosen profile."""
        cpu = self.vm.cpu_for(self.profile)
        count = cpu.count if cpu else 1
        threads = (cpu.threads_per_core if cpu else None) or 1
        cores = (cpu.cores_per_socket if cpu else None) or max(1, count // threads)
        sockets = max(1, count // (cores * threads))
        return count, sockets, cores, threads

    @property
    def memory_mib(self) -> int | None:
        return self.vm.memory_for(self.profile)


def nic_value(row: Target, model: str) -> str:
    """The target's spelling of the guest NIC model ``model``."""
    own = dict(row.cloud.nic_values) if row.cloud else {}
    if model in own:
        return own[model]
    return next((m.value for m in row.nics if m.model == model), model)


def fallback_bus(row: Target, vm: PortableVM) -> str:
    """The boot bus when the guest was not inspected: the source's kind of controller when the target
    has it, else SATA, else the target's default."""
    disks = vm.disks
    ctrl = vm.controller(disks[0].controller_id) if disks else None
    wanted = []
    if ctrl is not None and ctrl.model in ("virtio-blk", "virtio-scsi"):
        wanted.append(ctrl.model.replace("virtio-blk", "virtio"))
    if ctrl is not None and ctrl.kind == "ide":
        wanted.append("ide")
    wanted.append("sata")
    return next((b for b in wanted if b in row.boot_buses), row.boot_buses[0])


def fallback_nic(row: Target, vm: PortableVM) -> str:
    """The NIC model when the guest was not inspected: the source's when the target judges guests with
    it, else the model the targets table writes for an unknown one (e1000: the widest inbox support)."""
    from vmferry.tables.nics import nic_for_target

    source = {n.model for n in vm.nics}
    same = next((m for m in row.guest_nics if m in source), None)
    if same:
        return same
    other = nic_for_target(row.name, "other").model
    return other if other in row.guest_nics else row.guest_nics[0]


def choose_hardware(job: CloudJob) -> HardwareChoice:
    """The boot bus and NIC model: the first of the row's orders the guest has drivers for; the firmware
    the source states, or UEFI when the guest boots with UEFI only."""
    from vmferry.guest.drivers import guest_drivers, pick_bus, pick_nic

    row, vm = job.row, job.vm
    drv = guest_drivers(job.guest) if job.guest is not None else None
    job.drivers = drv
    checked = drv is not None and drv.checked
    if checked:
        bus = pick_bus(drv, row.boot_buses)
        why = f"the guest can boot from {bus} ({drv.evidence[bus]})" if bus else "no bus the guest can boot from"
        bus = bus or row.boot_buses[0]
        nic = pick_nic(drv, row.guest_nics) or row.guest_nics[0]
    else:
        bus = fallback_bus(row, vm)
        nic = fallback_nic(row, vm)
        why = "guest not inspected: the source's kind of controller"
    firmware, secure = vm.firmware.kind, vm.firmware.secure_boot
    guest_fw = getattr(job.guest, "firmware", None)
    if guest_fw == "uefi" and firmware != "efi":
        firmware = "efi"
        job.change("mapped", "firmware", "bios -> efi (the guest boots with UEFI only)")
    if firmware not in ("bios", "efi"):
        firmware = "bios"
    bus_value = dict(row.cloud.bus_values)[bus]
    return HardwareChoice(bus, bus_value, nic, nic_value(row, nic), firmware, secure and firmware == "efi", why,
                          checked)


def write_disks(job: CloudJob, fmt_name: str) -> None:
    """Every disk of the system, converted into ``fmt_name`` from inside the package (verified while
    read), virtual sizes rounded up to the row's alignment."""
    from vmferry.disks.convert import PLAIN_WRITERS
    from vmferry.disks.ova_read import convert_file
    from vmferry.targets.kvm import safe_stem
    from vmferry.tools import qemu_img

    fmt = _format(fmt_name)
    align = job.row.cloud.size_align if job.row.cloud else 1
    for order, disk in enumerate(job.vm.disks_for(job.profile)):
        fspec = job.portable.file(disk.file_id)
        stem = safe_stem(os.path.basename(fspec.href).rsplit(".", 1)[0] if fspec else f"{job.stem}-disk{order + 1}")
        href = f"{stem}{fmt.extension}"
        if any(d.href == href for d in job.disks) or os.path.exists(os.path.join(job.workdir, href)):
            href = f"{job.stem}-{stem}{fmt.extension}"
        out = job.path(href)
        if fspec is None:
            size = _round_up(disk.capacity_bytes or 1 << 30, max(align, 512))
            if fmt.name in PLAIN_WRITERS:   # holes, and for VHD vmferry's own footer (the spec's geometry)
                from vmferry.disks.vhd_footer import build_footer

                with open(out, "wb") as fh:
                    fh.truncate(size)
                    if fmt.name == "vhd-fixed":
                        fh.seek(size)
                        fh.write(build_footer(size))
            else:
                qemu_img.create(out, fmt.qemu, size, fmt.create_options())
            job.change("added", f"disk {disk.id}", f"blank, {size} bytes")
            vsize = size
        else:
            extra = {"align": align} if fmt.name in PLAIN_WRITERS and align > 1 else {}
            result = convert_file(job.pkg.file(fspec.href), out, fmt.name, reporter=job.reporter, **extra)
            vsize = result.virtual_size
            job.change("converted", f"disk {fspec.href}", f"-> {fmt.name}")
            wanted = _round_up(vsize, align)
            if extra and disk.capacity_bytes and vsize > disk.capacity_bytes:
                job.change("mapped", f"disk {fspec.href} size", f"{disk.capacity_bytes} -> {vsize} bytes (a multiple "
                           f"of {align})")
            if wanted != vsize:
                qemu_img.resize(out, fmt.qemu, wanted)
                job.change("mapped", f"disk {fspec.href} size", f"{vsize} -> {wanted} bytes (a multiple of {align})")
                vsize = wanted
        written = WrittenDisk(disk, href, out, fmt.name, vsize, order == 0, fspec.href if fspec else None)
        job.disks.append(written)
        job.report.files.append({"href": href, "format": fmt.name, "virtual_size": vsize,
                                 "size": os.path.getsize(out), "system": job.vm.id, "boot": order == 0,
                                 "source": fspec.href if fspec else None})


def _format(name: str):
    from vmferry.disks.formats import get_format

    return get_format(name)


def _round_up(size: int, align: int) -> int:
    return -(-size // align) * align


def inspect_boot_disk(job: CloudJob) -> None:
    """Inspect the guest on the written boot disk (read-only); a guest that cannot be inspected is a
    finding (VMF-CLOUD-004), not a failure."""
    from vmferry.errors import VmferryError
    from vmferry.guest import inspect_image

    boot = job.boot_disk
    if boot is None:
        return
    try:
        job.guest = inspect_image(boot.path)
    except VmferryError as exc:
        job.finding("VMF-CLOUD-004", "warning", f"the guest on {boot.href} could not be inspected ({exc.message}): "
                    "the disk bus and NIC model are a guess", "run 'vmferry guest' on the disk and check them")
