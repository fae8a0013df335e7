"""Semantic rules over one descriptor: references, hardware items, networks, profiles, properties.

These hold whatever the target; they are what ``vmferry validate`` reports besides the XSD.
"""

from __future__ import annotations

from collections import Counter

from vmferry.findings import Finding
from vmferry.ovf import names as N
from vmferry.ovf.envelope import Envelope, VirtualSystem
from vmferry.ovf.rasd import CONTROLLER_TYPES, NIC_TYPES, ResourceType
from vmferry.ovf.units import parse_byte_units, parse_int
from vmferry.ovf.xmlmodel import get_ovf_attr, localname, location, namespace
from vmferry.package.base import safe_href

PROPERTY_TYPES = {"uint8", "sint8", "uint16", "sint16", "uint32", "sint32", "uint64", "sint64", "string",
                  "boolean", "real32", "real64", "password", "ip", "ip:", "expression"}


def descriptor_findings(env: Envelope) -> list[Finding]:
    out = list(env.findings)
    out += _namespace_findings(env)
    out += _section_findings(env)
    out += _reference_findings(env)
    out += _profile_findings(env)
    if not env.systems:
        out.append(Finding("VMF-OVF-001", "error", "the envelope describes no VirtualSystem",
                           location(env.root)))
    for system in env.systems:
        out += _hardware_findings(env, system)
        out += _property_findings(system)
    return out


def _namespace_findings(env: Envelope) -> list[Finding]:
    out = []
    for prefix, uri in (env.root.nsmap or {}).items():
        if uri and not N.is_canonical(uri):
            role = N.role_of(uri)
            out.append(Finding("VMF-OVF-003", "warning", f"namespace '{prefix}' is '{uri}', a misspelling of "
                               f"the {role} namespace '{N.CANONICAL.get(role, env.names.ovf)}'; read as such",
                               location(env.root), "convert writes the standard URI", "convert"))
    declared = env.declared_version
    if declared:
        expected = {"0.9": ("0.9",), "1.x": ("1.0", "1.1"), "2.x": ("2.0", "2.1")}[env.version]
        if not declared.startswith(expected):
            out.append(Finding("VMF-OVF-004", "warning", f"ovf:version=\"{declared}\" does not match the "
                               f"OVF {env.version} envelope namespace", location(env.root)))
    return out


def _section_findings(env: Envelope) -> list[Finding]:
    """An unknown section that is required (``ovf:required`` absent or true) stops every conforming
    consumer (DSP0243): VMware's parser reports it as an error. Unknown means no DMTF envelope schema
    declares it, whatever its spelling (``<FooSection>`` or 0.9's ``<Section xsi:type="ovf:Foo_Type">``)."""
    from vmferry.ovf.deviations import known_sections
    from vmferry.ovf.xmlmodel import xsi_type

    known = known_sections()
    out = []
    holders = [env.root] + [el for el in env.root.iter() if isinstance(el.tag, str)
                            and localname(el) in ("VirtualSystem", "VirtualSystemCollection", "Content")]
    for holder in holders:
        for child in holder:
            if not isinstance(child.tag, str) or N.role_of(namespace(child)) not in ("ovf", None):
                continue
            if namespace(child) is not None and N.role_of(namespace(child)) != "ovf":
                continue
            name = localname(child)
            if name == "Section":
                name = (xsi_type(child) or "").removesuffix("_Type")
            if not name.endswith("Section") or name.lower() in known:
                continue
            required = get_ovf_attr(child, env.ovf_ns, "required")
            if (required or "true").strip().lower() == "false":
                continue
            out.append(Finding("VMF-OVF-005", "error", f"section '{name}' is unknown and required "
                               "(ovf:required is not \"false\"): a conforming consumer must refuse the package",
                               location(child), "mark it ovf:required=\"false\" if it may be ignored"))
    return out


