"""The application model: components (VMs), what they depend on, and the sites they can live in.

Plain typed dataclasses, no YAML here (:mod:`vmferry.plans.manifest` reads and validates the file).
Addresses are kept as text in canonical form (``ipaddress`` compressed) so plans serialise to JSON
as they are; helpers turn them back into ``ipaddress`` objects where arithmetic is needed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IDENTITY_KINDS = ("ldap", "kerberos", "oidc", "saml", "radius", "ad")


@dataclass(frozen=True)
class NicSpec:
    """One NIC of a component at the source site."""

    index: int
    network: str
    address: str | None = None      # without prefix; None: DHCP or unknown
    prefix: int | None = None

    @property
    def interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
        if self.address is None:
            return None
        return ipaddress.ip_interface(f"{self.address}/{self.prefix}" if self.prefix is not None
                                      else self.address)


SOURCE_KINDS = ("package", "domain")
BURST_METRICS = ("sessions", "queue", "rate")


@dataclass(frozen=True)
class BurstPolicy:
    """When to add copies of a component at a burst site and when to take them away (``burst:``).

    ``metric``: ``sessions`` (current sessions per serving server of the pool), ``queue`` (requests
    queued in the pool) or ``rate`` (new sessions per second per serving server), read from HAProxy.
    Above ``up`` ``step`` copies are added (never beyond ``max``); below ``down``, once ``cooldown``
    seconds passed since the last change, ``step`` copies are removed (never below ``min``)."""

    metric: str
    up: float
    down: float
    max: int
    min: int = 0
    step: int = 1
    cooldown: float = 60.0
    pool: str | None = None         # the load-balancer pool (default: the one the component is a member of)
    drain_timeout: float = 60.0     # seconds a draining copy may keep sessions before it is removed anyway
    instance_dns: bool = False      # each copy also gets an A record <hostname>.<zone>


@dataclass(frozen=True)
class Component:
    """A VM of the application. Its source is a package (OVF/OVA, optionally one system of a collection)
    or a running libvirt domain at the source site (``source_kind == "domain"``; ``package`` is then "")."""

    name: str
    package: str                    # path, resolved against the manifest's directory ("" for a domain)
    system: str | None = None       # VirtualSystem id inside the package
    nics: tuple[NicSpec, ...] = ()
    eids: tuple[str, ...] = ()      # locator EIDs; default: the first NIC's source address
    ports: tuple[int, ...] = ()     # ports it listens on (helps discovery tell direction)
    source_kind: str = "package"    # one of SOURCE_KINDS
    domain: str | None = None       # the libvirt domain's name at the source site (source_kind "domain")
    burst: BurstPolicy | None = None


@dataclass(frozen=True)
class Service:
    """A service outside the application (LDAP, DNS, NTP, a database...)."""

    name: str
    kind: str
    host: str
    port: int
    protocol: str = "tcp"
    scope: str = "site"             # "site": each site has its own; "global": reachable from anywhere

    @property
    def is_identity(self) -> bool:
        return self.kind in IDENTITY_KINDS

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Dependency:
    """``source`` (a component) calls ``target`` (a component or a service) on ``port``."""

    source: str
    target: str
    target_kind: str                # "component" or "service"
    port: int | None = None
    protocol: str = "tcp"


@dataclass(frozen=True)
class DnsRecord:
    """A record of the application's zone. ``target_kind``: component, pool, address or name."""

    name: str                       # fully qualified, no trailing dot
    type: str                       # A, AAAA, CNAME
    target_kind: str
    targets: tuple[str, ...]
    ttl: int = 60


@dataclass(frozen=True)
class HealthCheck:
    kind: str = "tcp"               # tcp or http
    path: str | None = None         # http only
    interval_ms: int = 2000


@dataclass(frozen=True)
class LbPool:
    """A load-balancer pool (an HAProxy backend) whose members are components."""

    name: str
    port: int
    members: tuple[str, ...]
    health: HealthCheck = field(default_factory=HealthCheck)


@dataclass(frozen=True)
class Endpoint:
    """One side of a firewall rule: ``any``, a component, a service or a literal prefix."""

    kind: str                       # any, component, service, cidr
    value: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "any" else f"{self.kind}:{self.value}" if self.kind != "cidr" \
            else self.value


