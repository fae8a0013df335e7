"""Declarative, lossless access to OVF XML (after virt-manager's ``XMLProperty``).

A :class:`Node` wraps one live lxml element. Properties are declared once on the class, e.g.
``href = OvfAttr("href")`` or ``info = ChildText("ovf", "Info")``; reading and writing go straight to
the element, so everything the code does not model (vendor elements, unknown attributes, comments)
stays in the document untouched.

Lookups tolerate real-world namespace mistakes: an ``ovf:`` attribute is found in the document's
envelope namespace, unprefixed, or under any URI whose role is ``ovf``; child elements are matched by
role (:func:`vmferry.ovf.names.role_of`) and local name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from lxml import etree

from vmferry.ovf.names import XSI, role_of

if TYPE_CHECKING:
    from vmferry.ovf.envelope import Envelope


def localname(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def namespace(el: etree._Element) -> str | None:
    tag = el.tag
    if isinstance(tag, str) and tag.startswith("{"):
        return tag[1:].split("}", 1)[0]
    return None


def is_element(el: Any) -> bool:
    return isinstance(el.tag, str)


def iter_children(el: etree._Element, role: str | None, local: str | None = None) -> Iterator[etree._Element]:
    """Child elements of ``el`` with namespace role ``role`` (None: any) and local name ``local``."""
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag[0] == "{":
            ns, _, name = tag[1:].partition("}")
        else:
            ns, name = None, tag
        if local is not None and name != local:
            continue
        if role is not None and role_of(ns) != role and not (role == "ovf" and ns is None):
            continue
        yield child


def first_child(el: etree._Element, role: str | None, local: str) -> etree._Element | None:
    return next(iter_children(el, role, local), None)


def get_ovf_attr(el: etree._Element, ovf_ns: str, local: str, alt_ns: tuple[str, ...] = ()) -> str | None:
    """Value of ``ovf:local`` on ``el``, tolerant of missing or misspelt namespaces (``alt_ns``: other
    URIs the document uses for the envelope namespace)."""
    attrib = el.attrib
    value = attrib.get(f"{{{ovf_ns}}}{local}")
    if value is not None:
        return value
    value = attrib.get(local)
    if value is not None:
        return value
    for ns in alt_ns:
        value = attrib.get(f"{{{ns}}}{local}")
        if value is not None:
            return value
    return None


def xsi_type(el: etree._Element) -> str | None:
    """Local part of ``xsi:type`` (``ovf:DiskSection_Type`` → ``DiskSection_Type``)."""
    value = el.get(f"{{{XSI}}}type")
    return value.rsplit(":", 1)[-1] if value else None


def location(el: etree._Element) -> str:
    """A readable path to ``el`` (``/Envelope/VirtualSystem/VirtualHardwareSection/Item[3]``) and its line."""
    parts = []
    node = el
    while node is not None:
        parent = node.getparent()
        name = localname(node)
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    path = "/" + "/".join(reversed(parts))
    line = el.sourceline
    return f"{path} (line {line})" if line else path


class cached:
    """A lock-free cached property (functools.cached_property takes a lock on every read in 3.11)."""

    def __init__(self, func) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = self.func(obj)
        obj.__dict__[self.name] = value
        return value


class Node:
    """A live view on one element of an :class:`Envelope`."""

    def __init__(self, envelope: Envelope, element: etree._Element) -> None:
        self.envelope = envelope
        self.element = element

    @property
    def location(self) -> str:
        return location(self.element)

    @cached
    def _attrs(self) -> dict[str, str]:
        """The element's ``ovf:`` attributes by local name, read once (unprefixed ones as fallback)."""
        env = self.envelope
        out: dict[str, str] = {}
        plain: dict[str, str] = {}
        for key, value in self.element.attrib.items():
            if key[0] != "{":
                plain[key] = value
                continue
            ns, _, local = key[1:].partition("}")
            if ns == env.ovf_ns or ns in env.ovf_alt_ns:
                out[local] = value
        for key, value in plain.items():
            out.setdefault(key, value)
        return out

    def ovf_attr(self, local: str) -> str | None:
        return self._attrs.get(local)

    def set_ovf_attr(self, local: str, value: object | None) -> None:
        key = f"{{{self.envelope.ovf_ns}}}{local}"
        if local in self.element.attrib and key not in self.element.attrib:
            key = local  # keep the document's own (unprefixed) spelling
        if value is None:
            self.element.attrib.pop(key, None)
        else:
            self.element.set(key, str(value))
        self.__dict__.pop("_attrs", None)

    @cached
    def _kids(self) -> dict[str, etree._Element]:
        """First child element of each local name in the envelope namespace (or none), read once."""
        env = self.envelope
        out: dict[str, etree._Element] = {}
        for child in self.element:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            if tag[0] == "{":
                ns, _, local = tag[1:].partition("}")
                if ns != env.ovf_ns and ns not in env.ovf_alt_ns:
                    continue
            else:
                local = tag
            out.setdefault(local, child)
        return out

    def child_text(self, role: str, local: str) -> str | None:
        if role == "ovf":
            child = self._kids.get(local)
        else:
            child = first_child(self.element, role, local)
        if child is None:
            return None
        return self.envelope.resolve_msg(child)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location}>"


class OvfAttr:
    """An ``ovf:`` attribute of the node's element, read and written in place."""

    def __init__(self, local: str, convert: Callable[[str], Any] | None = None) -> None:
        self.local = local
        self.convert = convert

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, node: Node | None, owner=None):
        if node is None:
            return self
        attrs = node.__dict__.get("_attrs")
        if attrs is None:
            attrs = node._attrs
        value = attrs.get(self.local)
        if value is None or self.convert is None:
            return value
        return self.convert(value)

    def __set__(self, node: Node, value) -> None:
        node.set_ovf_attr(self.local, value)


class ChildText:
    """The text of the first child element ``role:local`` (message bundles resolved)."""

    def __init__(self, role: str, local: str) -> None:
        self.role = role
        self.local = local

    def __get__(self, node: Node | None, owner=None):
        if node is None:
            return self
        return node.child_text(self.role, self.local)

    def __set__(self, node: Node, value: str | None) -> None:
        child = first_child(node.element, self.role, self.local)
        if child is None:
            if value is None:
                return
            ns = node.envelope.ovf_ns if self.role == "ovf" else node.envelope.ns_for_role(self.role)
            child = etree.SubElement(node.element, f"{{{ns}}}{self.local}")
            node.__dict__.pop("_kids", None)
        child.text = value
