"""Which mainstream OVF consumers read or refuse what a finding describes (one table; docs/rules.md
gives the sources per rule).

``validate`` (default mode) answers "will the mainstream consumers accept this package": a deviation
they read is a warning naming them, and a finding they refuse the package for is an error whose
message names them. The consumers: VMware OVF Tool / vSphere, VirtualBox, oVirt, virt-v2v, COT.
"""

from __future__ import annotations

from dataclasses import replace

from vmferry.findings import Finding

VMWARE, VBOX, OVIRT, V2V, COT = "VMware OVF Tool/vSphere", "VirtualBox", "oVirt", "virt-v2v", "COT"

# rule -> consumers that read descriptors showing it (they write such descriptors themselves, or their
# documentation says the deviation is ignored)
TOLERATED: dict[str, tuple[str, ...]] = {
    "VMF-XSD-003": (VBOX, OVIRT, V2V, COT),
    "VMF-XSD-004": (VBOX, OVIRT),
    "VMF-XSD-005": (VMWARE, VBOX, OVIRT, V2V, COT),
    "VMF-XSD-006": (VMWARE, VBOX, OVIRT, V2V, COT),
    "VMF-XSD-007": (OVIRT, V2V),
    "VMF-XSD-008": (VBOX, OVIRT, V2V),
}

# rule -> consumers that refuse a package showing it (virt-v2v -i ova: "error parsing disk fileRef", "no href
# in ovf:File", "could not parse disk rasd:HostResource from OVF document" in its OVF parser)
REFUSED: dict[str, tuple[str, ...]] = {
    "VMF-OVF-005": (VMWARE, COT),
    "VMF-REF-001": (VMWARE, V2V),
    "VMF-REF-002": (VMWARE, VBOX, V2V),
    "VMF-REF-005": (V2V,),
    "VMF-REF-008": (VMWARE, VBOX, V2V),
    "VMF-REF-010": (V2V,),
    "VMF-HW-004": (VMWARE, VBOX, V2V),
}


def tolerated_by(rule: str) -> tuple[str, ...]:
    return TOLERATED.get(rule, ())


def refused_by(rule: str) -> tuple[str, ...]:
    return REFUSED.get(rule, ())


def name_consumers(findings: list[Finding]) -> list[Finding]:
    """The findings, each error a consumer refuses naming those consumers."""
    out = []
    for f in findings:
        who = refused_by(f.rule) if f.severity == "error" else ()
        out.append(replace(f, message=f"{f.message} (refused by {', '.join(who)})") if who else f)
    return out