@dataclass(frozen=True)
class FirewallRule:
    name: str
    source: Endpoint
    dest: Endpoint
    port: int | None = None
    protocol: str = "tcp"
    action: str = "accept"


@dataclass(frozen=True)
class Certificate:
    name: str
    components: tuple[str, ...]
    dns_names: tuple[str, ...] = ()
    ip_sans: tuple[str, ...] = ()
    file: str | None = None         # PEM the SANs were read from, when given


@dataclass(frozen=True)
class SiteNetwork:
    name: str
    subnet: str
    gateway: str | None = None
    dns_servers: tuple[str, ...] = ()
    mtu: int = 1500
    pool: tuple[str, str] | None = None      # first and last address the site may hand out

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.subnet)


@dataclass(frozen=True)
class Tsig:
    name: str
    secret: str = field(repr=False)
    algorithm: str = "hmac-sha256"


@dataclass(frozen=True)
class SiteDns:
    server: str                     # host
    port: int = 53
    tsig: Tsig | None = None


@dataclass(frozen=True)
class SiteLb:
    kind: str                       # haproxy
    runtime: str | None = None      # unix socket path or host:port of the runtime API
    vips: tuple[tuple[str, str], ...] = ()   # (pool, address) pairs

    def vip(self, pool: str) -> str | None:
        return dict(self.vips).get(pool)


@dataclass(frozen=True)
class SiteLocator:
    url: str
    key_id: str | None = None
    secret: str | None = field(default=None, repr=False)
    ttl: int = 60
    instance_id: int = 0
    expires_in: int = 86400         # registrations expire unless refreshed (vmferry locator refresh)


@dataclass(frozen=True)
class SiteFirewall:
    ruleset: str                    # where --apply writes the nftables ruleset
    table: str = "vmferry"


PLATFORMS = ("libvirt",)            # later issues add cloud and OVF-export platforms


@dataclass(frozen=True)
class LibvirtPlatform:
    """A site that runs VMs on libvirt: where replicas and launched disks live, which libvirt network
    each application network joins, and the isolated network test launches use."""

    uri: str
    storage_dir: str | None = None                 # a directory (absolute), or
    storage_pool: str | None = None                # a libvirt storage pool of type dir
    networks: tuple[tuple[str, str], ...] = ()     # (application network, libvirt network)
    test_network: str | None = None                # isolated libvirt network ("user": user-mode)

    def network(self, app_network: str) -> str | None:
        return dict(self.networks).get(app_network)


@dataclass(frozen=True)
class Site:
    name: str
    networks: dict[str, SiteNetwork]
    services: dict[str, Service] = field(default_factory=dict)
    in_use: tuple[str, ...] = ()    # addresses already taken at the site
    dns: SiteDns | None = None
    lb: SiteLb | None = None
    locator: SiteLocator | None = None
    firewall: SiteFirewall | None = None
    platform: str | None = None                    # one of PLATFORMS, None: the site runs no VMs for vmferry
    libvirt: LibvirtPlatform | None = None         # platform "libvirt"


@dataclass(frozen=True)
class SubnetRule:
    """Re-address ``source`` → ``target`` keeping the host part."""

    source: str
    target: str


@dataclass(frozen=True)
class Move:
    """How to go from one site to another: network mapping and re-addressing rules."""

    source: str
    target: str
    networks: tuple[tuple[str, str], ...] = ()         # (source network, target network)
    subnets: tuple[SubnetRule, ...] = ()
    pools: tuple[str, ...] = ()                        # target networks whose NICs take pool addresses
    overrides: tuple[tuple[str, int, str], ...] = ()   # (component, nic index, address)


@dataclass
class App:
    name: str
    path: str                       # the manifest file
    zone: str | None
    components: dict[str, Component]
    services: dict[str, Service] = field(default_factory=dict)
    dependencies: list[Dependency] = field(default_factory=list)
    dns_records: list[DnsRecord] = field(default_factory=list)
    pools: list[LbPool] = field(default_factory=list)
    firewall: list[FirewallRule] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)
    sites: dict[str, Site] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)

    def move(self, source: str, target: str) -> Move:
        found = next((m for m in self.moves if m.source == source and m.target == target), None)
        return found or Move(source, target)
