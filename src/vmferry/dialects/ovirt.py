"""oVirt / RHV conventions with a portable meaning, as oVirt's engine and virt-v2v (``-o rhv``,
``-o vdsm``, ``-o rhv-upload``; ``lib/create_ovf.ml``) write them:

* the OS is an oVirt name in the OperatingSystemSection's ``Description`` (``rhel_8x64``,
  ``windows_2022``), and a number in ``ovirt:id`` (the section's ``ovf:id`` is the VM's UUID, not a CIM
  code); the name wins when both are there (virt-v2v writes ``ovirt:id`` 5, other Linux, for RHEL 8);
* a NIC's ``ResourceSubType`` is oVirt's interface type number (1 rtl8139, 2 e1000, 3 virtio: rows of
  :mod:`vmferry.tables.nics`);
* a disk has no controller Item: its bus is the Disk's ``ovf:disk-interface`` (``VirtIO``,
  ``VirtIO_SCSI``, ``IDE``, ``SATA``).

CPU topology (``rasd:num_of_sockets`` × ``rasd:cpu_per_socket`` × ``rasd:threads_per_cpu``), image-path
HostResources, fileRefs naming a File's href, ``ovf:volume-format`` and ``rasd:MACAddress`` are read by
the OVF model itself (:mod:`vmferry.ovf.hardware`, :mod:`vmferry.ovf.envelope`), for every dialect.
"""

from __future__ import annotations

from vmferry.ovf.sections import DiskDef, OperatingSystem
from vmferry.portable import Controller, OsSpec
from vmferry.tables.os_ovirt import ovirt_name

# ovf:disk-interface -> (controller kind, portable model)
DISK_INTERFACES = {"virtio": ("other", "virtio-blk"), "virtio_scsi": ("scsi", "virtio-scsi"),
                   "ide": ("ide", "piix4"), "sata": ("sata", "ahci"), "spapr_vscsi": ("scsi", None)}


def os_name(section: OperatingSystem) -> str | None:
    """The oVirt OS name of an OperatingSystemSection, from its Description or its ``ovirt:id``."""
    return ovirt_name(section.description) or ovirt_name(section.ovirt_id)


def read_os(section: OperatingSystem, spec: OsSpec) -> None:
    """Complete ``spec`` with the oVirt OS name (the OS table maps it in ``_fill_os``)."""
    spec.ovirt = os_name(section)


# oVirt's own <Type> of an Item (its VmDeviceGeneralType) -> portable device kind
DEVICE_TYPES = {"video": "video", "sound": "sound", "balloon": "other", "rng": "other", "watchdog": "other",
                "controller": "other", "graphics": "video"}


def device_kind(item) -> str | None:
    """The device kind oVirt states in an Item's unqualified ``<Type>`` (virt-v2v writes its video with
    ResourceType 20 in RHV export domains, which DMTF reads as a storage controller)."""
    for child in item.element:
        if child.tag == "Type" and child.text:
            return DEVICE_TYPES.get(child.text.strip().lower())
    return None


def disk_controller(ddef: DiskDef) -> Controller | None:
    """A controller standing for the Disk's ``ovf:disk-interface`` (oVirt states no controller Item)."""
    interface = (ddef.disk_interface or "").strip()
    kind_model = DISK_INTERFACES.get(interface.lower())
    if kind_model is None:
        return None
    return Controller(id=f"ovirt-{interface}", kind=kind_model[0], model=kind_model[1], source_model=interface)
