"""What a recovery run takes: the VMs of one recovery point, how to prove each one, the boot groups.

Plain frozen dataclasses (JSON-friendly: workflow payloads). :mod:`vmferry.recovery.spec` builds a
:class:`RecoveryPlan` from an application manifest and a recovery point; tests may build one directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROBE_KINDS = ("tcp", "http")


@dataclass(frozen=True)
class Probe:
    """A health check run from the host side: a TCP connect to ``port``, or an HTTP GET of ``path``
    that must answer ``status`` (any 2xx/3xx when 0)."""

    kind: str
    port: int
    path: str = "/"
    status: int = 0

    def describe(self) -> str:
        return f"tcp {self.port}" if self.kind == "tcp" else f"http {self.port}{self.path}"


@dataclass(frozen=True)
class VmNic:
    """One NIC of a recovered VM: the target network it lands on and its target address there."""

    index: int
    network: str
    address: str | None = None
    prefix: int | None = None
    gateway: str | None = None


@dataclass(frozen=True)
class VmDisk:
    """One disk of a replica: the libvirt target (``vda``) and the point's (read-only) qcow2 layer."""

    target: str
    path: str


@dataclass(frozen=True)
class RecoveryVm:
    """One VM of the application as the recovery point holds it."""

    component: str
    name: str
    domain_xml: str                              # the replica's definition (convert --to kvm, repaired)
    disks: tuple[VmDisk, ...]
    nics: tuple[VmNic, ...] = ()
    env: tuple[tuple[str, str], ...] = ()        # OVF environment properties of the replica
    probes: tuple[Probe, ...] = ()
    agent: bool = True                           # the guest runs a guest agent that must answer
    timeout: float = 300.0                       # seconds from start to proof

    @property
    def address(self) -> str | None:
        return next((n.address for n in self.nics if n.address), None)


@dataclass(frozen=True)
class AppCheck:
    """An application check, run after every VM proved itself: ``kind`` tcp/http to ``host``:``port``."""

    name: str
    kind: str
    host: str
    port: int
    path: str = "/"
    status: int = 0
    contains: str = ""                           # http: the body must contain this text
    timeout: float = 60.0


@dataclass(frozen=True)
class TargetNetwork:
    name: str
    subnet: str
    gateway: str | None = None


@dataclass(frozen=True)
class RecoveryPlan:
    """Everything a test recovery needs, resolved: site, point, VMs, boot groups, checks."""

    app: str
    site: str
    uri: str                                     # libvirt connection of the target site
    storage: str                                 # the site's storage directory (run files go below it)
    point_id: str
    taken_at: str                                # ISO time of the recovery point
    vms: tuple[RecoveryVm, ...]
    groups: tuple[tuple[str, ...], ...]          # component names in boot order
    networks: tuple[TargetNetwork, ...]
    checks: tuple[AppCheck, ...] = ()
    cycles: tuple[tuple[str, ...], ...] = field(default=())
    domain_type: str | None = None               # kvm or qemu; None: the best the host offers

    def vms_of(self, components: tuple[str, ...]) -> list[RecoveryVm]:
        return [vm for c in components for vm in self.vms if vm.component == c]
