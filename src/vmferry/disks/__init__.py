"""Disk images: formats, detection, conversion and the parallel streamOptimized VMDK writer.

Public API::

    from vmferry.disks import open_disk, convert_disk, get_format, default_format, detect

    disk = open_disk("in.qcow2")                    # or open_disk("x.ova", offset, size)
    convert_disk(disk, "out.vmdk", "vmdk-stream")    # atomic, free space checked first

Names are imported on first use (PEP 562) so that ``vmferry unpack --verify-only`` starts fast.
See ``docs/disks.md``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ConvertResult": "convert", "OpenedDisk": "convert", "convert_disk": "convert",
    "estimate_output": "convert", "open_disk": "convert",
    "FORMATS": "formats", "Detected": "formats", "DiskFormat": "formats",
    "default_format": "formats", "detect": "formats", "format_mismatch": "formats",
    "get_format": "formats", "ovf_uri_format": "formats",
    "StreamResult": "vmdk_stream", "write_stream_vmdk": "vmdk_stream",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vmferry.disks' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vmferry.disks.{_EXPORTS[name]}"), name)
