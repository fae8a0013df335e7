"""Compute Engine: each disk as ``disk.raw`` in a gzip'd GNU tar (``oldgnu``, the raw disk a sparse
member), its size a whole number of GB (GiB), plus the image description and the gcloud command line.

What Compute Engine's manual import requires ("Import a custom image": "Create the image file"): a raw
disk named ``disk.raw`` packed with ``tar --format=oldgnu -Sczf``, its size a multiple of 1 GB; an MBR or
GPT partition table with a bootable partition (checked here on the boot disk: an MBR partition marked
active, or a GPT EFI system / BIOS boot partition or one with the legacy-BIOS-bootable attribute); the
guest boots on virtio-scsi with virtio-net (or gVNIC).

``<disk>.image.json`` is the body of ``images.insert`` (fields of the Image resource): ``name`` (Compute
Engine's name rules), ``description``, ``rawDisk`` (``containerType: TAR``; ``source`` when a bucket is
given), ``diskSizeGb``, ``architecture`` and, on the boot image, ``guestOsFeatures`` from the guest:
``UEFI_COMPATIBLE`` (UEFI firmware, or a guest that boots with UEFI), ``VIRTIO_SCSI_MULTIQUEUE`` (the
guest drives virtio-scsi), ``GVNIC`` (the guest has the gve driver), ``WINDOWS``.
``<stem>.gcloud.sh`` uploads the archives and creates the images with gcloud.

The archive is one ordinary gzip member at level 6 (``tar -z``'s own), deflated on every core
(``disks.gzip_parallel``), with incompressible data stored instead of deflated.
"""

from __future__ import annotations

import os
import re
import shlex

from vmferry.errors import TargetError
from vmferry.findings import Finding
from vmferry.targets.clouds.base import CloudJob, WrittenDisk

GPT_BOOT_TYPES = {
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI system partition",
    "21686148-6449-6e6f-744e-656564454649": "BIOS boot partition",
}
LEGACY_BIOS_BOOTABLE = 1 << 2
GZIP_LEVEL = 6


def _guid(raw: bytes) -> str:
    a, b, c = int.from_bytes(raw[0:4], "little"), int.from_bytes(raw[4:6], "little"), int.from_bytes(raw[6:8], "little")
    return f"{a:08x}-{b:04x}-{c:04x}-{raw[8:10].hex()}-{raw[10:16].hex()}"


def bootable_partition(path: str) -> tuple[str | None, str]:
    """(table, what makes it bootable) of the raw disk ``path``: ("mbr", "partition 1 active"),
    ("gpt", "EFI system partition 1"); (None, why not) when neither holds."""
    with open(path, "rb") as fh:
        mbr = fh.read(512)
        if len(mbr) < 512 or mbr[510:512] != b"\x55\xaa":
            return None, "no MBR boot signature (0x55AA) in the first sector"
        entries = [mbr[446 + 16 * i: 462 + 16 * i] for i in range(4)]
        if any(e[4] == 0xEE for e in entries):   # protective MBR: a GPT disk
            fh.seek(512)
            hdr = fh.read(92)
            if hdr[:8] != b"EFI PART":
                return None, "a protective MBR but no GPT header in sector 1"
            lba = int.from_bytes(hdr[72:80], "little")
            count = min(int.from_bytes(hdr[80:84], "little"), 1024)
            size = int.from_bytes(hdr[84:88], "little")
            if size < 128 or size > 4096:
                return None, f"GPT entries of {size} bytes"
            fh.seek(lba * 512)
            table = fh.read(count * size)
            for i in range(count):
                e = table[i * size:(i + 1) * size]
                if len(e) < 56 or e[:16] == b"\0" * 16:
                    continue
                kind = GPT_BOOT_TYPES.get(_guid(e[:16]))
                if kind:
                    return "gpt", f"{kind} {i + 1}"
                if int.from_bytes(e[48:56], "little") & LEGACY_BIOS_BOOTABLE:
                    return "gpt", f"partition {i + 1} legacy BIOS bootable"
            return None, "a GPT without an EFI system, BIOS boot or legacy-bootable partition"
        for i, e in enumerate(entries):
            if e[0] == 0x80 and e[4] != 0:
                return "mbr", f"partition {i + 1} active"
        return None, "an MBR without an active partition"


