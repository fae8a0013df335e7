"""Disk images: formats, detection, conversion and the parallel streamOptimized VMDK writer.

Public API::

    from vmferry.disks import open_disk, convert_disk, get_format, default_format, detect

    disk = open_disk("in.qcow2")                    # or open_disk("x.ova", offset, size)
    convert_disk(disk, "out.vmdk", "vmdk-stream")    # atomic, free space checked first

See ``docs/disks.md``.
"""

from vmferry.disks.convert import ConvertResult, OpenedDisk, convert_disk, estimate_output, open_disk
from vmferry.disks.formats import (
                                   FORMATS,
                                   Detected,
                                   DiskFormat,
                                   Finding,
                                   default_format,
                                   detect,
                                   format_mismatch,
                                   get_format,
                                   ovf_uri_format,
)
from vmferry.disks.vmdk_stream import StreamResult, write_stream_vmdk

__all__ = ["FORMATS", "ConvertResult", "Detected", "DiskFormat", "Finding", "OpenedDisk", "StreamResult",
           "convert_disk", "default_format", "detect", "estimate_output", "format_mismatch", "get_format",
           "open_disk", "ovf_uri_format", "write_stream_vmdk"]