def _reference_findings(env: Envelope) -> list[Finding]:
    out = []
    ids = Counter(f.id for f in env.references)
    for fid, n in ids.items():
        if n > 1:
            out.append(Finding("VMF-REF-007", "error", f"File id '{fid}' is declared {n} times", ""))
    for f in env.references:
        if not f.id or not f.href:
            out.append(Finding("VMF-REF-008", "error", "File lacks ovf:id or ovf:href", f.location))
            continue
        if safe_href(f.href) is None:
            out.append(Finding("VMF-REF-002", "error", f"File '{f.id}' has href '{f.href}', which is not a "
                               "relative path inside the package (absolute, '..' or URL); it is never opened",
                               f.location))
        if f.size_text is not None and f.size is None:
            out.append(Finding("VMF-REF-009", "warning", f"File '{f.id}' has ovf:size '{f.size_text}', not a "
                               "number", f.location))
    disk_ids = Counter(d.disk_id for d in env.disks)
    for did, n in disk_ids.items():
        if n > 1:
            out.append(Finding("VMF-REF-007", "error", f"Disk id '{did}' is declared {n} times", ""))
    used_files: set[str] = set()
    for d in env.disks:
        if d.file_ref:
            backing = env.file_for_ref(d.file_ref)
            used_files.add(backing.id if backing is not None and backing.id else d.file_ref)
            if backing is None:
                out.append(Finding("VMF-REF-001", "error", f"Disk '{d.disk_id}' has fileRef '{d.file_ref}', "
                                   "which References does not declare", d.location))
        if d.capacity_text is None:
            out.append(Finding("VMF-HW-004", "error", f"Disk '{d.disk_id}' has no ovf:capacity", d.location))
        elif d.capacity_bytes is None:
            units = d.capacity_units
            why = (f"units '{units}' are not understood" if units and parse_byte_units(units) is None
                   else f"capacity '{d.capacity_text}' is not a number")
            out.append(Finding("VMF-HW-004", "error", f"Disk '{d.disk_id}': {why}", d.location))
    for system in env.systems:
        hw = system.hardware
        for item in (hw.items if hw else []):
            for res in item.host_resources:
                kind, _, ident = _host_resource(res)
                if kind == "file":
                    used_files.add(ident)
    for f in env.references:
        if f.id and f.id not in used_files:
            out.append(Finding("VMF-REF-006", "info", f"File '{f.id}' ({f.href}) is not used by any disk or "
                               "device", f.location))
    return out


def _host_resource(text: str) -> tuple[str, str, str]:
    """``ovf:/disk/ID`` → ('disk', '', 'ID'); 0.9's ``/disk/ID`` too; else ('', '', text)."""
    t = text.strip()
    for prefix in ("ovf:/", "ovf://", "/"):
        if t.startswith(prefix):
            rest = t[len(prefix):]
            kind, _, ident = rest.partition("/")
            if kind in ("disk", "file") and ident:
                return kind, "", ident
    return "", "", t


def _profile_findings(env: Envelope) -> list[Finding]:
    out = []
    opts = env.deployment_options
    defaults = [o for o in opts if o.is_default]
    if len(defaults) > 1:
        out.append(Finding("VMF-PROF-001", "warning", f"{len(defaults)} deployment profiles are marked "
                           f"default; '{defaults[0].id}' is used", defaults[1].location))
    ids = {o.id for o in opts}
    for system in env.systems:
        for hw in system.hardware_sections:
            for item in hw.items:
                for cfg in sorted(item.configurations or ()):
                    if cfg not in ids:
                        out.append(Finding("VMF-PROF-002", "warning", f"Item applies to profile '{cfg}', "
                                           "which DeploymentOptionSection does not declare", item.location))
    return out


