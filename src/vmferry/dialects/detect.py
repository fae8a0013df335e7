"""Who wrote this descriptor? Evidence-based detection with a confidence per dialect.

Each detector looks at :class:`Evidence` gathered in one walk over the document and returns a
confidence in [0, 1]; the registry in :mod:`vmferry.dialects` is a plain table of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmferry.ovf import names as N
from vmferry.ovf.envelope import Envelope


@dataclass
class Evidence:
    roles: dict[str, int] = field(default_factory=dict)        # namespace role -> distinct names used
    families: list[str] = field(default_factory=list)
    subtypes: list[str] = field(default_factory=list)
    product_classes: list[str] = field(default_factory=list)
    vendors: list[str] = field(default_factory=list)
    local_names: set[str] = field(default_factory=set)          # of elements in the envelope namespace or none
    rasd_names: set[str] = field(default_factory=set)           # of RASD elements (oVirt adds its own)
    declared: set[str] = field(default_factory=set)             # roles of the namespaces the root declares
    version: str = ""
    envelope_ns: str = ""
    notes: list[str] = field(default_factory=list)


def gather(env: Envelope) -> Evidence:
    ev = Evidence(version=env.version, envelope_ns=env.ovf_ns)
    root = env.root
    # one pass at C speed: the distinct element tags and the qualified attribute names in use
    tags = {el.tag for el in root.iter() if isinstance(el.tag, str)}
    attrs = {a.attrname for a in root.xpath("//@*[namespace-uri() != '']")}
    roles = ev.roles
    ev.declared = {N.role_of(uri) or uri for uri in (root.nsmap or {}).values() if uri}
    for name in tags | attrs:
        if name[0] != "{":
            if name in tags:
                ev.local_names.add(name)    # unqualified: oVirt writes its own elements so
            continue
        ns, _, local = name[1:].partition("}")
        role = N.role_of(ns) or ns
        if name in attrs and role in ("ovf", "xsi", "xml"):
            continue
        roles[role] = roles.get(role, 0) + 1
        if role == "ovf" and name in tags:
            ev.local_names.add(local)
        elif role == "rasd" and name in tags:
            ev.rasd_names.add(local)
    for system in env.systems:
        for hw in system.hardware_sections:
            ev.families.extend(hw.system_types)
            ev.subtypes.extend(i.resource_subtype for i in hw.items if i.resource_subtype)
        for product in system.product_sections:
            if product.product_class:
                ev.product_classes.append(product.product_class)
            if product.vendor:
                ev.vendors.append(product.vendor)
    return ev


def _score(*signals: tuple[bool, float]) -> float:
    """Combine independent signals: 1 - prod(1 - w) over the signals that fire."""
    miss = 1.0
    for fired, weight in signals:
        if fired:
            miss *= 1.0 - weight
    return round(1.0 - miss, 3)


def vmware(ev: Evidence) -> float:
    return _score(
        (ev.roles.get("vmw", 0) > 0, 0.8),
        (any(f.startswith("vmx-") for f in ev.families), 0.7),
        (ev.envelope_ns == N.OVF_09, 0.6),
        (any(s.lower().startswith("vmware.") for s in ev.subtypes), 0.5),
        (any(s.lower() in ("vmxnet3", "virtualscsi", "lsilogicsas") for s in ev.subtypes), 0.3),
    )


def virtualbox(ev: Evidence) -> float:
    return _score(
        (ev.roles.get("vbox", 0) > 0, 0.9),
        (any(f.lower().startswith("virtualbox") for f in ev.families), 0.8),
    )


def xen(ev: Evidence) -> float:
    return _score(
        (ev.roles.get("xenovf", 0) > 0, 0.9),
        (any(f.lower().startswith(("xen-", "hvm-", "xen", "domu")) for f in ev.families), 0.7),
        (any("citrix" in v.lower() or "xensource" in v.lower() for v in ev.vendors), 0.4),
    )


def hyperv(ev: Evidence) -> float:
    return _score(
        (ev.roles.get("hyperv", 0) > 0, 0.8),
        (any("hyper-v" in f.lower() for f in ev.families), 0.8),
        (any("hyper-v" in s.lower() for s in ev.subtypes), 0.6),
    )


def ovirt(ev: Evidence) -> float:
    """oVirt's engine and virt-v2v (-o rhv/vdsm): its own unqualified elements, rasd:num_of_sockets."""
    ovirt_elements = {"Origin", "TemplateId", "VmType", "IsAutoSuspend", "TimeZone", "CreationDate"}
    return _score(
        (ev.roles.get("ovirt", 0) > 0, 0.9),
        (len(ovirt_elements & ev.local_names) >= 2, 0.8),
        (any(f.lower().startswith(("ovirt", "rhev")) for f in ev.families), 0.7),
        (bool({"num_of_sockets", "cpu_per_socket"} & ev.rasd_names), 0.7),
        ("ovirt" in ev.declared, 0.5),
    )


def cisco(ev: Evidence) -> float:
    """Cisco appliances are VMware-flavoured OVF plus Cisco's own marks: when those marks are there, the
    Cisco dialect (a refinement of VMware's) is at least as likely as plain VMware."""
    own = _score(
        (any(f.lower().startswith("cisco:") for f in ev.families), 0.85),
        (any(c.lower().startswith("com.cisco.") for c in ev.product_classes), 0.8),
        (any("cisco" in v.lower() for v in ev.vendors), 0.5),
    )
    if own >= 0.5:
        return max(own, min(0.99, round(vmware(ev) + 0.01, 3)))
    return own


def generic(ev: Evidence) -> float:
    """DMTF OVF with no vendor's marks: confident when only DMTF namespaces are used."""
    vendor_roles = {r for r in ev.roles if r not in ("ovf", "rasd", "vssd", "sasd", "epasd", "cim", "cim-class",
                                                       "xsi", "xml", "pasd")}
    if ev.version == "0.9":
        return 0.1
    return 0.6 if not vendor_roles else 0.2
