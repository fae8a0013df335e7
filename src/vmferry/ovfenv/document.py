"""The OVF environment document (DSP0243 §11, schema DSP8027): ``ovf-env.xml``.

::

    <Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" oe:id="vm">
      <PlatformSection> Kind Version Vendor Locale [Timezone] </PlatformSection>
      <PropertySection> <Property oe:key="class.key.instance" oe:value="..."/> ... </PropertySection>
      [<ve:EthernetAdapterSection> <ve:Adapter ve:mac=".." ve:network=".." ve:unitNumber=".."/> ]
      [<Entity oe:id="sibling"> <PropertySection> ... </PropertySection> </Entity> ...]
    </Environment>

For a virtual system inside a VirtualSystemCollection, the PropertySection holds its own properties and
those of the collection, and one ``Entity`` per sibling virtual system carries the sibling's properties
(so that, say, a web server learns its database's address).

Only the DMTF namespace is used, except for the optional ``EthernetAdapterSection``, which exists
solely as VMware's extension (``http://www.vmware.com/schema/ovfenv``) and is written only when asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from vmferry.errors import UsageError, XmlError

OE_NS = "http://schemas.dmtf.org/ovf/environment/1"
VE_NS = "http://www.vmware.com/schema/ovfenv"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


def _oe(name: str) -> str:
    return f"{{{OE_NS}}}{name}"


def _ve(name: str) -> str:
    return f"{{{VE_NS}}}{name}"


@dataclass
class Platform:
    """``PlatformSection``: what deployed the VM."""

    kind: str | None = "vmferry"
    version: str | None = None
    vendor: str | None = "vmferry"
    locale: str | None = "en"
    timezone: int | None = None      # minutes from UTC, per DSP8027


@dataclass
class Adapter:
    """One NIC as VMware's ``EthernetAdapterSection`` describes it."""

    mac: str
    network: str | None = None
    unit_number: int | None = None


@dataclass
class Environment:
    """An OVF environment: the id of the virtual system, its platform and its properties (in order)."""

    id: str
    properties: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = field(default_factory=Platform)
    adapters: list[Adapter] = field(default_factory=list)
    entities: dict[str, dict[str, str]] = field(default_factory=dict)   # sibling id -> its properties

    def to_xml(self) -> bytes:
        """The document as UTF-8 bytes with an XML declaration."""
        root = etree.Element(_oe("Environment"), nsmap={None: OE_NS, "oe": OE_NS, "xsi": XSI_NS})
        root.set(_oe("id"), self.id)
        if self.platform is not None:
            plat = etree.SubElement(root, _oe("PlatformSection"))
            for tag, value in (("Kind", self.platform.kind), ("Version", self.platform.version),
                               ("Vendor", self.platform.vendor), ("Locale", self.platform.locale),
                               ("Timezone", self.platform.timezone)):
                if value is not None:
                    etree.SubElement(plat, _oe(tag)).text = str(value)
        _property_section(root, self.properties)
        if self.adapters:
            eth = etree.SubElement(root, _ve("EthernetAdapterSection"), nsmap={"ve": VE_NS})
            for a in self.adapters:
                el = etree.SubElement(eth, _ve("Adapter"))
                el.set(_ve("mac"), a.mac)
                if a.network is not None:
                    el.set(_ve("network"), a.network)
                if a.unit_number is not None:
                    el.set(_ve("unitNumber"), str(a.unit_number))
        for entity_id, props in self.entities.items():
            entity = etree.SubElement(root, _oe("Entity"))
            entity.set(_oe("id"), entity_id)
            _property_section(entity, props)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _property_section(parent: etree._Element, properties: dict[str, str]) -> None:
    section = etree.SubElement(parent, _oe("PropertySection"))
    for key, value in properties.items():
        prop = etree.SubElement(section, _oe("Property"))
        try:
            prop.set(_oe("key"), key)
            prop.set(_oe("value"), value)
        except ValueError as exc:  # control characters and the like cannot be carried by XML 1.0
            raise UsageError(f"property {key!r}: the value cannot be written in XML ({exc})") from exc


def _read_properties(parent: etree._Element) -> dict[str, str]:
    section = parent.find(_oe("PropertySection"))
    if section is None:
        return {}
    return {p.get(_oe("key"), ""): p.get(_oe("value"), "") for p in section.findall(_oe("Property"))}


def parse_environment(data: bytes, *, path: str | None = None) -> Environment:
    """Read an ``ovf-env.xml`` back (safely: no DTD, no entities, no network)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"not well-formed XML: {exc}", path=path) from exc
    if root.tag != _oe("Environment"):
        raise XmlError(f"root element is {root.tag}, not an OVF Environment", path=path)
    if root.getroottree().docinfo.internalDTD is not None:
        raise XmlError("a DTD is not allowed in an OVF environment", path=path)
    env = Environment(id=root.get(_oe("id"), ""), platform=None)
    plat = root.find(_oe("PlatformSection"))
    if plat is not None:
        def text(tag: str) -> str | None:
            el = plat.find(_oe(tag))
            return el.text if el is not None else None
        tz = text("Timezone")
        env.platform = Platform(text("Kind"), text("Version"), text("Vendor"), text("Locale"),
                                int(tz) if tz and tz.lstrip("-").isdigit() else None)
    env.properties = _read_properties(root)
    for entity in root.findall(_oe("Entity")):
        env.entities[entity.get(_oe("id"), "")] = _read_properties(entity)
    eth = root.find(_ve("EthernetAdapterSection"))
    if eth is not None:
        for a in eth.findall(_ve("Adapter")):
            unit = a.get(_ve("unitNumber"))
            env.adapters.append(Adapter(a.get(_ve("mac"), ""), a.get(_ve("network")),
                                        int(unit) if unit and unit.isdigit() else None))
    return env