def _hardware_findings(env: Envelope, system: VirtualSystem) -> list[Finding]:
    out: list[Finding] = []
    hw = system.hardware
    if hw is None:
        return [Finding("VMF-HW-008", "error", f"VirtualSystem '{system.id}' has no VirtualHardwareSection",
                        system.location)]
    profiles = [o.id for o in env.deployment_options] or [None]
    network_names = {n.name for n in env.networks}
    reported: set[tuple] = set()
    for profile in profiles:
        items = hw.items_for(profile)
        by_id = {i.instance_id: i for i in items if i.instance_id}
        counts = Counter(i.instance_id for i in hw.items if i.instance_id and i.applies_to(profile)
                         and i.configurations is not None)
        for iid, n in counts.items():
            if n > 1 and ("dup", iid) not in reported:
                reported.add(("dup", iid))
                out.append(Finding("VMF-HW-001", "error", f"InstanceID {iid} is used by {n} Items in profile "
                                   f"'{profile}'", system.location))
        for item in items:
            key = item.element
            if not item.instance_id and ("noid", key) not in reported:
                reported.add(("noid", key))
                out.append(Finding("VMF-HW-009", "error", "Item has no InstanceID", item.location))
            if item.parent and ("parent", key) not in reported:
                parent = by_id.get(item.parent)
                if parent is None:
                    reported.add(("parent", key))
                    out.append(Finding("VMF-HW-002", "error", f"Item {item.instance_id} names Parent "
                                       f"{item.parent}, which is not an Item", item.location))
                elif parent.resource_type not in {int(t) for t in CONTROLLER_TYPES}:
                    reported.add(("parent", key))
                    out.append(Finding("VMF-HW-003", "error", f"Item {item.instance_id} names Parent "
                                       f"{item.parent} ({parent.element_name or 'resource type ' + str(parent.resource_type)}), "
                                       "which is not a controller", item.location))
            for res in item.host_resources:
                kind, _, ident = _host_resource(res)
                if ("hr", key, res) in reported:
                    continue
                if not kind and item.resource_type == ResourceType.DISK_DRIVE and \
                        env.disk_for_host_resource(res) is not None:
                    continue  # oVirt/RHV image path naming a Disk by its fileRef or diskId
                if kind == "disk" and env.disk_by_id(ident) is None:
                    reported.add(("hr", key, res))
                    out.append(Finding("VMF-REF-005", "error", f"HostResource '{res}' names no Disk of "
                                       "DiskSection", item.location))
                elif kind == "file" and env.file_by_id(ident) is None:
                    reported.add(("hr", key, res))
                    out.append(Finding("VMF-REF-005", "error", f"HostResource '{res}' names no File of "
                                       "References", item.location))
                elif not kind and item.resource_type == ResourceType.DISK_DRIVE:
                    reported.add(("hr", key, res))
                    out.append(Finding("VMF-REF-010", "error", f"disk HostResource '{res}' is not of the "
                                       "form ovf:/disk/ID", item.location))
            if item.resource_type in {int(t) for t in NIC_TYPES} and ("nic", key) not in reported:
                reported.add(("nic", key))
                for conn in item.connections:
                    if conn not in network_names:
                        out.append(Finding("VMF-NET-001", "error", f"NIC {item.instance_id} connects to "
                                           f"network '{conn}', which NetworkSection does not declare",
                                           item.location))
                if not item.connections:
                    out.append(Finding("VMF-NET-002", "warning", f"NIC {item.instance_id} names no network "
                                       "(Connection)", item.location))
            if item.resource_type == ResourceType.MEMORY and item.memory_mib is None and \
                    ("mem", key) not in reported:
                reported.add(("mem", key))
                out.append(Finding("VMF-HW-006", "warning", f"memory '{item.get('VirtualQuantity')}' with units "
                                   f"'{item.allocation_units}' is not understood", item.location))
        if not any(i.resource_type == ResourceType.PROCESSOR for i in items) and ("cpu", profile) not in reported:
            reported.add(("cpu", profile))
            out.append(Finding("VMF-HW-005", "warning", f"no CPU Item for profile '{profile}'"
                               if profile else "no CPU Item", hw.location))
        if not any(i.resource_type == ResourceType.MEMORY for i in items) and ("memi", profile) not in reported:
            reported.add(("memi", profile))
            out.append(Finding("VMF-HW-005", "warning", f"no memory Item for profile '{profile}'"
                               if profile else "no memory Item", hw.location))
    return out


def _property_findings(system: VirtualSystem) -> list[Finding]:
    out = []
    seen: Counter = Counter()
    for product in system.product_sections:
        for prop in product.properties():
            seen[prop.full_key] += 1
            if not prop.key:
                out.append(Finding("VMF-PROP-003", "error", "Property has no ovf:key", prop.location))
                continue
            ptype = (prop.type or "").strip()
            if ptype and ptype not in PROPERTY_TYPES and not ptype.startswith("ip"):
                out.append(Finding("VMF-PROP-001", "warning", f"property '{prop.key}' has unknown type "
                                   f"'{ptype}'", prop.location))
            value = prop.default
            if value and ptype.startswith(("uint", "sint")) and parse_int(value) is None \
                    and not value.startswith("${"):
                out.append(Finding("VMF-PROP-001", "warning", f"property '{prop.key}' of type {ptype} has "
                                   f"value '{value}'", prop.location))
            if value and ptype == "boolean" and value.lower() not in ("true", "false", "1", "0"):
                out.append(Finding("VMF-PROP-001", "warning", f"property '{prop.key}' of type boolean has "
                                   f"value '{value}'", prop.location))
    for key, n in seen.items():
        if n > 1:
            out.append(Finding("VMF-PROP-002", "warning", f"property '{key}' is declared {n} times",
                               system.location))
    return out
