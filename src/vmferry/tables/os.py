"""Guest OS identifiers across vendors: CIM OSType ↔ VMware guestId ↔ VirtualBox OSType ↔ libosinfo.

The rows are data (:mod:`vmferry.tables.os_data`); this module only looks them up::

    >>> from vmferry.tables import os as osids
    >>> osids.from_vmware("RHEL6_64GUEST").cim
    80
    >>> osids.to_virtualbox(osids.from_cim(94))
    'Ubuntu_64'

``from_*`` return the best :class:`OsRow` or ``None``. Where several rows share a value (CIM 80 is every
64-bit RHEL), ``version`` and ``bits`` hints pick among them, else the row marked primary for that
vendor wins. ``to_*`` accept a row, a portable :class:`~vmferry.portable.OsSpec` or ``None`` and always
return something the target accepts, falling back by family and bits.
"""

from __future__ import annotations

import re

from vmferry.portable import OsSpec
from vmferry.tables.os_data import CIM_OS_NAMES, FALLBACK, ROWS, VENDORS, OsRow

__all__ = ["OsRow", "ROWS", "from_cim", "from_vmware", "from_virtualbox", "from_libosinfo", "resolve",
           "to_cim", "to_vmware", "to_virtualbox", "to_libosinfo", "to_spec", "rows_for", "cim_name"]


def _norm(value: str | int) -> str:
    return str(value).strip().casefold()


def _build_index(vendor: str) -> dict[str, tuple[OsRow, ...]]:
    """normalised vendor value -> rows holding it (table order); read-only aliases after real values."""
    out: dict[str, list[OsRow]] = {}
    for row in ROWS:
        if row.value(vendor) is not None:
            out.setdefault(_norm(row.value(vendor)), []).append(row)
    for row in ROWS:
        for alias in row.also(vendor):
            out.setdefault(_norm(alias), []).append(row)
    return {k: tuple(v) for k, v in out.items()}


_INDEX = {vendor: _build_index(vendor) for vendor in VENDORS}      # built once at import, never changed


def cim_name(code: int | None) -> str | None:
    """The DMTF name of a CIM OSType code (``94`` → ``"Ubuntu 64-Bit"``), or None."""
    return CIM_OS_NAMES.get(code) if code is not None else None


def rows_for(vendor: str, value: str | int | None) -> tuple[OsRow, ...]:
    """Every row holding ``value`` for ``vendor`` (one of ``cim``, ``vmware``, ``virtualbox``, ``libosinfo``)."""
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}")
    if value is None or str(value).strip() == "":
        return ()
    return _INDEX[vendor].get(_norm(value), ())


def _version_matches(row: OsRow, version: str) -> bool:
    if row.version is None:
        return False
    want, have = _norm(version), _norm(row.version)
    return want == have or want.startswith(have + ".") or want.startswith(have + " ")


def _pick(vendor: str, rows: tuple[OsRow, ...], version: str | None, bits: int | None) -> OsRow | None:
    if not rows:
        return None
    pool = rows
    if bits in (32, 64):
        pool = tuple(r for r in pool if r.bits == bits) or pool
    if version:
        exact = tuple(r for r in pool if r.version is not None and _norm(r.version) == _norm(version))
        versioned = exact or tuple(r for r in pool if _version_matches(r, version))
        if versioned:
            pool = versioned
    # the row marked primary, else a version-less one, else the first; 64-bit when bits are unknown
    for test in (lambda r: vendor in r.primary, lambda r: r.version is None and r.bits == 64,
                 lambda r: r.version is None, lambda r: r.bits == 64):
        found = next((r for r in pool if test(r)), None)
        if found is not None:
            return found
    return pool[0]


def from_cim(code: int | str | None, *, version: str | None = None, bits: int | None = None) -> OsRow | None:
    """The row for a CIM OSType code (``OperatingSystemSection/@ovf:id``); ``version`` is ``@ovf:version``."""
    try:
        number = int(str(code).strip()) if code is not None else None
    except ValueError:
        return None
    return _pick("cim", rows_for("cim", number), version, bits) if number is not None else None


def from_vmware(guest_id: str | None, *, version: str | None = None, bits: int | None = None) -> OsRow | None:
    """The row for a vSphere guestId (``vmw:osType``), case-insensitive."""
    return _pick("vmware", rows_for("vmware", guest_id), version, bits)


_VBOX_SHAPE = re.compile(r"^([a-z]+?)(\d*)(_lts)?(_64|_arm64)?$")


def from_virtualbox(os_type: str | None, *, version: str | None = None,
                    bits: int | None = None) -> OsRow | None:
    """The row for a VirtualBox OS type id (``vbox:OSType``), case-insensitive.

    Versioned ids this table does not list (``Ubuntu23_64``, ``Debian13_64``) fall back to the
    version-less id of the same distribution (``Ubuntu_64``).
    """
    row = _pick("virtualbox", rows_for("virtualbox", os_type), version, bits)
    if row is not None or not os_type:
        return row
    m = _VBOX_SHAPE.match(_norm(os_type))
    if not m or not m.group(2):
        return None
    return _pick("virtualbox", rows_for("virtualbox", m.group(1) + (m.group(4) or "")), version, bits)


_OSINFO_SHAPE = re.compile(r"^(.*?)(\d+(?:\.\d+)*)?(?:sp\d+)?(-unknown)?$")


def _osinfo_stem(short_id: str) -> tuple[str, str | None]:
    m = _OSINFO_SHAPE.match(_norm(short_id))
    if not m:
        return _norm(short_id), None
    return m.group(1).rstrip("-"), m.group(2)