def image_name(text: str) -> str:
    """A Compute Engine resource name: ``[a-z]([-a-z0-9]*[a-z0-9])?``, at most 63 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "image"
    if not name[0].isalpha():
        name = "vm-" + name
    return name[:63].rstrip("-")


def pack(job: CloudJob, d: WrittenDisk) -> str:
    """``d`` (raw) as ``disk.raw`` in ``<stem>.tar.gz``, streamed: the raw file is read once."""
    from vmferry.disks.gnutar import data_extents, write_sparse_member
    from vmferry.disks.gzip_parallel import ParallelGzip

    href = os.path.splitext(d.href)[0] + ".tar.gz"
    out = job.path(href)
    fd = os.open(d.path, os.O_RDONLY)
    try:
        with open(out, "wb") as sink, ParallelGzip(sink.write, level=GZIP_LEVEL) as gz:
            write_sparse_member("disk.raw", d.virtual_size, data_extents(fd, d.virtual_size),
                                lambda off, n: os.pread(fd, n, off), gz.write)
    finally:
        os.close(fd)
    os.chmod(out, 0o644)
    job.replace_disk(d, href, out, "gce-tar")
    job.change("converted", f"disk {d.source or d.disk.id}", f"raw -> disk.raw in {href} (GNU oldgnu tar, sparse, gzip)")
    return href


def features(job: CloudJob) -> list[str]:
    out = []
    c, drv = job.choice, job.drivers
    if c.firmware == "efi" or getattr(job.guest, "firmware", "") in ("uefi", "bios+uefi"):
        out.append("UEFI_COMPATIBLE")
    if drv is not None and drv.checked:
        if "virtio-scsi" in drv.storage_buses:
            out.append("VIRTIO_SCSI_MULTIQUEUE")
        if "gvnic" in drv.nic_models:
            out.append("GVNIC")
    family = getattr(getattr(job.guest, "os", None), "type", None) or job.vm.os.family
    if family == "windows":
        out.append("WINDOWS")
    return out


def write(job: CloudJob) -> None:
    boot = job.boot_disk
    if boot is not None:
        table, why = bootable_partition(boot.path)
        if table is None:
            rule = "VMF-GCE-001"
            raise TargetError(f"cannot convert for gce: {rule} the boot disk {boot.href} has {why}; "
                              "Compute Engine boots from an MBR or GPT disk with a bootable partition")
        job.change("kept", f"boot disk {boot.href} partition table", f"{table} ({why})")
    base = job.options.get("image_name") or job.vm.name or job.vm.id
    bucket = job.options.get("bucket")
    feats = features(job)
    commands = ["#!/bin/sh", "# Upload the images to a Cloud Storage bucket and create Compute Engine images from them.",
                "# Written by vmferry; run with BUCKET set (gs://BUCKET without the prefix).", "set -eu",
                ': "${BUCKET:?set BUCKET to the Cloud Storage bucket to upload to}"']
    for d in list(job.disks):
        name = image_name(base if d.boot else f"{base}-{d.disk.id}")
        href = pack(job, d)
        doc = {"name": name, "description": f"{job.vm.name or job.vm.id}: converted by vmferry from "
               f"{os.path.basename(job.source)}", "rawDisk": {"containerType": "TAR"},
               "diskSizeGb": str(d.virtual_size >> 30), "architecture": "X86_64"}
        if bucket:
            doc["rawDisk"]["source"] = f"https://storage.googleapis.com/{bucket}/{href}"
        if d.boot and feats:
            doc["guestOsFeatures"] = [{"type": f} for f in feats]
        job.write_json(f"{os.path.splitext(os.path.splitext(href)[0])[0]}.image.json", doc,
                       "Compute Engine image description (images.insert body)")
        create = ["gcloud", "compute", "images", "create", name, f"--source-uri=gs://${{BUCKET}}/{href}"]
        if d.boot and feats:
            create.append("--guest-os-features=" + ",".join(feats))
        commands += [f"gcloud storage cp {shlex.quote(href)} \"gs://${{BUCKET}}/{href}\"",
                     " ".join(a if "$" in a else shlex.quote(a) for a in create)]
    job.write_text(f"{job.stem}.gcloud.sh", "\n".join(commands) + "\n", "gcloud command lines", mode=0o755)
    for feat in feats:
        job.change("mapped", "guest OS feature", feat)
    for n in job.vm.nics_for(job.profile):
        job.change("mapped", f"NIC {n.index}", f"{n.source_model or n.model} -> {job.choice.nic_value} "
                   "(chosen when the instance is created)")
    for drive in job.vm.drives:
        job.change("dropped", f"{drive.kind} drive {drive.instance_id}", "Compute Engine images carry disks only")


def rules(portable, vm, row) -> list[Finding]:
    out = []
    if vm.firmware.secure_boot:
        out.append(Finding("VMF-GCE-002", "info", "secure boot: a Compute Engine image states UEFI; Shielded VM "
                           "secure boot is chosen per instance", vm.id,
                           "create the instance with --shielded-secure-boot"))
    return out
