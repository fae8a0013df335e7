"""Make a domain fit the libvirt host it lands on: domain type, machine, CPU, emulator and networks.

What the host offers is read from the connection (``virConnectGetCapabilities`` and, where the driver
has it, ``virConnectGetDomainCapabilities`` per virtualisation type) into :class:`HostFacts`; the
choices are pure functions of those facts and the domain XML, so ``deploy`` and later recovery runs
make the same decision:

* domain type: ``kvm`` where the host offers it, else ``qemu`` (TCG, much slower) with a warning;
* machine: the domain's own (``q35``, ``pc`` or a versioned name) when the emulator has it, else the
  other family's alias the emulator has, else its default, with a warning;
* CPU: ``host-model`` (else ``host-passthrough``) under kvm; ``custom`` ``qemu64`` under TCG (host-model
  would ask TCG for features it does not emulate);
* emulator: the binary the capabilities name for that type;
* networks: a ``<source network=…>`` must exist on the connection. vmferry's default mapping
  (``default``) becomes the connection's only active network when it has no ``default``; anything else
  missing is an error that lists what exists.

:func:`define_and_start` applies the fit and, where the host claims kvm but guests do not run under
it (nested virtualisation without /dev/kvm passthrough, a locked /dev/kvm), falls back to TCG once
with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from vmferry.errors import TargetError, XmlError

ARCH = "x86_64"
TCG_CPU_MODEL = "qemu64"


@dataclass(frozen=True)
class TypeCaps:
    """What one virtualisation type (``kvm``, ``qemu``) offers for one architecture."""

    domain_type: str
    emulator: str | None
    machines: dict[str, str]                        # name or alias -> canonical name
    default_machine: str | None = None
    cpu_modes: frozenset[str] = frozenset()         # supported <cpu mode=…> (empty: unknown)
    cpu_models: frozenset[str] = frozenset()        # usable custom models (empty: unknown)


@dataclass(frozen=True)
class HostFacts:
    uri: str
    arch: str
    types: dict[str, TypeCaps]                      # domain type -> what it offers, best first
    networks: dict[str, bool] = field(default_factory=dict)   # name -> active

    @property
    def best_type(self) -> str | None:
        for t in ("kvm", "qemu"):
            if t in self.types:
                return t
        return next(iter(self.types), None)


@dataclass
class Fit:
    xml: str
    domain_type: str
    machine: str | None
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)


def _parse(xml: str, what: str) -> etree._Element:
    try:
        return etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"{what} is not well-formed: {exc}") from exc


def read_capabilities(xml: str, arch: str = ARCH) -> dict[str, TypeCaps]:
    """Domain types, emulator and machines per type for ``arch`` from ``virConnectGetCapabilities``."""
    root = _parse(xml, "host capabilities")
    out: dict[str, TypeCaps] = {}
    for guest in root.findall("guest"):
        if (guest.findtext("os_type") or "").strip() != "hvm":
            continue
        a = guest.find("arch")
        if a is None or a.get("name") != arch:
            continue
        base_emulator = (a.findtext("emulator") or "").strip() or None
        base_machines = _machines(a)
        for dom in a.findall("domain"):
            t = dom.get("type") or ""
            emulator = (dom.findtext("emulator") or "").strip() or base_emulator
            machines = _machines(dom) or base_machines
            out.setdefault(t, TypeCaps(t, emulator, machines))
    return out


def _machines(parent: etree._Element) -> dict[str, str]:
    out = {}
    for m in parent.findall("machine"):
        name = (m.text or "").strip()
        if name:
            out[name] = m.get("canonical") or name
    return out


def read_domain_capabilities(xml: str, base: TypeCaps | None = None) -> TypeCaps:
    """One type's offer from ``virConnectGetDomainCapabilities`` (merged over ``base`` from the host
    capabilities, which lists every machine)."""
    root = _parse(xml, "domain capabilities")
    t = (root.findtext("domain") or "").strip()
    emulator = (root.findtext("path") or "").strip() or (base.emulator if base else None)
    default = (root.findtext("machine") or "").strip() or None
    modes, models = set(), set()
    cpu = root.find("cpu")
    for mode in cpu.findall("mode") if cpu is not None else []:
        if mode.get("supported") == "yes":
            modes.add(mode.get("name"))
            if mode.get("name") == "custom":
                models |= {(m.text or "").strip() for m in mode.findall("model") if m.get("usable") != "no"}
    machines = dict(base.machines) if base else {}
    if default:
        machines.setdefault(default, default)
    return TypeCaps(t, emulator, machines, default, frozenset(modes), frozenset(models))


def probe(conn, arch: str = ARCH) -> HostFacts:
    """Read what the host behind ``conn`` (a :class:`vmferry.tools.libvirt.Connection`) offers."""
    types = read_capabilities(conn.capabilities(), arch)
    for t, caps in list(types.items()):
        try:
            dom_xml = conn.domain_capabilities(arch, t, emulator=caps.emulator)
        except TargetError:
            del types[t]          # listed, but the driver refuses it for this emulator: not usable
            continue
        if dom_xml is not None:   # None: the driver has no domain capabilities (test driver)
            types[t] = read_domain_capabilities(dom_xml, caps)
    ordered = {t: types[t] for t in sorted(types, key=lambda x: (x != "kvm", x != "qemu", x))}
    return HostFacts(conn.uri, arch, ordered, conn.networks())


def choose_machine(caps: TypeCaps, wanted: str | None) -> tuple[str | None, str | None]:
    """(machine, warning) for ``wanted`` (q35, pc or a versioned name) on ``caps``."""
    if not caps.machines or wanted in caps.machines:
        return wanted, None
    family = "q35" if wanted and "q35" in wanted else "pc"
    if family in caps.machines:
        return family, f"machine {wanted} is not offered by {caps.emulator}; using {family}"
    fallback = caps.default_machine or ("q35" if "q35" in caps.machines else next(iter(caps.machines)))
    return fallback, f"machine {wanted} is not offered by {caps.emulator}; using {fallback}"


def fit_domain(xml: str, facts: HostFacts, *, domain_type: str | None = None) -> Fit:
    """``xml`` changed to fit ``facts``: type (``domain_type`` or the best the host has), machine, CPU,
    emulator and networks. Raises :class:`TargetError` when the host offers nothing usable."""
    root = _parse(xml, "domain XML")
    if root.tag != "domain":
        raise XmlError(f"not a libvirt domain XML (root element <{root.tag}>)")
    fit = Fit("", root.get("type") or "", None)
    if facts.types:
        _fit_type(root, facts, domain_type, fit)
    _fit_networks(root, facts, fit)
    fit.xml = etree.tostring(root, encoding="unicode")
    return fit


def _fit_type(root, facts: HostFacts, requested: str | None, fit: Fit) -> None:
    old = root.get("type")
    if requested and requested not in facts.types:
        raise TargetError(f"libvirt {facts.uri}: domain type {requested} is not offered for {facts.arch} "
                          f"(offered: {', '.join(facts.types)})")
    t = requested or facts.best_type
    caps = facts.types[t]
    if t == "qemu" and not requested and "kvm" not in facts.types:
        fit.warnings.append(f"{facts.uri} offers no KVM for {facts.arch}: the domain runs under QEMU's TCG "
                            "emulation (much slower)")
    if old != t:
        root.set("type", t)
        fit.changes.append(f"domain type {old} -> {t}")
    fit.domain_type = t
    os_type = root.find("os/type")
    if os_type is not None:
        machine, warning = choose_machine(caps, os_type.get("machine"))
        if machine and machine != os_type.get("machine"):
            fit.changes.append(f"machine {os_type.get('machine')} -> {machine}")
            os_type.set("machine", machine)
        if warning:
            fit.warnings.append(warning)
        fit.machine = machine
    _fit_cpu(root, caps, fit)
    devices = root.find("devices")
    if caps.emulator and devices is not None:
        emu = devices.find("emulator")
        if emu is None:
            emu = etree.Element("emulator")
            devices.insert(0, emu)
        if (emu.text or "").strip() != caps.emulator:
            if emu.text:
                fit.changes.append(f"emulator {emu.text.strip()} -> {caps.emulator}")
            emu.text = caps.emulator


def _fit_cpu(root, caps: TypeCaps, fit: Fit) -> None:
    cpu = root.find("cpu")
    if cpu is None:
        return
    if caps.domain_type == "kvm":
        mode = "host-model" if not caps.cpu_modes or "host-model" in caps.cpu_modes else \
            "host-passthrough" if "host-passthrough" in caps.cpu_modes else None
        if mode and cpu.get("mode") != mode and cpu.get("mode") != "host-passthrough":
            fit.changes.append(f"cpu mode {cpu.get('mode')} -> {mode}")
            cpu.set("mode", mode)
            cpu.attrib.pop("match", None)
            for m in cpu.findall("model"):
                cpu.remove(m)
        return
    if cpu.get("mode") in ("host-model", "host-passthrough", "maximum"):
        model = TCG_CPU_MODEL if not caps.cpu_models or TCG_CPU_MODEL in caps.cpu_models else None
        if model is None:
            return
        fit.changes.append(f"cpu mode {cpu.get('mode')} -> custom {model}")
        cpu.set("mode", "custom")
        cpu.set("match", "exact")
        el = etree.Element("model", fallback="allow")
        el.text = model
        cpu.insert(0, el)


def pick_network(facts: HostFacts, wanted: str) -> tuple[str, str | None]:
    """(network, warning): ``wanted`` if the connection has it active; for vmferry's default mapping
    (``default``) missing or inactive, the connection's only active network; an inactive ``wanted``
    otherwise, with a warning; a :class:`TargetError` naming what exists when it is missing."""
    from vmferry.targets.libvirt_xml import DEFAULT_NETWORK

    if facts.networks.get(wanted):
        return wanted, None
    active = sorted(n for n, up in facts.networks.items() if up)
    if wanted == DEFAULT_NETWORK and len(active) == 1:
        state = "inactive" if wanted in facts.networks else "no"
        return active[0], (f"{facts.uri} has {state} network '{wanted}'; the NIC is connected to "
                           f"'{active[0]}', its only active network")
    if wanted in facts.networks:
        return wanted, f"network '{wanted}' on {facts.uri} is not active: start it before starting the domain"
    have = ", ".join(f"{n} ({'active' if up else 'inactive'})" for n, up in sorted(facts.networks.items()))
    raise TargetError(f"libvirt {facts.uri}: no network '{wanted}' (networks: {have or 'none'}); map the NIC "
                      "to one of them, to a host bridge, or to user-mode networking")


def _fit_networks(root, facts: HostFacts, fit: Fit) -> None:
    for src in root.findall("devices/interface[@type='network']/source"):
        wanted = src.get("network") or ""
        name, warning = pick_network(facts, wanted)
        if name != wanted:
            src.set("network", name)
            fit.changes.append(f"network {wanted} -> {name}")
        if warning:
            fit.warnings.append(warning)


@dataclass
class Deployed:
    info: object                  # vmferry.tools.libvirt.DomainInfo
    domain_type: str
    machine: str | None
    warnings: list[str]
    changes: list[str]


def define_and_start(conn, xml: str, *, start: bool, facts: HostFacts | None = None,
                     domain_type: str | None = None, paused: bool = False) -> Deployed:
    """Fit ``xml`` to the host, define it and (with ``start``) start it (``paused``: its vCPUs wait for a
    resume). When the host claims kvm but the kvm domain cannot be defined or started, it is defined
    again under TCG (``qemu``) and started, with a warning — once, and only when the type was not
    requested explicitly."""
    facts = facts or probe(conn)
    fit = fit_domain(xml, facts, domain_type=domain_type)
    try:
        info = conn.define(fit.xml)
        if start:
            info = conn.start(info.name, paused=paused)
    except TargetError as exc:
        if fit.domain_type != "kvm" or domain_type or "qemu" not in facts.types:
            raise
        first = str(exc)
        name = _name(fit.xml)
        if name in conn.names():
            conn.undefine(name)           # the kvm definition this attempt made
        retry = fit_domain(xml, facts, domain_type="qemu")
        retry.warnings = fit.warnings + [w for w in retry.warnings if w not in fit.warnings]
        retry.warnings.append(f"the host offers KVM but the domain did not run under it ({first}); "
                              "it runs under QEMU's TCG emulation instead (much slower)")
        fit = retry
        info = conn.define(fit.xml)
        if start:
            info = conn.start(info.name, paused=paused)
    return Deployed(info, fit.domain_type, fit.machine, fit.warnings, fit.changes)


def _name(xml: str) -> str:
    return (_parse(xml, "domain XML").findtext("name") or "").strip()
