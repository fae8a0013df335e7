"""Explicit limits on what a descriptor may hold (documented in docs/limits.md).

:func:`check_descriptor` walks a parsed descriptor once (linear in its size) and raises
:class:`~vmferry.errors.LimitExceeded`, naming the file, when it passes a limit: element count, nesting,
attributes and namespace declarations per element, counts of Files, Disks, systems, hardware Items,
properties, profiles and networks; numbers (digit runs, sizes, capacities and their units, memory,
CPUs); ids and names (length, control and invisible characters, path separators). Template values
(``${key}``) and words where a number belongs are left to the findings of the checks, as before.
"""

from __future__ import annotations

import math
import re
import unicodedata

from lxml import etree

from vmferry.errors import LimitExceeded

MAX_DESCRIPTOR_BYTES = 16 << 20
MAX_ELEMENTS = 100_000
MAX_DEPTH = 64
MAX_ATTRIBUTES = 256           # per element, namespace declarations counted apart with the same limit
MAX_DIGITS = 40                # the longest run of decimal digits anywhere (2^128 has 39)
MAX_ID_BYTES = 255             # ids, keys and names: they may become file names (UTF-8 bytes)
MAX_LABEL_CHARS = 1024         # element names (rasd:ElementName...) and sub-type lists
MAX_BYTES = 64 << 40           # a disk's capacity, a VM's memory: 64 TiB, as disks/convert.py MAX_VIRTUAL_SIZE
MAX_CPUS = 65_536
MAX_INTEGER = (1 << 63) - 1    # any other count or size
# element (local name) -> how many a descriptor may hold
MAX_COUNT = {"File": 10_000, "Disk": 10_000, "VirtualSystem": 1_000, "VirtualSystemCollection": 1_000,
             "Item": 20_000, "StorageItem": 20_000, "EthernetPortItem": 20_000, "Property": 10_000,
             "Configuration": 1_000, "Network": 10_000}

_DIGIT_RUN = re.compile(rf"\d{{{MAX_DIGITS + 1}}}")
_NUMERIC = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)", re.I | re.A)
_DECIMAL = re.compile(r"[0-9]+")
# attributes (local names) that are ids or keys: no path separators either
_ID_ATTRS = frozenset({"id", "diskId", "fileRef", "key", "parentRef", "instance", "class"})
_NAME_ELEMENTS = frozenset({"Name", "VirtualSystemIdentifier", "Connection", "InstanceID", "Parent"})
_LABEL_ELEMENTS = frozenset({"ElementName", "Caption", "ResourceSubType"})
_SIZE_ATTRS = frozenset({"size", "populatedSize"})
_COUNT_ELEMENTS = frozenset({"Reservation", "Limit", "Weight", "AddressOnParent", "CoresPerSocket",
                             "ResourceType"})
_SYSTEMS = frozenset({"VirtualSystem", "VirtualSystemCollection", "Content"})
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _fail(path: str | None, message: str):
    raise LimitExceeded(f"{message} (see docs/limits.md)", path=path)


def _show(text: str, limit: int = 40) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return text + ("..." if len(text) >= limit else "")


def _bad_char(text: str) -> str | None:
    for c in text:
        if (c < " " or "\x7f" <= c <= "\x9f" or (c > "\x7f" and unicodedata.category(c) in _BAD_CATEGORIES)):
            return f"U+{ord(c):04X}"
    return None


def _check_name(value: str, what: str, path: str | None, *, is_id: bool) -> None:
    limit = MAX_ID_BYTES
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > limit:
        _fail(path, f"{what} is {size} bytes long, more than the {limit} allowed")
    bad = _bad_char(value)
    if bad:
        _fail(path, f"{what} '{_show(value)}' holds the control or invisible character {bad}")
    if is_id:
        if "/" in value or "\\" in value or value in (".", ".."):
            _fail(path, f"{what} '{_show(value)}' holds a path separator or is '.'/'..'")


def _check_label(value: str, what: str, path: str | None) -> None:
    if len(value) > MAX_LABEL_CHARS:
        _fail(path, f"{what} is {len(value)} characters long, more than the {MAX_LABEL_CHARS} allowed")
    bad = _bad_char(value)
    if bad:
        _fail(path, f"{what} '{_show(value)}' holds the control or invisible character {bad}")


