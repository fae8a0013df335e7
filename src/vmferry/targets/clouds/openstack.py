"""OpenStack: qcow2 (or raw) images and the Glance image properties that Nova's libvirt driver reads.

``<stem>.glance.json`` holds the image's own fields (``name``, ``disk_format``, ``container_format``,
``min_disk`` in GiB, ``min_ram`` in MiB) and ``properties``, each chosen from the guest's readiness:

* ``hw_disk_bus`` (``virtio``, ``scsi`` with ``hw_scsi_model=virtio-scsi``, ``sata``, ``ide``) and
  ``hw_vif_model`` (``virtio``, ``e1000e``, ``e1000``, ``rtl8139``): the first of the targets table's orders
  the guest has drivers for — virtio only when the guest drives it;
* ``hw_machine_type`` (``q35``; ``pc`` for old guests, floppies and IDE, which q35 lacks),
  ``hw_firmware_type`` (``bios``/``uefi``), ``os_secure_boot=required`` when the source boots securely;
* ``os_type`` (``linux``/``windows``), ``os_distro`` (the libosinfo vocabulary Glance documents) and
  ``os_version``; ``hw_cpu_sockets``/``hw_cpu_cores``/``hw_cpu_threads``; ``hw_qemu_guest_agent``
  when the guest carries qemu-guest-agent; ``architecture``.

Data disks beyond the first get a document each (images to create volumes from). ``upload`` sends
every image with openstacksdk to the clouds.yaml cloud named in the options.
"""

from __future__ import annotations

import json
import os

from vmferry.errors import TargetError, UsageError
from vmferry.findings import Finding
from vmferry.targets.clouds.base import CloudJob

# Glance's documented os_distro values (the libosinfo vocabulary; "Useful image properties")
OS_DISTROS = frozenset({"arch", "centos", "debian", "fedora", "freebsd", "gentoo", "mandrake", "mandriva", "mes",
                        "msdos", "netbsd", "netware", "openbsd", "opensolaris", "opensuse", "rhel", "sled",
                        "ubuntu", "windows"})
# libguestfs / vmferry distro names that Glance spells otherwise
DISTRO_SPELLING = {"sles": "sled", "redhat-based": "rhel", "archlinux": "arch", "mandriva": "mandriva",
                   "rocky": "rhel", "almalinux": "rhel", "oraclelinux": "rhel"}
ARCHITECTURES = {"x86_64": "x86_64", "i386": "i686", "i686": "i686", "aarch64": "aarch64"}


def _os_fields(job: CloudJob) -> dict[str, str]:
    """os_type, os_distro and os_version from the inspected guest, else from the descriptor."""
    from vmferry.tables import os as ostable

    out: dict[str, str] = {}
    guest_os = getattr(job.guest, "os", None)
    family = (guest_os.type if guest_os and guest_os.type in ("linux", "windows") else job.vm.os.family) or ""
    if family in ("linux", "windows"):
        out["os_type"] = family
    distro = version = None
    if guest_os is not None and guest_os.distro not in ("", "unknown"):
        distro, version = guest_os.distro, guest_os.version or None
    else:
        row = ostable.resolve(job.vm.os)
        short = ostable.to_libosinfo(job.vm.os) if row is not None else None
        if short:
            stem, ver = ostable._osinfo_stem(short)
            distro, version = ("windows" if stem.startswith("win") else stem), (job.vm.os.version or ver)
    distro = DISTRO_SPELLING.get(distro or "", distro)
    if distro in OS_DISTROS:
        out["os_distro"] = distro
        if version:
            out["os_version"] = version
    elif distro:
        job.finding("VMF-OSK-001", "info", f"os_distro not written: '{distro}' is not in Glance's os_distro "
                    "vocabulary", "set os_distro by hand if the cloud needs it")
    return out


