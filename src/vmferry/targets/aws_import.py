"""The EC2 ``ImportImage`` request that VM Import/Export takes, written as the JSON document of
``aws ec2 import-image --cli-input-json file://import-image.json``.

The field list is data (:data:`REQUEST`), taken from the *Amazon EC2 API Reference*: ``ImportImage``
(request parameters), ``ImageDiskContainer``, ``UserBucket``, ``ClientData``,
``ImportImageLicenseConfigurationRequest``, ``TagSpecification`` and ``Tag``; the valid values are the
ones the reference lists (``Format``: OVA | VHD | VHDX | VMDK | RAW; ``BootMode``: legacy-bios | uefi |
uefi-preferred, the last not supported for imports; ``LicenseType``: AWS | BYOL; ``Platform``: Windows |
Linux; ``Architecture``: i386 | x86_64; ``Hypervisor``: xen). :func:`problems` checks a document against
it; :func:`build_request` writes one and checks it.

    doc = build_request([ImportDisk("vm/disk1.vmdk", "vmdk-stream")], bucket="my-bucket", boot_mode="uefi",
                        platform="Linux", description="web01 from web01.ova")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from vmferry.errors import TargetError, UsageError


@dataclass(frozen=True)
class Field:
    kind: str                                  # string, boolean, double, timestamp, list, structure
    values: tuple[str, ...] = ()               # the valid values, when the reference lists them
    members: dict[str, Field] = field(default_factory=dict)   # of a structure
    item: Field | None = None                  # of a list


S = Field("string")
USER_BUCKET = Field("structure", members={"S3Bucket": S, "S3Key": S})
DISK_CONTAINER = Field("structure", members={
    "Description": S, "DeviceName": S, "Format": Field("string", ("OVA", "VHD", "VHDX", "VMDK", "RAW")),
    "SnapshotId": S, "Url": S, "UserBucket": USER_BUCKET})
TAG = Field("structure", members={"Key": S, "Value": S})
REQUEST: dict[str, Field] = {
    "Architecture": Field("string", ("i386", "x86_64")),
    "BootMode": Field("string", ("legacy-bios", "uefi", "uefi-preferred")),
    "ClientData": Field("structure", members={"Comment": S, "UploadEnd": Field("timestamp"),
                                              "UploadSize": Field("double"), "UploadStart": Field("timestamp")}),
    "ClientToken": S,
    "Description": S,
    "DiskContainers": Field("list", item=DISK_CONTAINER),
    "DryRun": Field("boolean"),
    "Encrypted": Field("boolean"),
    "Hypervisor": Field("string", ("xen",)),
    "KmsKeyId": S,
    "LicenseSpecifications": Field("list", item=Field("structure", members={"LicenseConfigurationArn": S})),
    "LicenseType": Field("string", ("AWS", "BYOL")),
    "Platform": Field("string", ("Windows", "Linux")),
    "RoleName": S,
    "TagSpecifications": Field("list", item=Field("structure", members={
        "ResourceType": S, "Tags": Field("list", item=TAG)})),
    "UsageOperation": S,
}
IMPORT_BOOT_MODES = ("legacy-bios", "uefi")      # uefi-preferred: "isn't supported for importing images"
# vmferry's disk formats (vmferry.disks.formats) -> ImageDiskContainer Format
DISK_FORMATS = {"vmdk-stream": "VMDK", "vhd": "VHD", "vhd-fixed": "VHD", "vhdx": "VHDX", "raw": "RAW", "ova": "OVA"}
MAX_DESCRIPTION = 255


@dataclass(frozen=True)
class ImportDisk:
    """One image in the bucket: its key and vmferry's format name (or ``ova`` for a whole OVA)."""
    key: str
    format: str
    description: str = ""


def _problems(value, spec: Field, where: str) -> list[str]:
    kinds = {"string": str, "boolean": bool, "double": (int, float), "timestamp": str, "list": list,
             "structure": dict}
    if not isinstance(value, kinds[spec.kind]) or (spec.kind == "double" and isinstance(value, bool)):
        return [f"{where}: a {spec.kind} is expected, not {type(value).__name__}"]
    if spec.values and value not in spec.values:
        return [f"{where}: {value!r} is not one of {', '.join(spec.values)}"]
    out = []
    if spec.kind == "list":
        for i, item in enumerate(value):
            out += _problems(item, spec.item, f"{where}[{i}]")
    elif spec.kind == "structure":
        for key, item in value.items():
            if key not in spec.members:
                out.append(f"{where}.{key}: not a field of the request")
            else:
                out += _problems(item, spec.members[key], f"{where}.{key}")
    return out


def problems(doc: dict) -> list[str]:
    """What in ``doc`` does not fit the ImportImage request (field names, types, valid values); empty
    when it fits."""
    return _problems(doc, Field("structure", members=REQUEST), "ImportImage")


def build_request(disks: list[ImportDisk], *, bucket: str, boot_mode: str, platform: str | None = None,
                  license_type: str | None = None, description: str = "", architecture: str | None = "x86_64",
                  role_name: str | None = None) -> dict:
    """The ImportImage request for ``disks`` (the boot disk first) in ``bucket``; :class:`TargetError`
    when it would not fit the request's field list."""
    if not disks:
        raise TargetError("an import needs at least one disk image")
    if boot_mode not in IMPORT_BOOT_MODES:
        raise UsageError(f"boot mode {boot_mode!r} cannot be imported (one of {', '.join(IMPORT_BOOT_MODES)})")
    if not bucket:
        raise UsageError("an import needs the S3 bucket that holds the images")
    containers = []
    for i, d in enumerate(disks):
        fmt = DISK_FORMATS.get(d.format)
        if fmt is None:
            raise TargetError(f"VM Import/Export takes no {d.format} images (it takes "
                              f"{', '.join(sorted(DISK_FORMATS))})")
        c = {"Description": (d.description or f"disk {i + 1}")[:MAX_DESCRIPTION], "Format": fmt,
             "UserBucket": {"S3Bucket": bucket, "S3Key": d.key}}
        containers.append(c)
    doc: dict = {"Description": description[:MAX_DESCRIPTION], "DiskContainers": containers, "BootMode": boot_mode}
    if architecture:
        doc["Architecture"] = architecture
    if platform:
        doc["Platform"] = platform
    if license_type:
        doc["LicenseType"] = license_type
    if role_name:
        doc["RoleName"] = role_name
    found = problems(doc)
    if found:
        raise TargetError("the import-image request does not fit the EC2 API: " + "; ".join(found))
    return doc


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"