def number(text: str | None, what: str, path: str | None, *, maximum: int = MAX_INTEGER,
           minimum: int = 0) -> int | None:
    """The integer in ``text``; None for absent, template (``${x}``) or non-numeric text (the checks
    report those); :class:`LimitExceeded` for a number that is negative, not finite, not whole or out of
    range."""
    if text is None:
        return None
    s = text.strip()
    if len(s) > MAX_DIGITS + 8 and _DIGIT_RUN.search(s):
        _fail(path, f"{what} has more than {MAX_DIGITS} digits")
    if not s or not _NUMERIC.fullmatch(s):
        return None
    if _DECIMAL.fullmatch(s.lstrip("+-")):
        value = int(s)  # at most MAX_DIGITS digits here: the digit-run limit was checked first
    else:
        f = float(s)
        if not math.isfinite(f) or not f.is_integer():
            _fail(path, f"{what} '{_show(s)}' is not a whole finite number")
        if abs(f) > 2.0 ** 64:
            _fail(path, f"{what} '{_show(s)}' is out of range")
        value = int(f)
    if value < minimum or value > maximum:
        _fail(path, f"{what} {_show(s)} is out of range ({minimum} to {maximum})")
    return value


def byte_units(text: str | None, what: str, path: str | None) -> int | None:
    """The multiplier of a ``byte * B^E * ...`` units string, bounded by 2^64; None when the string is
    not such a product (the checks report units they do not understand)."""
    if not text:
        return None
    s = text.strip().lower().replace(" ", "")
    if not s.startswith("byte"):
        return None
    factors = s.split("*")
    if len(factors) > 16:
        _fail(path, f"{what} '{_show(text)}' has {len(factors) - 1} factors, more than 15")
    bits = 0.0
    for factor in factors[1:]:
        base, _, exp = factor.partition("^")
        if not _DECIMAL.fullmatch(base) or (exp and not _DECIMAL.fullmatch(exp.lstrip("-"))):
            return None
        if len(base) > MAX_DIGITS or len(exp) > 6:
            _fail(path, f"{what} '{_show(text)}' has a factor of more than {MAX_DIGITS} digits or an exponent "
                        "of more than 6")
        b = int(base)
        e = int(exp) if exp else 1
        if b == 0 or e < 0:
            _fail(path, f"{what} '{_show(text)}' is not a positive whole multiplier")
        if b > 1:
            bits += math.log2(b) * e
            if bits > 64:
                _fail(path, f"{what} '{_show(text)}' is more than 2^64 bytes")
    mult = 1
    for factor in factors[1:]:
        base, _, exp = factor.partition("^")
        mult *= int(base) ** (int(exp) if exp else 1)
    return mult


def _item_values(item) -> dict[str, str]:
    return {_local(c.tag): (c.text or "") for c in item if isinstance(c.tag, str)}


def _check_item(item, path: str | None) -> None:
    values = _item_values(item)
    rtype = number(values.get("ResourceType"), "rasd:ResourceType", path, maximum=65_535)
    qty = values.get("VirtualQuantity")
    if rtype == 3:
        number(qty, "the number of CPUs", path, maximum=MAX_CPUS)
    elif rtype == 4:
        amount = number(qty, "the memory quantity", path)
        units = values.get("AllocationUnits") or values.get("VirtualQuantityUnits")
        mult = byte_units(units, "the memory units", path)
        if amount is not None and mult is not None and amount * mult > MAX_BYTES:
            _fail(path, f"memory of {amount} x {mult} bytes is more than the {MAX_BYTES} allowed")
    else:
        number(qty, "rasd:VirtualQuantity", path)


def _check_capacity(text: str | None, units: str | None, path: str | None, what: str = "the disk capacity") -> None:
    cap = number(text, what, path)
    mult = byte_units(units, "the capacity units", path)
    if cap is not None and cap * (mult or 1) > MAX_BYTES:
        _fail(path, f"{what} of {cap} x {mult or 1} bytes is more than the {MAX_BYTES} allowed")


