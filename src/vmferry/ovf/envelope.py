"""The OVF ``Envelope``: a lossless view on one descriptor.

``Envelope.from_bytes(data)`` parses safely (:mod:`vmferry.ovf.xmlsafe`) and keeps the live lxml tree;
``to_bytes()`` writes it back. Nothing is re-built from a model, so what vmferry does not understand
survives a round trip (C14N-equal to the input when unchanged).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from lxml import etree

from vmferry.errors import UnsupportedVersion
from vmferry.findings import Finding
from vmferry.ovf import names as N
from vmferry.ovf.hardware import HardwareSection
from vmferry.ovf.sections import (
    Annotation,
    DeploymentOption,
    DiskDef,
    Eula,
    FileRef,
    NetworkDef,
    OperatingSystem,
    ProductSection,
    StartupItem,
    find_sections,
)
from vmferry.ovf.xmlmodel import (
    ChildText,
    Node,
    OvfAttr,
    cached,
    first_child,
    iter_children,
    localname,
    namespace,
)
from vmferry.ovf.xmlsafe import parse_bytes, to_c14n


class VirtualSystem(Node):
    """A ``VirtualSystem`` (0.9: ``Content xsi:type="ovf:VirtualSystem_Type"``)."""

    id = OvfAttr("id")
    info = ChildText("ovf", "Info")
    name_text = ChildText("ovf", "Name")

    def __init__(self, envelope, element, path: tuple[str, ...] = ()) -> None:
        super().__init__(envelope, element)
        self.path = path  # ids of enclosing collections

    @property
    def name(self) -> str | None:
        return self.name_text or self.id

    def sections(self, name: str) -> Iterator[etree._Element]:
        return find_sections(self.element, name)

    @cached
    def hardware_sections(self) -> list[HardwareSection]:
        return [HardwareSection(self.envelope, el) for el in self.sections("VirtualHardwareSection")]

    @property
    def hardware(self) -> HardwareSection | None:
        """The first VirtualHardwareSection (the one most consumers read)."""
        return self.hardware_sections[0] if self.hardware_sections else None

    @property
    def operating_system(self) -> OperatingSystem | None:
        el = next(self.sections("OperatingSystemSection"), None)
        return OperatingSystem(self.envelope, el) if el is not None else None

    @cached
    def product_sections(self) -> list[ProductSection]:
        return [ProductSection(self.envelope, el) for el in self.sections("ProductSection")]

    @property
    def eulas(self) -> list[Eula]:
        return [Eula(self.envelope, el) for el in self.sections("EulaSection")]

    @property
    def annotation(self) -> Annotation | None:
        el = next(self.sections("AnnotationSection"), None)
        return Annotation(self.envelope, el) if el is not None else None

    @property
    def is_collection(self) -> bool:
        return False


class VirtualSystemCollection(VirtualSystem):
    """A ``VirtualSystemCollection``: nested systems, a StartupSection, shared ProductSections."""

    @property
    def is_collection(self) -> bool:
        return True

    def children(self) -> list[VirtualSystem]:
        return [self.envelope._wrap_entity(el, (*self.path, self.id or "")) for el in
                _entity_elements(self.element)]

    @property
    def startup(self) -> list[StartupItem]:
        out = []
        for sec in self.sections("StartupSection"):
            out.extend(StartupItem(self.envelope, el) for el in iter_children(sec, "ovf", "Item"))
        return out


def _entity_kind(el: etree._Element) -> str | None:
    name = localname(el)
    if name in ("VirtualSystem", "VirtualSystemCollection"):
        return name
    if name == "Content":
        from vmferry.ovf.xmlmodel import xsi_type

        t = xsi_type(el) or ""
        return t[:-5] if t.endswith("_Type") else "VirtualSystem"
    return None


def _entity_elements(parent: etree._Element) -> Iterator[etree._Element]:
    for child in iter_children(parent, "ovf"):
        if _entity_kind(child):
            yield child


class Envelope:
    """One OVF descriptor, parsed safely and kept losslessly."""

    def __init__(self, tree: etree._ElementTree, *, path: str | os.PathLike | None = None) -> None:
        self.tree = tree
        self.root = tree.getroot()
        self.path = os.fspath(path) if path is not None else None
        self.ovf_ns = namespace(self.root) or ""
        self.findings: list[Finding] = []
        # other spellings of the envelope namespace used in this document (attributes may use them)
        self.ovf_alt_ns: tuple[str, ...] = tuple(sorted({
            uri for el in (self.root, *self.root[:8]) if isinstance(el.tag, str)
            for uri in (el.nsmap or {}).values() if uri and uri != self.ovf_ns and N.role_of(uri) == "ovf"}))
        self._qnames: dict[str, str] = {}
        self._lower_names: dict[str, str] = {}
        self._tags: dict[str, tuple[str, ...]] = {}
        version = N.envelope_version(self.ovf_ns)
        if localname(self.root) != "Envelope" or version is None:
            raise UnsupportedVersion(
                f"not an OVF descriptor: root element is {{{self.ovf_ns}}}{localname(self.root)}; "
                "vmferry reads OVF 0.9, 1.x and 2.x envelopes", path=self.path)
        self.version = version
        self.names = N.names_for(version)
        if self.ovf_ns not in N.ENVELOPE_VERSIONS:
            self.findings.append(Finding(
                "VMF-OVF-002", "warning", f"envelope namespace '{self.ovf_ns}' is misspelt; read as OVF "
                f"{version} ({self.names.ovf})", self.location(self.root)))
        declared = self.root.get(f"{{{self.ovf_ns}}}version") or self.root.get("version")
        self.declared_version = declared

    # -- construction / serialisation ------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, *, path: str | os.PathLike | None = None) -> Envelope:
        from vmferry.ovf.limits import check_descriptor

        tree = parse_bytes(data, path=path)
        check_descriptor(tree.getroot(), os.fspath(path) if path is not None else None)
        return cls(tree, path=path)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Envelope:
        from vmferry.errors import MissingFile

        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError as exc:
            raise MissingFile("no such file", path=path) from exc
        except OSError as exc:
            raise MissingFile(f"cannot read: {exc.strerror}", path=path) from exc
        return cls.from_bytes(data, path=path)

    def to_bytes(self) -> bytes:
        """The document as bytes (UTF-8, with an XML declaration)."""
        return etree.tostring(self.tree, xml_declaration=True, encoding="UTF-8")

    def c14n(self) -> bytes:
        return to_c14n(self.tree)

    # -- helpers ----------------------------------------------------------------------------
    def ovf_qname(self, local: str) -> str:
        """``{envelope-ns}local``, memoised (hot path of every attribute read)."""
        q = self._qnames.get(local)
        if q is None:
            q = self._qnames[local] = f"{{{self.ovf_ns}}}{local}"
        return q

    def ovf_tags(self, local: str) -> tuple[str, ...]:
        """Every spelling of the element ``ovf:local`` in this document (for lxml's fast tag filter)."""
        tags = self._tags.get(local)
        if tags is None:
            tags = self._tags[local] = (f"{{{self.ovf_ns}}}{local}",
                                        *(f"{{{ns}}}{local}" for ns in self.ovf_alt_ns), local)
        return tags

    def location(self, el: etree._Element) -> str:
        from vmferry.ovf.xmlmodel import location

        return location(el)

    def ns_for_role(self, role: str) -> str:
        """The URI this document uses for ``role`` (its own spelling if declared), else the canonical."""
        for uri in self.root.nsmap.values():
            if uri and N.role_of(uri) == role:
                return uri
        return N.CANONICAL.get(role, self.ovf_ns)

    @cached
    def _strings(self) -> dict[str, str]:
        """Message bundle of the envelope's default language (``Strings`` sections)."""
        lang_attr = f"{{{N.XML}}}lang"
        default_lang = self.root.get(lang_attr)
        bundles = list(iter_children(self.root, "ovf", "Strings"))
        bundles.sort(key=lambda b: 0 if b.get(lang_attr) == default_lang else 1)
        out: dict[str, str] = {}
        for bundle in bundles:
            for msg in iter_children(bundle, "ovf", "Msg"):
                mid = msg.get(f"{{{self.ovf_ns}}}msgid") or msg.get("msgid")
                if mid and mid not in out:
                    out[mid] = (msg.text or "").strip()
        return out

    def resolve_msg(self, el: etree._Element) -> str | None:
        text = (el.text or "").strip()
        if text:
            return text
        from vmferry.ovf.xmlmodel import get_ovf_attr

        mid = get_ovf_attr(el, self.ovf_ns, "msgid", self.ovf_alt_ns)
        if mid:
            return self._strings.get(mid) or None
        return text if el.text is not None else None

    # -- envelope-level sections ------------------------------------------------------------
    @cached
    def references(self) -> list[FileRef]:
        refs = first_child(self.root, "ovf", "References")
        if refs is None:
            return []
        return [FileRef(self, el) for el in iter_children(refs, "ovf", "File")]

    def file_by_id(self, file_id: str) -> FileRef | None:
        return next((f for f in self.references if f.id == file_id), None)

    def file_for_ref(self, ref: str | None) -> FileRef | None:
        """The File a Disk's ``ovf:fileRef`` names: by ``ovf:id`` (DMTF), else by ``ovf:href`` (oVirt/RHV
        export domains write the image path ``IMAGEGROUP/IMAGE`` as fileRef while the File's id is the
        volume)."""
        if not ref:
            return None
        return self.file_by_id(ref) or next((f for f in self.references if f.href == ref), None)

    def disk_for_host_resource(self, text: str | None) -> DiskDef | None:
        """The Disk a disk Item's HostResource names: ``ovf:/disk/ID`` (0.9: ``/disk/ID``), or, as oVirt
        and RHV write it, the image path ``IMAGEGROUP/IMAGE`` or the bare volume id: the Disk whose
        ``ovf:fileRef`` is that text, or whose ``ovf:diskId`` is its last component."""
        if not text:
            return None
        t = text.strip()
        for prefix in ("ovf:/disk/", "ovf://disk/", "/disk/"):
            if t.startswith(prefix):
                return self.disk_by_id(t[len(prefix):])
        if t.startswith(("ovf:", "/")) or "://" in t:
            return None
        return next((d for d in self.disks if d.file_ref == t), None) or \
            self.disk_by_id(t.rsplit("/", 1)[-1])

    @cached
    def disks(self) -> list[DiskDef]:
        out = []
        for sec in find_sections(self.root, "DiskSection"):
            out.extend(DiskDef(self, el) for el in iter_children(sec, "ovf", "Disk"))
        return out

    def disk_by_id(self, disk_id: str) -> DiskDef | None:
        return next((d for d in self.disks if d.disk_id == disk_id), None)

    @cached
    def networks(self) -> list[NetworkDef]:
        out = []
        for sec in find_sections(self.root, "NetworkSection"):
            out.extend(NetworkDef(self, el) for el in iter_children(sec, "ovf", "Network"))
        return out

    @cached
    def deployment_options(self) -> list[DeploymentOption]:
        out = []
        for sec in find_sections(self.root, "DeploymentOptionSection"):
            out.extend(DeploymentOption(self, el) for el in iter_children(sec, "ovf", "Configuration"))
        return out

    @property
    def default_profile(self) -> str | None:
        """The default deployment profile's id (``ovf:default="true"``, else the first), or None."""
        options = self.deployment_options
        if not options:
            return None
        return next((o.id for o in options if o.is_default), options[0].id)

    # -- virtual systems --------------------------------------------------------------------
    def _wrap_entity(self, el: etree._Element, path: tuple[str, ...]) -> VirtualSystem:
        cls = VirtualSystemCollection if _entity_kind(el) == "VirtualSystemCollection" else VirtualSystem
        return cls(self, el, path)

    @cached
    def entity(self) -> VirtualSystem | None:
        """The top-level VirtualSystem or VirtualSystemCollection."""
        el = next(_entity_elements(self.root), None)
        return self._wrap_entity(el, ()) if el is not None else None

    @cached
    def systems(self) -> list[VirtualSystem]:
        """Every VirtualSystem, collections flattened depth-first (collections themselves excluded)."""
        out: list[VirtualSystem] = []

        def walk(entity: VirtualSystem) -> None:
            if isinstance(entity, VirtualSystemCollection):
                for child in entity.children():
                    walk(child)
            else:
                out.append(entity)

        for el in _entity_elements(self.root):
            walk(self._wrap_entity(el, ()))
        return out

    @cached
    def all_product_sections(self) -> list[ProductSection]:
        out: list[ProductSection] = []
        for el in self.root.iter():
            if isinstance(el.tag, str) and localname(el) in ("ProductSection", "Section"):
                if localname(el) == "ProductSection" or (el.get(f"{{{N.XSI}}}type") or "").endswith(
                        "ProductSection_Type"):
                    out.append(ProductSection(self, el))
        return out

    def property_default(self, key: str) -> str | None:
        """Default value of a ProductSection property by key (``${key}`` references)."""
        for product in self.all_product_sections:
            for prop in product.properties():
                if prop.key == key:
                    return prop.default
        return None
