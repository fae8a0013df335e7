"""Vendor dialects of OVF: detection, reading into the portable profile, and (via
:mod:`vmferry.targets`) writing back per target.

The registry is a plain table (cloud-init's datasource list idea): ``(name, detector, description)``.
Detection returns every dialect's confidence; the best one names the dialect. A specific vendor's
confidence beats ``generic`` when its evidence is present.

>>> from vmferry.ovf import Envelope
>>> from vmferry.dialects import detect
>>> detect(Envelope.from_file("tests/data/cot/ubuntu.2.0.ovf")).name
'virtualbox'
"""

from __future__ import annotations

from dataclasses import dataclass

from vmferry.dialects import detect as _d

# name, detector, what it is. Order breaks ties: vendor-specific first, generic last.
DIALECTS = (
    ("cisco", _d.cisco, "Cisco appliance builders (CSR 1000V, IOSv, ...), usually also VMware-flavoured"),
    ("virtualbox", _d.virtualbox, "Oracle VirtualBox export (vbox:Machine, virtualbox-2.2)"),
    ("xen", _d.xen, "Citrix XenServer / XCP-ng / XenConvert (xenovf, xen-3.0-*)"),
    ("hyperv", _d.hyperv, "Microsoft Hyper-V / SCVMM (Microsoft:Hyper-V families and subtypes)"),
    ("ovirt", _d.ovirt, "oVirt / RHV export (ovirt namespace, Origin/TemplateId)"),
    ("vmware", _d.vmware, "VMware ovftool / vSphere / Workstation (vmw:, vmx-NN, OVF 0.9)"),
    ("generic", _d.generic, "DMTF OVF without vendor extensions"),
)


@dataclass(frozen=True)
class DialectMatch:
    name: str
    confidence: float
    scores: dict[str, float]

    def to_dict(self) -> dict:
        return {"name": self.name, "confidence": self.confidence}


def detect(envelope) -> DialectMatch:
    ev = _d.gather(envelope)
    scores = {name: fn(ev) for name, fn, _ in DIALECTS}
    best = max(DIALECTS, key=lambda row: (scores[row[0]], -DIALECTS.index(row)))[0]
    return DialectMatch(best, scores[best], scores)


def read_package(envelope):
    """Read an envelope into the vendor-free :class:`~vmferry.portable.PortablePackage`."""
    from vmferry.dialects.reader import read_envelope

    return read_envelope(envelope, detect(envelope).name)