def _check_disk(el, path: str | None, templated: list[tuple[str, str | None]]) -> None:
    attrs = {_local(k): v for k, v in el.attrib.items()}
    text = (attrs.get("capacity") or "").strip()
    if text.startswith("${") and text.endswith("}"):
        templated.append((text[2:-1], attrs.get("capacityAllocationUnits")))
        return
    _check_capacity(text, attrs.get("capacityAllocationUnits"), path)


def _check_templated(templated: list[tuple[str, str | None]], values: dict[str, str], path: str | None) -> None:
    """Capacities given as ``${key}``: the property's value is a number in range, never another reference
    (references do not chain, so they cannot loop)."""
    for key, units in templated:
        value = values.get(key)
        if value is None:
            continue  # an unresolved placeholder: the checks report it
        if "${" in value:
            _fail(path, f"the disk capacity refers to property '{_show(key)}', whose value '{_show(value)}' is "
                        "another reference; references do not chain")
        _check_capacity(value, units, path, f"the disk capacity from property '{_show(key)}'")


def check_descriptor(root, path: str | None) -> None:
    """Raise :class:`LimitExceeded` when the descriptor passes one of this module's limits."""
    count = 0
    depth = 0
    counts: dict[str, int] = {}
    templated: list[tuple[str, str | None]] = []
    values: dict[str, str] = {}
    for event, el in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        count += 1
        if count > MAX_ELEMENTS:
            _fail(path, f"the descriptor has more than {MAX_ELEMENTS} elements")
        if depth > MAX_DEPTH:
            _fail(path, f"elements are nested more than {MAX_DEPTH} deep")
        if not isinstance(el.tag, str):
            continue
        local = _local(el.tag)
        if local in MAX_COUNT:
            n = counts[local] = counts.get(local, 0) + 1
            if n > MAX_COUNT[local]:
                _fail(path, f"the descriptor has more than {MAX_COUNT[local]} {local} elements")
        attrib = el.attrib
        if len(attrib) > MAX_ATTRIBUTES:
            _fail(path, f"element {local} has {len(attrib)} attributes, more than the {MAX_ATTRIBUTES} allowed")
        parent = el.getparent()
        if len(el.nsmap) - (len(parent.nsmap) if parent is not None else 0) > MAX_ATTRIBUTES:
            _fail(path, f"element {local} declares more than {MAX_ATTRIBUTES} namespaces")
        for key, value in attrib.items():
            if _DIGIT_RUN.search(value):
                _fail(path, f"attribute {_local(key)} of {local} holds a number of more than {MAX_DIGITS} digits")
            name = _local(key)
            if name in _ID_ATTRS:
                # a system's id names files and libvirt domains; others may hold '/' (oVirt image/volume)
                _check_name(value, f"{local} {name}", path, is_id=name == "id" and local in _SYSTEMS)
            elif name == "name":
                _check_name(value, f"{local} {name}", path, is_id=False)
            elif name == "href":
                _check_label(value, f"{local} {name}", path)
            elif name in _SIZE_ATTRS:
                number(value, f"{local} {name}", path)
            elif name == "chunkSize":
                number(value, "ovf:chunkSize", path, minimum=1)
        text = el.text
        if text:
            if _DIGIT_RUN.search(text):
                _fail(path, f"element {local} holds a number of more than {MAX_DIGITS} digits")
            if local in _NAME_ELEMENTS:
                _check_name(text.strip(), local, path, is_id=False)
            elif local in _LABEL_ELEMENTS:
                _check_label(text.strip(), local, path)
            elif local in _COUNT_ELEMENTS:
                number(text, local, path)
        if local == "Disk":
            _check_disk(el, path, templated)
        elif local == "Property":
            key = next((v for k, v in attrib.items() if _local(k) == "key"), None)
            value = next((v for k, v in attrib.items() if _local(k) == "value"), None)
            if key is not None and value is not None:
                values[key] = value
        elif local in ("Item", "StorageItem", "EthernetPortItem"):
            _check_item(el, path)
    if templated:
        _check_templated(templated, values, path)