def properties(job: CloudJob) -> dict[str, str]:
    """The Glance properties of the system's boot image."""
    from vmferry.targets.kvm import choose_machine

    c = job.choice
    props: dict[str, str] = {"hw_disk_bus": c.bus_value, "hw_vif_model": c.nic_value,
                             "hw_firmware_type": "uefi" if c.firmware == "efi" else "bios"}
    if c.bus == "virtio-scsi":
        props["hw_scsi_model"] = "virtio-scsi"
    machine = choose_machine(job.vm, None)
    if c.bus == "ide" and machine == "q35":   # q35 has no IDE controller
        machine = "pc"
        job.change("mapped", "machine type", "q35 -> pc (the boot disk is on IDE, which q35 lacks)")
    props["hw_machine_type"] = machine
    if c.secure_boot:
        props["os_secure_boot"] = "required"
        props["hw_machine_type"] = "q35"
    arch = ARCHITECTURES.get(getattr(getattr(job.guest, "os", None), "arch", "") or "x86_64")
    if arch:
        props["architecture"] = arch
    props.update(_os_fields(job))
    _, sockets, cores, threads = job.cpu
    props.update(hw_cpu_sockets=str(sockets), hw_cpu_cores=str(cores), hw_cpu_threads=str(threads))
    tools = {t.name for t in getattr(job.guest, "tools", [])}
    if "qemu-guest-agent" in tools:
        props["hw_qemu_guest_agent"] = "yes"
    return props


def write(job: CloudJob) -> None:
    props = properties(job)
    name = job.options.get("image_name") or job.vm.name or job.vm.id
    mem = job.memory_mib
    for d in job.disks:
        doc = {"name": name if d.boot else f"{name}-{d.disk.id}", "disk_format": d.format if d.format != "raw"
               else "raw", "container_format": "bare", "min_disk": -(-d.virtual_size // (1 << 30)),
               "file": d.href, "visibility": "private"}
        if d.boot:
            doc["min_ram"] = mem or 0
            doc["properties"] = props
        else:
            doc["properties"] = {"hw_disk_bus": props["hw_disk_bus"]}
        href = f"{os.path.splitext(d.href)[0]}.glance.json"
        job.write_json(href, doc, "Glance image: fields and properties" + ("" if d.boot else " (data disk)"))
    for key, value in props.items():
        job.change("mapped", f"glance {key}", value)
    for n in job.vm.nics_for(job.profile):
        job.change("mapped", f"NIC {n.index}", f"{n.source_model or n.model} -> {job.choice.nic_value} "
                   "(hw_vif_model: every NIC of the instance)")
        if n.mac:
            job.change("dropped", f"NIC {n.index} MAC {n.mac}", "Neutron assigns the port's MAC")
    for drive in job.vm.drives:
        job.change("dropped", f"{drive.kind} drive {drive.instance_id}", "Glance images carry disks only")


def rules(portable, vm, row) -> list[Finding]:
    out = []
    if len({(n.network or "") for n in vm.nics}) > 1:
        out.append(Finding("VMF-OSK-002", "info", f"{len(vm.nics)} NICs on several networks: Nova attaches ports "
                           "at boot, the image says only their model", vm.id,
                           "pass one --nic per network to 'openstack server create'"))
    return out


def check_upload(options: dict) -> None:
    if not options.get("cloud"):
        raise UsageError("an upload to OpenStack needs the clouds.yaml cloud to use")


def upload(report, options: dict) -> list[dict]:
    """Upload every written image with its properties to the clouds.yaml cloud ``options["cloud"]``."""
    check_upload(options)
    cloud = options["cloud"]
    try:
        import openstack
        from openstack import exceptions as os_exc
    except ImportError as exc:  # pragma: no cover - a dependency of the cloud extra
        raise TargetError("openstacksdk is not installed (pip install 'vmferry[openstack]')") from exc
    uploads = []
    try:
        conn = openstack.connect(cloud=cloud)
        for d in report.documents:
            if not d["href"].endswith(".glance.json"):
                continue
            with open(os.path.join(report.output, d["href"]), encoding="utf-8") as fh:
                doc = json.load(fh)
            path = os.path.join(report.output, doc["file"])
            image = conn.image.create_image(
                name=doc["name"], filename=path, disk_format=doc["disk_format"],
                container_format=doc["container_format"], min_disk=doc["min_disk"], min_ram=doc.get("min_ram", 0),
                visibility=doc["visibility"], allow_duplicates=True, validate_checksum=False,
                **doc["properties"])
            uploads.append({"href": doc["file"], "where": f"{cloud}: image {image.id}", "id": image.id})
    except os_exc.SDKException as exc:
        raise TargetError(f"upload to {cloud} failed: {exc}") from exc
    return uploads
