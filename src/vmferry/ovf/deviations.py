"""DMTF XSD errors sorted into classes of deviation, mechanically (never by sample).

``validate --strict`` reports every XSD error as ``VMF-XSD-001`` (DMTF conformance). By default each
error is put in one class from what libxml2 says about it and what the shipped schemas declare:

* ``VMF-XSD-003`` a standard element in another place or order than the schema's sequence
* ``VMF-XSD-004`` a variant spelling of a standard name: other case (0.9/early CIM ``InstanceId``),
  misspelt or missing namespace, OVF 0.9 names (``Content``)
* ``VMF-XSD-005`` a vendor element or attribute (foreign namespace) where the schema allows none
* ``VMF-XSD-006`` an unknown section marked ``ovf:required="false"``
* ``VMF-XSD-007`` an element or attribute no schema declares (unqualified vendor data, extra CIM
  properties such as oVirt's ``rasd:num_of_sockets``)
* ``VMF-XSD-008`` a missing descriptive element (``Info``, RASD ``ElementName``/``Caption``/``Description``)
* ``VMF-XSD-009`` another missing element or attribute the schema requires
* ``VMF-XSD-010`` a value outside the schema type (the semantic rules say where a consumer refuses it)
* ``VMF-XSD-011`` any other schema deviation

These are warnings: the consumers named in :mod:`vmferry.checks.consumers` read such descriptors. An
unknown section that is required is not classed here: :func:`vmferry.checks.descriptor.descriptor_findings`
reports it as ``VMF-OVF-005``, an error, in both modes.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources

from lxml import etree

from vmferry.findings import Finding
from vmferry.ovf import names as N

DMTF_ROLES = frozenset({"ovf", "rasd", "vssd", "sasd", "epasd", "pasd", "cim", "cim-class", "xml", "xsi"})
CIM_ROLES = frozenset({"rasd", "vssd", "sasd", "epasd", "pasd"})
DESCRIPTIVE = frozenset({"info", "elementname", "caption", "description"})
OVF09_NAMES = {"content": "VirtualSystem", "section": "Section"}   # 0.9 spellings kept by oVirt/RHV
XS = "{http://www.w3.org/2001/XMLSchema}"
PATH_LOOKUPS = 2000        # per document: beyond, an ambiguous element is taken as the first on its line


class Declared:
    """Element and attribute names the shipped XSDs of one OVF version declare, by namespace role."""

    def __init__(self, folder) -> None:
        self.elements: dict[str, dict[str, str]] = {}     # role -> lower local -> local
        self.attributes: dict[str, dict[str, str]] = {}
        for xsd in sorted(folder.iterdir()):
            if not xsd.name.endswith(".xsd"):
                continue
            root = etree.parse(str(xsd), etree.XMLParser(no_network=True, resolve_entities=False)).getroot()
            role = N.role_of(root.get("targetNamespace"))
            if role is None:
                continue
            for tag, table in ((f"{XS}element", self.elements), (f"{XS}attribute", self.attributes)):
                names = table.setdefault(role, {})
                for el in root.iter(tag):
                    name = el.get("name")
                    if name:
                        names.setdefault(name.lower(), name)

    def element(self, role: str | None, local: str) -> str | None:
        return self.elements.get(role or "", {}).get(local.lower())

    def attribute(self, role: str | None, local: str) -> str | None:
        return self.attributes.get(role or "", {}).get(local.lower())


@lru_cache(maxsize=2)
def declared(version: str) -> Declared:
    from vmferry.ovf.schema import SCHEMA_FILES

    folder = resources.files("vmferry.ovf") / "schemas" / SCHEMA_FILES[version][0]
    return Declared(folder)


@lru_cache(maxsize=1)
def known_sections() -> frozenset[str]:
    """Lower-case names of every section an OVF 1.x or 2.x envelope schema declares."""
    names: set[str] = set()
    for version in ("1.x", "2.x"):
        names.update(n for n in declared(version).elements.get("ovf", {}) if n.endswith("section"))
    return frozenset(names)


def _split(clark: str) -> tuple[str | None, str]:
    if clark.startswith("{"):
        ns, _, local = clark[1:].partition("}")
        return ns, local
    return None, clark


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The text between the quote at ``start`` and the next quote, and the index after it."""
    end = text.find("'", start + 1)
    if end < 0:
        return "", len(text)
    return text[start + 1:end], end + 1


