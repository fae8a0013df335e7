"""Namespaces and names per OVF version, in one place (no other module hard-codes a URI).

Real descriptors are messy: VirtualBox writes the SASD/EPASD namespaces with a ``.xsd`` suffix, some
tools add or drop a trailing slash, 0.9 uses VMware's pre-DMTF envelope namespace. :func:`role_of`
maps any URI to a *role* (``ovf``, ``rasd``, ``vssd``, ``sasd``, ``epasd``, ``cim``, ``vmw``, ``vbox``,
...) so readers look elements up by role and local name, and :func:`is_canonical` tells when the
URI was not the standard spelling (reported as a finding).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

CIM_BASE = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML = "http://www.w3.org/XML/1998/namespace"

OVF_09 = "http://www.vmware.com/schema/ovf/1/envelope"
OVF_1 = "http://schemas.dmtf.org/ovf/envelope/1"
OVF_2 = "http://schemas.dmtf.org/ovf/envelope/2"
OVFENV_1 = "http://schemas.dmtf.org/ovf/environment/1"
OVFENV_2 = "http://schemas.dmtf.org/ovf/environment/2"

RASD = CIM_BASE + "CIM_ResourceAllocationSettingData"
VSSD = CIM_BASE + "CIM_VirtualSystemSettingData"
SASD = CIM_BASE + "CIM_StorageAllocationSettingData"
EPASD = CIM_BASE + "CIM_EthernetPortAllocationSettingData"
PASD = CIM_BASE + "CIM_ProcessorAllocationSettingData"
CIM = "http://schemas.dmtf.org/wbem/wscim/1/common"

VMW = "http://www.vmware.com/schema/ovf"
VBOX = "http://www.virtualbox.org/ovf/machine"
XENOVF = "http://schemas.citrix.com/ovf/envelope/1"
OVIRT = "http://www.ovirt.org/ovf"
HYPERV = "http://schemas.microsoft.com/hyperv/ovf"  # not standardised; detected by prefix below

# role -> canonical URI
CANONICAL: dict[str, str] = {
    "rasd": RASD, "vssd": VSSD, "sasd": SASD, "epasd": EPASD, "pasd": PASD, "cim": CIM,
    "vmw": VMW, "vbox": VBOX, "xenovf": XENOVF, "ovirt": OVIRT, "xsi": XSI, "xml": XML,
}

ENVELOPE_VERSIONS = {OVF_09: "0.9", OVF_1: "1.x", OVF_2: "2.x"}


@lru_cache(maxsize=512)
def _normalise(uri: str) -> str:
    u = uri.strip()
    if u.endswith(".xsd"):
        u = u[:-4]
    return u.rstrip("/").lower().replace("https://", "http://")


@lru_cache(maxsize=512)
def role_of(uri: str | None) -> str | None:
    """The role of a namespace URI (``ovf``, ``rasd``, ``vmw``, ...), or None for an unknown one."""
    if not uri:
        return None
    norm = _normalise(uri)
    for env_uri in ENVELOPE_VERSIONS:
        if norm == _normalise(env_uri):
            return "ovf"
    if norm in (_normalise(OVFENV_1), _normalise(OVFENV_2)):
        return "ovfenv"
    for role, canon in CANONICAL.items():
        if norm == _normalise(canon):
            return role
    if norm.startswith(_normalise(CIM_BASE)):
        return "cim-class"
    if "citrix.com" in norm or "xensource" in norm:
        return "xenovf"
    if "microsoft.com" in norm:
        return "hyperv"
    if "ovirt.org" in norm:
        return "ovirt"
    return None


def is_canonical(uri: str) -> bool:
    """True when ``uri`` is spelt exactly as the standard (or vendor) defines it."""
    role = role_of(uri)
    if role == "ovf":
        return uri in ENVELOPE_VERSIONS
    if role in CANONICAL:
        return uri == CANONICAL[role]
    return True


def envelope_version(uri: str | None) -> str | None:
    """``0.9``, ``1.x`` or ``2.x`` for a (possibly misspelt) envelope namespace, else None."""
    if not uri:
        return None
    if uri in ENVELOPE_VERSIONS:
        return ENVELOPE_VERSIONS[uri]
    norm = _normalise(uri)
    for env_uri, version in ENVELOPE_VERSIONS.items():
        if norm == _normalise(env_uri):
            return version
    return None


@dataclass(frozen=True)
class OvfNames:
    """Names for writing one OVF version (COT's name_helper idea): namespace URIs and tag spellings."""

    version: str          # "0.9", "1.x", "2.x"
    ovf: str              # envelope namespace URI

    def tag(self, local: str) -> str:
        return f"{{{self.ovf}}}{local}"

    def attr(self, local: str) -> str:
        return f"{{{self.ovf}}}{local}"

    @property
    def instance_id(self) -> str:
        """RASD's InstanceID is spelt InstanceId in OVF 0.9."""
        return "InstanceId" if self.version == "0.9" else "InstanceID"

    @property
    def has_named_sections(self) -> bool:
        """0.9 writes ``<Section xsi:type="ovf:DiskSection_Type">``; 1.x/2.x write ``<DiskSection>``."""
        return self.version != "0.9"


NAMES = {"0.9": OvfNames("0.9", OVF_09), "1.x": OvfNames("1.x", OVF_1), "2.x": OvfNames("2.x", OVF_2)}


def names_for(version: str) -> OvfNames:
    return NAMES[version]
