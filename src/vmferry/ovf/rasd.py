"""CIM ResourceType codes (CIM_ResourceAllocationSettingData.ResourceType) and controller names."""

from __future__ import annotations

from enum import IntEnum


class ResourceType(IntEnum):
    OTHER = 1
    COMPUTER_SYSTEM = 2
    PROCESSOR = 3
    MEMORY = 4
    IDE_CONTROLLER = 5
    PARALLEL_SCSI_HBA = 6
    FC_HBA = 7
    ISCSI_HBA = 8
    IB_HCA = 9
    ETHERNET_ADAPTER = 10
    OTHER_NETWORK_ADAPTER = 11
    IO_SLOT = 12
    IO_DEVICE = 13
    FLOPPY_DRIVE = 14
    CD_DRIVE = 15
    DVD_DRIVE = 16
    DISK_DRIVE = 17
    TAPE_DRIVE = 18
    STORAGE_EXTENT = 19
    OTHER_STORAGE_DEVICE = 20
    SERIAL_PORT = 21
    PARALLEL_PORT = 22
    USB_CONTROLLER = 23
    GRAPHICS_CONTROLLER = 24
    IEEE_1394_CONTROLLER = 25
    PARTITIONABLE_UNIT = 26
    BASE_PARTITIONABLE_UNIT = 27
    POWER = 28
    COOLING_CAPACITY = 29
    ETHERNET_SWITCH_PORT = 30
    LOGICAL_DISK = 31
    STORAGE_VOLUME = 32
    ETHERNET_CONNECTION = 33
    SOUND_CARD = 35


CONTROLLER_TYPES = {ResourceType.IDE_CONTROLLER, ResourceType.PARALLEL_SCSI_HBA, ResourceType.FC_HBA,
                    ResourceType.ISCSI_HBA, ResourceType.OTHER_STORAGE_DEVICE, ResourceType.USB_CONTROLLER}
STORAGE_DEVICE_TYPES = {ResourceType.DISK_DRIVE, ResourceType.CD_DRIVE, ResourceType.DVD_DRIVE,
                        ResourceType.FLOPPY_DRIVE, ResourceType.LOGICAL_DISK, ResourceType.STORAGE_EXTENT}
NIC_TYPES = {ResourceType.ETHERNET_ADAPTER, ResourceType.OTHER_NETWORK_ADAPTER,
             ResourceType.ETHERNET_CONNECTION, ResourceType.ETHERNET_SWITCH_PORT}


def controller_kind(resource_type: int | None, subtype: str | None) -> str:
    """Classify a storage controller as ``ide``, ``scsi``, ``sata``, ``nvme`` or ``other``.

    ResourceType 20 ("other storage device") is SATA/AHCI for VirtualBox (subtype ``AHCI``) and VMware
    (``vmware.sata.ahci``), NVMe for VMware (``vmware.nvme.controller``).
    """
    sub = (subtype or "").lower()
    if resource_type == ResourceType.IDE_CONTROLLER:
        return "ide"
    if resource_type == ResourceType.PARALLEL_SCSI_HBA:
        return "scsi"
    if "nvme" in sub:
        return "nvme"
    if "sata" in sub or "ahci" in sub:
        return "sata"
    if resource_type == ResourceType.OTHER_STORAGE_DEVICE and ("scsi" in sub or "lsi" in sub):
        return "scsi"
    return "other"
