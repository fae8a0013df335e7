"""Views on the envelope-level and system-level OVF sections (References, Disk, Network, Product, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from vmferry.ovf.names import role_of
from vmferry.ovf.units import parse_byte_units, parse_int
from vmferry.ovf.xmlmodel import ChildText, Node, OvfAttr, iter_children, xsi_type


def _bool(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")


def find_sections(element, name: str):
    """Sections called ``name`` (e.g. ``DiskSection``) under ``element``: named, or 0.9's typed
    ``<Section xsi:type="ovf:DiskSection_Type">``."""
    for child in iter_children(element, "ovf"):
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == name or (tag == "Section" and xsi_type(child) == name + "_Type"):
            yield child


class FileRef(Node):
    """``References/File``."""

    id = OvfAttr("id")
    href = OvfAttr("href")
    size_text = OvfAttr("size")
    compression = OvfAttr("compression")
    chunk_size_text = OvfAttr("chunkSize")

    @property
    def size(self) -> int | None:
        return parse_int(self.size_text)

    @property
    def chunk_size(self) -> int | None:
        return parse_int(self.chunk_size_text)


VOLUME_FORMATS = {"COW": "qcow2", "RAW": "raw"}


class DiskDef(Node):
    """``DiskSection/Disk``: a virtual disk, backed by a file or blank."""

    disk_id = OvfAttr("diskId")
    file_ref = OvfAttr("fileRef")
    capacity_text = OvfAttr("capacity")
    capacity_units = OvfAttr("capacityAllocationUnits")
    populated_size_text = OvfAttr("populatedSize")
    format = OvfAttr("format")
    parent_ref = OvfAttr("parentRef")
    volume_format = OvfAttr("volume-format")      # oVirt/RHV: COW (qcow2) or RAW
    disk_interface = OvfAttr("disk-interface")    # oVirt/RHV: VirtIO, VirtIO_SCSI, IDE, SATA, SPAPR_VSCSI

    @property
    def capacity_bytes(self) -> int | None:
        """Capacity in bytes; ``${prop}`` references resolve through ProductSection defaults."""
        text = self.capacity_text
        if text is None:
            return None
        text = text.strip()
        if text.startswith("${") and text.endswith("}"):
            text = self.envelope.property_default(text[2:-1]) or ""
        value = parse_int(text)
        if value is None:
            return None
        mult = parse_byte_units(self.capacity_units) if self.capacity_units else 1
        return None if mult is None else value * mult

    @property
    def populated_bytes(self) -> int | None:
        return parse_int(self.populated_size_text)

    @property
    def format_name(self) -> str | None:
        """Short format name of the backing file. oVirt/RHV state it in ``ovf:volume-format`` (COW: qcow2,
        RAW: raw), whatever ``ovf:format`` says (virt-v2v writes a placeholder URI, the engine a VMDK one)."""
        from vmferry.ovf.formats import format_of_uri

        volume = (self.volume_format or "").strip().upper()
        if volume in VOLUME_FORMATS:
            return VOLUME_FORMATS[volume]
        return format_of_uri(self.format)


class NetworkDef(Node):
    """``NetworkSection/Network``."""

    name = OvfAttr("name")
    description = ChildText("ovf", "Description")


class DeploymentOption(Node):
    """``DeploymentOptionSection/Configuration``: a deployment profile."""

    id = OvfAttr("id")
    default_text = OvfAttr("default")
    label = ChildText("ovf", "Label")
    description = ChildText("ovf", "Description")

    @property
    def is_default(self) -> bool:
        return _bool(self.default_text or "")


@dataclass(frozen=True)
class PropertyValue:
    value: str
    configuration: str | None


class Property(Node):
    """``ProductSection/Property`` with its per-profile ``Value`` children."""

    key = OvfAttr("key")
    type = OvfAttr("type")
    qualifiers = OvfAttr("qualifiers")
    default = OvfAttr("value")
    user_configurable_text = OvfAttr("userConfigurable")
    password_text = OvfAttr("password")
    label = ChildText("ovf", "Label")
    description = ChildText("ovf", "Description")

    def __init__(self, envelope, element, product: ProductSection, category: str | None) -> None:
        super().__init__(envelope, element)
        self.product = product
        self.category = category

    @property
    def user_configurable(self) -> bool:
        return _bool(self.user_configurable_text or "")

    @property
    def password(self) -> bool:
        return _bool(self.password_text or "")

    @property
    def full_key(self) -> str:
        """DSP0243 §9.5: ``class.key.instance`` with empty parts left out."""
        parts = [self.product.product_class, self.key, self.product.instance]
        return ".".join(p for p in parts if p)

    def values(self) -> list[PropertyValue]:
        """Per-profile ``Value`` children (none for most properties: checked without a scan)."""
        if "Value" not in self._kids:
            return []
        out = []
        for v in iter_children(self.element, "ovf", "Value"):
            value = v.get(f"{{{self.envelope.ovf_ns}}}value", v.get("value"))
            if value is not None:
                out.append(PropertyValue(value, v.get(f"{{{self.envelope.ovf_ns}}}configuration")))
        return out

    def value_for(self, profile: str | None) -> str | None:
        for v in self.values():
            if profile is not None and v.configuration and profile in v.configuration.split():
                return v.value
        return self.default


class ProductSection(Node):
    product_class = OvfAttr("class")
    instance = OvfAttr("instance")
    info = ChildText("ovf", "Info")
    product = ChildText("ovf", "Product")
    vendor = ChildText("ovf", "Vendor")
    version = ChildText("ovf", "Version")
    full_version = ChildText("ovf", "FullVersion")
    product_url = ChildText("ovf", "ProductUrl")
    vendor_url = ChildText("ovf", "VendorUrl")

    def properties(self) -> list[Property]:
        cached = self.__dict__.get("_properties")
        if cached is not None:
            return list(cached)
        out: list[Property] = []
        category: str | None = None
        for child in iter_children(self.element, "ovf"):
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "Category":
                category = self.envelope.resolve_msg(child)
            elif tag == "Property":
                out.append(Property(self.envelope, child, self, category))
        self.__dict__["_properties"] = out
        return list(out)


class OperatingSystem(Node):
    """``OperatingSystemSection``: CIM OS id plus the vendors' own type (``vmw:osType``, ``vbox:OSType``)."""

    id_text = OvfAttr("id")
    version = OvfAttr("version")
    description = ChildText("ovf", "Description")

    @property
    def cim_id(self) -> int | None:
        return parse_int(self.id_text)

    @property
    def ovirt_id(self) -> str | None:
        """oVirt's OS number (``ovirt:id``; the section's ``ovf:id`` is then the VM's UUID)."""
        for key, value in self.element.attrib.items():
            if key.endswith("}id") and role_of(key[1:].split("}", 1)[0]) == "ovirt":
                return value.strip()
        return None

    @property
    def vendor_type(self) -> str | None:
        for key, value in self.element.attrib.items():
            if key.endswith("}osType"):
                return value
        for child in self.element:
            if isinstance(child.tag, str) and child.tag.endswith("}OSType") and child.text:
                return child.text.strip()
        return None


class StartupItem(Node):
    id = OvfAttr("id")
    order = OvfAttr("order", parse_int)
    start_delay = OvfAttr("startDelay", parse_int)
    wait_for_guest = OvfAttr("waitingForGuest")
    start_action = OvfAttr("startAction")
    stop_delay = OvfAttr("stopDelay", parse_int)
    stop_action = OvfAttr("stopAction")


class Eula(Node):
    license = ChildText("ovf", "License")


class Annotation(Node):
    annotation = ChildText("ovf", "Annotation")
