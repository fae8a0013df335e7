"""Safe XML parsing: no DTDs, no entities, no network, bounded size.

OVF descriptors come from anywhere. External entities (XXE), entity expansion ("billion laughs") and
DTD loading are refused outright: a descriptor has no business declaring a DOCTYPE.
"""

from __future__ import annotations

import os

from lxml import etree

from vmferry.errors import XmlError
from vmferry.ovf.limits import MAX_DESCRIPTOR_BYTES  # noqa: E402 - one table of limits


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_blank_text=False, remove_comments=False,
                           remove_pis=False, collect_ids=False)


def parse_bytes(data: bytes, *, path: str | os.PathLike | None = None) -> etree._ElementTree:
    """Parse a descriptor; raise :class:`XmlError` naming ``path`` for anything unsafe or malformed."""
    name = os.fspath(path) if path is not None else "<descriptor>"
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise XmlError(f"descriptor is {len(data)} bytes, more than the {MAX_DESCRIPTOR_BYTES} allowed",
                       path=name)
    head = data[:4096].lstrip()
    if b"<!DOCTYPE" in data[:65536] or b"<!ENTITY" in data[:65536] or b"<!doctype" in head:
        raise XmlError("descriptor declares a DTD or entities, which OVF does not allow (refused: XXE/entity "
                       "expansion)", path=name)
    try:
        tree = etree.ElementTree(etree.fromstring(data, _parser()))
    except etree.XMLSyntaxError as exc:
        line = f" at line {exc.lineno}" if getattr(exc, "lineno", None) else ""
        msg = str(exc.msg if hasattr(exc, "msg") else exc).split(", line ")[0]
        raise XmlError(f"not well-formed XML{line}: {msg}", path=name) from exc
    except ValueError as exc:  # e.g. unicode strings with encoding declaration
        raise XmlError(f"cannot parse XML: {exc}", path=name) from exc
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        raise XmlError("descriptor declares a DTD, which OVF does not allow", path=name)
    return tree


def to_c14n(tree_or_element) -> bytes:
    """Canonical XML (C14N 1.0, comments kept) of a tree, for lossless round-trip comparisons."""
    return etree.tostring(tree_or_element, method="c14n", with_comments=True)