def parse_message(message: str) -> tuple[str, str, str, list[str]]:
    """``(element, attribute, text, expected)`` from a libxml2 schema message (linear, no regex)."""
    element = attribute = ""
    rest = message
    if rest.startswith("Element '"):
        element, i = _quoted(rest, len("Element "))
        rest = rest[i:]
        if rest.startswith(", attribute '"):
            attribute, i = _quoted(rest, len(", attribute "))
            rest = rest[i:]
    text = rest.lstrip(": ").strip()
    expected: list[str] = []
    marker = text.find("Expected is")
    if marker >= 0:
        inner = text[marker:]
        open_, close = inner.find("("), inner.rfind(")")
        if 0 <= open_ < close:
            expected = [e.strip() for e in inner[open_ + 1:close].split(",") if e.strip()]
    return element, attribute, text, expected


def _element_by_path(root, path: str | None, clark: str):
    """The element libxml2's error path names (``/*/*[4]/*[3]/rasd:InstanceID``), when it resolves to one
    element of the reported name; None otherwise (the line index is the fallback)."""
    if not path or not clark:
        return None
    prefixes = {k: v for k, v in (root.nsmap or {}).items() if k}
    try:
        found = root.getroottree().xpath(path, namespaces=prefixes)
    except (etree.XPathError, TypeError, ValueError):
        return None
    if isinstance(found, list) and len(found) == 1 and getattr(found[0], "tag", None) == clark:
        return found[0]
    return None


def _is_section(local: str) -> bool:
    return local == "Section" or local.endswith("Section")


def _required(el) -> bool:
    if el is None:
        return True
    for key, value in el.attrib.items():
        if key.rsplit("}", 1)[-1] == "required":
            return value.strip().lower() != "false"
    return True


def _absent_required(expected: list[str], node) -> str | None:
    """libxml2 lists the elements acceptable at this point of a sequence: the optional ones, then the
    next required one. When that last one is absent from the parent, the element reported as unexpected
    stands in its place: the required element is missing, not misplaced."""
    names = [e for e in expected if not e.startswith("##")]
    if not names or node is None or node.getparent() is None:
        return None
    if any(child.tag == names[-1] for child in node.getparent()):
        return None
    # CIM classes list their properties in alphabetical order: after a later name it is a slip of order
    previous = node.getprevious()
    while previous is not None and not isinstance(previous.tag, str):
        previous = previous.getprevious()
    if previous is not None and N.role_of(_split(node.tag)[0]) in CIM_ROLES and \
            _split(previous.tag)[1] > _split(node.tag)[1]:
        return None
    return names[-1]


def classify(version: str, element: str, attribute: str, text: str, expected: list[str],
             node) -> str | None:
    """The rule of one XSD error; None for an unknown required section (an error reported elsewhere)."""
    decl = declared(version)
    if "not expected" in text and not attribute:
        ns, local = _split(element)
        role = N.role_of(ns)
        if ns is not None and role not in DMTF_ROLES:
            return "VMF-XSD-005"
        if ns is None or not N.is_canonical(ns):
            if decl.element("ovf" if ns is None else role, local) or local.lower() in OVF09_NAMES:
                return "VMF-XSD-004"
        elif decl.element(role, local) == local:
            missing = _absent_required(expected, node)
            if missing:
                return "VMF-XSD-008" if _split(missing)[1].lower() in DESCRIPTIVE else "VMF-XSD-009"
            return "VMF-XSD-003"
        elif decl.element(role, local) or local.lower() in OVF09_NAMES:
            return "VMF-XSD-004"
        if _is_section(local):
            return "VMF-XSD-006" if not _required(node) else None
        return "VMF-XSD-007"
    if "No matching global declaration" in text:
        ns, local = _split(element)
        return "VMF-XSD-004" if N.role_of(ns) == "ovf" and local == "Envelope" else "VMF-XSD-011"
    if "Missing child element" in text:
        missing = [_split(e)[1].lower() for e in expected if not e.startswith("##")]
        return "VMF-XSD-008" if missing and all(m in DESCRIPTIVE for m in missing) else "VMF-XSD-009"
    if attribute and "is not allowed" in text:
        ns, local = _split(attribute)
        role = N.role_of(ns)
        if ns is not None and role not in DMTF_ROLES:
            return "VMF-XSD-005"
        if decl.attribute("ovf", local):
            return "VMF-XSD-004"
        return "VMF-XSD-007"
    if "is required but missing" in text:
        return "VMF-XSD-009"
    if "is not a valid value" in text or "is not accepted by the pattern" in text or \
            "is not an element of the set" in text or "facet" in text or "is not a valid" in text:
        return "VMF-XSD-010"
    return "VMF-XSD-011"


