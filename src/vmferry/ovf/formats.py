"""Disk format URIs of ``ovf:format`` and their short names."""

from __future__ import annotations

# (substring of the lower-cased URI, short name); first match wins
_FORMATS = (
    ("vmdk.html#streamoptimized", "vmdk-streamOptimized"),
    ("vmdk.html#monolithicsparse", "vmdk-monolithicSparse"),
    ("vmdk.html#monolithicflat", "vmdk-monolithicFlat"),
    ("vmdk.html#sparse", "vmdk-sparse"),
    ("vmdk.html#compressed", "vmdk-compressed"),
    ("vmdk", "vmdk"),
    ("vhdx", "vhdx"),
    ("virtualhardisk", "vhd"),
    ("vhd", "vhd"),
    ("qcow2", "qcow2"),
    ("qcow", "qcow2"),
    ("vdi", "vdi"),
    ("iso", "iso"),
    ("raw", "raw"),
)

FORMAT_URIS = {
    "vmdk-streamOptimized": "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized",
    "vmdk-monolithicSparse": "http://www.vmware.com/interfaces/specifications/vmdk.html#monolithicSparse",
    "vhd": "http://technet.microsoft.com/en-us/virtualization/bb676673.aspx",
    "qcow2": "http://www.gnome.org/~markmc/qcow-image-format.html",
    "raw": "http://www.vmware.com/interfaces/specifications/raw.html",
}


def short_format(uri: str | None) -> str | None:
    if not uri:
        return None
    low = uri.lower()
    for needle, name in _FORMATS:
        if needle in low:
            return name
    return "unknown"