def from_libosinfo(short_id: str | None, *, bits: int | None = None) -> OsRow | None:
    """The row for a libosinfo short id (``rhel6.4``, ``ubuntu22.04``, ``win2k19``), case-insensitive.

    Point releases the table does not list map to their major release (``rhel6.4`` → RHEL 6), and
    unknown releases of a known distribution to its version-less row (``ubuntu25.10`` → Ubuntu).
    libosinfo ids do not say 32 or 64 bits: ``bits`` chooses, else the primary row.
    """
    exact = rows_for("libosinfo", short_id)
    if exact or not short_id:
        return _pick("libosinfo", exact, None, bits)
    stem, version = _osinfo_stem(short_id)
    family_rows = tuple(r for r in ROWS if r.libosinfo and _osinfo_stem(r.libosinfo)[0] == stem)
    if not family_rows:
        return None
    if version:
        versioned = tuple(r for r in family_rows if _version_matches(r, version))
        if versioned:
            return _pick("libosinfo", versioned, None, bits)
    distro = family_rows[0].distro
    generic = tuple(r for r in ROWS if r.distro == distro and r.version is None)
    return _pick("libosinfo", generic, None, bits) if generic else None


# How much each agreeing field counts in :func:`resolve`: a vendor's own id says more than a CIM code.
_WEIGHTS = {"vmware": 8, "virtualbox": 8, "libosinfo": 6, "cim": 4, "version": 3, "distro": 2, "bits": 1}


def resolve(spec: OsSpec | OsRow | None) -> OsRow | None:
    """The row a portable OS description stands for: the candidate agreeing with most of its fields,
    vendor ids weighing most (a ``vmw:osType`` wins over a CIM code that contradicts it)."""
    if spec is None or isinstance(spec, OsRow):
        return spec
    given = {"vmware": spec.vmware, "virtualbox": spec.virtualbox, "libosinfo": spec.libosinfo,
             "cim": spec.cim_id}
    fuzzy = {"vmware": from_vmware(spec.vmware, version=spec.version, bits=spec.bits),
             "virtualbox": from_virtualbox(spec.virtualbox, version=spec.version, bits=spec.bits),
             "libosinfo": from_libosinfo(spec.libosinfo, bits=spec.bits),
             "cim": from_cim(spec.cim_id, version=spec.version, bits=spec.bits)}
    candidates = [r for vendor, value in given.items() for r in rows_for(vendor, value)]
    candidates += [r for r in fuzzy.values() if r is not None]
    if spec.distro:
        candidates += [r for r in ROWS if r.distro == _norm(spec.distro)]
    if not candidates:
        return None

    holding = {vendor: {id(r) for r in rows_for(vendor, value)} for vendor, value in given.items()}

    def score(row: OsRow) -> tuple[int, int]:
        points = 0
        for vendor in given:
            if id(row) in holding[vendor]:
                points += _WEIGHTS[vendor]
            elif fuzzy[vendor] is row:
                points += _WEIGHTS[vendor] // 2
        if spec.version is None and row.version is None:
            points += 1
        elif spec.version is not None and row.version is not None:
            points += _WEIGHTS["version"] if _norm(spec.version) == _norm(row.version) else \
                _WEIGHTS["version"] // 2 if _version_matches(row, spec.version) else 0
        points += _WEIGHTS["distro"] if spec.distro and row.distro == _norm(spec.distro) else 0
        points += _WEIGHTS["bits"] if spec.bits == row.bits else 0
        primary = sum(1 for vendor, value in given.items() if value is not None and vendor in row.primary)
        return points, primary

    scores = {id(r): score(r) for r in candidates}
    best = max(scores.values())
    return next(r for r in ROWS if scores.get(id(r)) == best)          # ties: table order


def _family_bits(spec: OsSpec | OsRow | None) -> tuple[str, int]:
    family = (spec.family if spec is not None else None) or "other"
    if family not in ("linux", "windows", "bsd", "solaris"):
        family = "other"
    bits = spec.bits if spec is not None and spec.bits in (32, 64) else 64
    return family, bits


def _to(vendor: str, spec: OsSpec | OsRow | None) -> str | int:
    row = resolve(spec)
    if row is not None and row.value(vendor) is not None:
        return row.value(vendor)
    return FALLBACK[vendor][_family_bits(row or spec)]


def to_cim(spec: OsSpec | OsRow | None) -> int:
    """The CIM OSType code to write (fallback: 36/101 Linux, 1/102 other, ... by bits)."""
    return int(_to("cim", spec))


def to_vmware(spec: OsSpec | OsRow | None) -> str:
    """The vSphere guestId to write (fallback: other26xLinux[64]Guest, otherGuest[64], ...)."""
    return str(_to("vmware", spec))


def to_virtualbox(spec: OsSpec | OsRow | None) -> str:
    """The VirtualBox OS type id to write (fallback: Linux26[_64], Other[_64], ...)."""
    return str(_to("virtualbox", spec))


def to_libosinfo(spec: OsSpec | OsRow | None) -> str:
    """The libosinfo short id to write (fallback: linux2016/linux2020, else ``unknown``)."""
    return str(_to("libosinfo", spec))


def to_spec(row: OsRow) -> OsSpec:
    """A portable :class:`OsSpec` filled from a row."""
    return OsSpec(cim_id=row.cim, description=row.label, family=row.family, distro=row.distro,
                  version=row.version, bits=row.bits, vmware=row.vmware, virtualbox=row.virtualbox,
                  libosinfo=row.libosinfo)
