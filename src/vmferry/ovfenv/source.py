"""Where the environment's properties come from: a package's ProductSections, and the user's ``--set``.

:func:`package_properties` is the one place that reads the package; it goes through
:func:`vmferry.dialects.read_package` (the portable profile, per-profile ``ovf:Value`` included),
so nothing else depends on how a package is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from vmferry.errors import UsageError
from vmferry.ovfenv.build import EnvProperty, NicInfo

_BOOL = {"true", "false"}


@dataclass
class SystemProperties:
    """The properties and NICs of one virtual system, for one deployment profile."""

    path: str
    system_id: str
    profile: str | None
    profiles: list[str]
    properties: list[EnvProperty] = field(default_factory=list)
    nics: list[NicInfo] = field(default_factory=list)
    transports: list[str] = field(default_factory=list)     # ovf:transport of the hardware section
    siblings: dict[str, list[EnvProperty]] = field(default_factory=dict)   # other systems of the collection


def package_properties(path: str | os.PathLike, *, profile: str | None = None,
                       system: str | None = None, envelope=None) -> SystemProperties:
    """Properties (values for ``profile``, default: the package's default profile) and NICs.
    ``envelope``: the package's descriptor already read (it is then not opened again)."""
    from vmferry.dialects import read_package
    from vmferry.package import open_package

    path = os.fspath(path)
    pkg = read_package(envelope if envelope is not None else open_package(path).envelope)
    profiles = [p.id for p in pkg.profiles if p.id]
    if profile is not None and profile not in profiles:
        known = ", ".join(profiles) or "none"
        raise UsageError(f"no deployment profile {profile!r} (profiles: {known})", path=path)
    chosen = profile if profile is not None else pkg.default_profile
    systems = pkg.systems
    if not systems:
        raise UsageError("the package has no virtual system", path=path)
    if system is not None:
        match = [s for s in systems if s.id == system]
        if not match:
            raise UsageError(f"no virtual system {system!r} (systems: {', '.join(s.id for s in systems)})",
                             path=path)
        vm = match[0]
    elif len(systems) > 1:
        raise UsageError(f"the package has {len(systems)} virtual systems; choose one with --system "
                         f"({', '.join(s.id for s in systems)})", path=path)
    else:
        vm = systems[0]
    out = SystemProperties(path, vm.id or "vm", chosen, profiles, transports=list(vm.transports))
    out.properties = _properties(pkg.collection_products, chosen) + _properties(vm.products, chosen)
    out.siblings = {s.id: _properties(s.products, chosen) for s in systems if s is not vm}
    # NIC n is the n-th NIC of the deployed profile: what the guest sees as its n-th interface
    for index, nic in enumerate(vm.nics_for(chosen)):
        out.nics.append(NicInfo(index, nic.mac, nic.network))
    return out


def _properties(products, profile: str | None) -> list[EnvProperty]:
    out = []
    for product in products:
        for p in product.properties:
            # DSP0243 §9.5: the environment names a property class.key.instance (absent parts left out)
            full_key = ".".join(x for x in (product.product_class, p.key, product.instance) if x)
            value = next((v.value for v in p.values if v.profiles and profile in v.profiles), p.value)
            out.append(EnvProperty(p.key, full_key, value or "", p.type or "string", p.password,
                                   p.user_configurable))
    return out


def parse_sets(assignments: list[str]) -> list[tuple[str, str]]:
    """``KEY=VALUE`` strings → pairs (the value may be empty or contain ``=``)."""
    out = []
    for a in assignments:
        key, sep, value = a.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {a!r}: expected KEY=VALUE")
        out.append((key.strip(), value))
    return out


def apply_sets(sp: SystemProperties, sets: list[tuple[str, str]], *, allow_new: bool = False) -> list[str]:
    """Apply user values by full key or (unambiguous) plain key; returns the full keys changed.

    An unknown key is an error unless ``allow_new``: then it is added as a new property.
    """
    changed = []
    for key, value in sets:
        hits = [p for p in sp.properties if p.full_key == key] or [p for p in sp.properties if p.key == key]
        if len(hits) > 1:
            raise UsageError(f"--set {key}: the key is ambiguous, use one of "
                             f"{', '.join(p.full_key for p in hits)}", path=sp.path)
        if not hits:
            if not allow_new:
                raise UsageError(f"--set {key}: the package declares no such property "
                                 f"(use --allow-new to add it)", path=sp.path)
            sp.properties.append(EnvProperty(key, key, value, user_configurable=True))
            changed.append(key)
            continue
        prop = hits[0]
        if prop.type == "boolean" and value.lower() not in _BOOL:
            raise UsageError(f"--set {key}: {value!r} is not a boolean (true or false)", path=sp.path)
        if prop.type.startswith(("uint", "sint", "int")) and value and not value.lstrip("-").isdigit():
            raise UsageError(f"--set {key}: {value!r} is not an integer", path=sp.path)
        prop.value = value.lower() if prop.type == "boolean" else value
        changed.append(prop.full_key)
    return changed