SUMMARY = {
    "VMF-XSD-003": "standard element out of the schema's order",
    "VMF-XSD-004": "variant spelling of a standard name",
    "VMF-XSD-005": "vendor extension where the schema allows none",
    "VMF-XSD-006": "unknown section marked ovf:required=\"false\"",
    "VMF-XSD-007": "element or attribute no DMTF schema declares",
    "VMF-XSD-008": "descriptive element missing",
    "VMF-XSD-009": "element or attribute the schema requires is missing",
    "VMF-XSD-010": "value outside the schema type",
    "VMF-XSD-011": "schema deviation",
}


def with_standard_namespaces(envelope) -> etree._ElementTree:
    """The document with every misspelt DMTF namespace (trailing slash, ``.xsd`` suffix, ...) spelt as the
    standard; the document itself when there is none. Line numbers are kept."""
    renames: dict[str, str] = {}
    for el in envelope.root.iter():
        if not isinstance(el.tag, str):
            continue
        for name in (el.tag, *el.attrib.keys()):
            ns, _ = _split(name)
            if ns is None or ns in renames or N.is_canonical(ns):
                continue
            role = N.role_of(ns)
            if role == "ovf":
                renames[ns] = envelope.names.ovf
            elif role in DMTF_ROLES and role in N.CANONICAL:
                renames[ns] = N.CANONICAL[role]
    if not renames:
        return envelope.tree
    tree = copy.deepcopy(envelope.tree)        # keeps source lines
    root = tree.getroot()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        ns, local = _split(el.tag)
        if ns in renames:
            el.tag = f"{{{renames[ns]}}}{local}"
        for key in [k for k in el.attrib.keys() if _split(k)[0] in renames]:
            ans, alocal = _split(key)
            value = el.attrib.pop(key)
            el.set(f"{{{renames[ans]}}}{alocal}", value)
    etree.cleanup_namespaces(root)
    return tree


def deviation_findings(version: str, root, error_log, where: str, shorten) -> list[Finding]:
    """Findings of the default mode for the XSD errors of the document ``root``."""
    from vmferry.checks.consumers import tolerated_by

    index: dict[tuple[int, str], list] = {}
    for el in root.iter():
        if isinstance(el.tag, str):
            index.setdefault((el.sourceline, el.tag), []).append(el)
    out = []
    path_budget = PATH_LOOKUPS
    for err in error_log:
        message = " ".join(err.message.split())
        element, attribute, text, expected = parse_message(message)
        candidates = index.get((err.line, element), ()) if element else ()
        node = candidates[0] if len(candidates) == 1 else None
        if node is None and len(candidates) > 1 and path_budget > 0:
            path_budget -= 1     # several on one line: libxml2's path tells which (bounded: XPath steps
            node = _element_by_path(root, err.path, element)   # by position cost O(siblings) each)
        if node is None and candidates:
            node = candidates[0]
        rule = classify(version, element, attribute, text, expected, node)
        if rule is None:
            continue
        readers = tolerated_by(rule)
        suffix = f"; read by {', '.join(readers)}" if readers else ""
        out.append(Finding(rule, "warning", f"{SUMMARY[rule]}: {shorten(message)}{suffix}",
                           f"{where} (line {err.line})", "convert --to dmtf writes a schema-valid descriptor"))
    return out
