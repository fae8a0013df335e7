"""Programmatic units (DSP0004 annex C) as used by OVF for capacities and memory.

Real descriptors write ``byte * 2^30``, ``byte*2^20``, ``MegaBytes``, ``GB``, ``byte * 1024``, ``bytes``,
``KiloBytes`` ... :func:`parse_byte_units` returns the multiplier in bytes, or None when the unit is not
a byte unit vmferry understands (the caller reports a finding).
"""

from __future__ import annotations

import re
from functools import lru_cache

_NAMED = {
    "byte": 1, "bytes": 1, "b": 1,
    "kilobyte": 1 << 10, "kilobytes": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
    "megabyte": 1 << 20, "megabytes": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
    "gigabyte": 1 << 30, "gigabytes": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
    "terabyte": 1 << 40, "terabytes": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}
_FACTOR = re.compile(r"^([0-9]{1,40})(?:\^(-?[0-9]{1,6}))?$")
MAX_MULTIPLIER = 1 << 64


@lru_cache(maxsize=256)
def parse_byte_units(text: str | None) -> int | None:
    """Multiplier in bytes for an allocation-units string; None if not understood."""
    if text is None:
        return None
    s = text.strip().lower().replace(" ", "")
    if not s:
        return None
    if s in _NAMED:
        return _NAMED[s]
    parts = s.split("*")
    if parts[0] not in ("byte", "bytes"):
        return None
    mult = 1
    for factor in parts[1:]:
        m = _FACTOR.match(factor)
        if not m:
            return None
        base, exp = int(m.group(1)), m.group(2)
        if exp is None:
            mult *= base
        else:
            e = int(exp)
            if e < 0 or (base > 1 and base.bit_length() * e > 2 * MAX_MULTIPLIER.bit_length()):
                return None
            mult *= base ** e
        if mult > MAX_MULTIPLIER:  # chained factors: bounded at every step, never a huge number
            return None
    return mult


def parse_int(text: str | None) -> int | None:
    """An integer from descriptor text, or None for empty/template/garbage values (``${size}``, ``TBD``)."""
    if text is None:
        return None
    s = text.strip()
    if not s:
        return None
    if len(s) > 40:  # past any real quantity, and past what int() accepts in 4300 digits
        return None
    try:
        return int(s)
    except ValueError:
        try:
            f = float(s)
        except ValueError:
            return None
        return int(f) if f == f and abs(f) < 1e30 and f.is_integer() else None
