"""Disk format URIs of ``ovf:format`` and vmferry's short format names, in one place.

The short names are those of :data:`vmferry.disks.formats.FORMATS` (``vmdk-stream``, ``vmdk-sparse``,
``vmdk-flat``, ``vhd``, ``vhdx``, ``qcow2``, ``raw``) plus ``vdi`` and ``iso`` for what a descriptor may
name; ``unknown`` when a URI is given but not recognised.
"""

from __future__ import annotations

VMDK_URI = "http://www.vmware.com/interfaces/specifications/vmdk.html"

# URI written for each short name
FORMAT_URIS = {
    "vmdk-stream": VMDK_URI + "#streamOptimized",
    "vmdk-sparse": VMDK_URI + "#sparse",
    "vmdk-flat": VMDK_URI + "#monolithicFlat",
    "vhd": "http://technet.microsoft.com/en-us/library/bb676673.aspx",
    "vhd-fixed": "http://technet.microsoft.com/en-us/library/bb676673.aspx",
    "vhdx": "http://technet.microsoft.com/en-us/library/hh831446.aspx",
    "qcow2": "http://www.gnome.org/~markmc/qcow-image-format.html",
    "raw": "http://www.qemu.org/raw",
}

_VMDK_FRAGMENTS = {"streamoptimized": "vmdk-stream", "sparse": "vmdk-sparse", "monolithicsparse": "vmdk-sparse",
                   "monolithicflat": "vmdk-flat", "flat": "vmdk-flat", "compressed": "vmdk-stream"}


def format_of_uri(uri: str | None) -> str | None:
    """The short name an ``ovf:format`` URI announces; None when absent, ``unknown`` when not understood."""
    if not uri:
        return None
    low = uri.lower()
    if "vmdk" in low:
        frag = low.rsplit("#", 1)[-1] if "#" in low else ""
        return _VMDK_FRAGMENTS.get(frag, "vmdk-sparse")
    if "hh831446" in low or "vhdx" in low:
        return "vhdx"
    if "bb676673" in low or "vhd" in low or "virtualharddisk" in low:
        return "vhd"
    if "qcow" in low:
        return "qcow2"
    if "vdi" in low or "virtualbox" in low:
        return "vdi"
    if "iso" in low.rsplit("/", 1)[-1]:
        return "iso"
    if "raw" in low:
        return "raw"
    return "unknown"
