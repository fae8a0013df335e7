"""``VirtualHardwareSection`` and its ``Item`` / ``StorageItem`` / ``EthernetPortItem`` entries.

An Item may apply to every deployment profile or only to some (``ovf:configuration="a b"``); several
Items may share an InstanceID, one per profile (COT's ``OVFItem`` idea). :meth:`HardwareSection.items_for`
resolves the set of Items that hold for one profile.
"""

from __future__ import annotations

from vmferry.ovf.rasd import ResourceType, controller_kind
from vmferry.ovf.units import parse_byte_units, parse_int
from vmferry.ovf.xmlmodel import Node, OvfAttr, cached, first_child, iter_children, localname

ITEM_TAGS = ("Item", "StorageItem", "EthernetPortItem")


class Item(Node):
    """One hardware item. RASD/SASD/EPASD properties are read by case-insensitive local name, so
    0.9's ``InstanceId`` and 1.x's ``InstanceID`` are the same.

    An Item is a read view: its values are cached on first use. Code that edits the element builds a
    fresh Item (or a fresh Envelope) afterwards."""

    configuration_text = OvfAttr("configuration")
    bound = OvfAttr("bound")
    required_text = OvfAttr("required")

    @cached
    def _props(self) -> dict[str, list[str]]:
        props: dict[str, list[str]] = {}
        names = self.envelope._lower_names  # tag -> lower-case local name, shared by every Item
        for child in self.element:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            name = names.get(tag)
            if name is None:
                name = names[tag] = tag[tag.rfind("}") + 1:].lower()
            text = child.text
            value = text.strip() if text else ""
            entry = props.get(name)
            if entry is None:
                props[name] = [value]
            else:
                entry.append(value)
        return props

    def get(self, name: str) -> str | None:
        values = self._props.get(name.lower())
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return list(self._props.get(name.lower(), []))

    @property
    def kind(self) -> str:
        return localname(self.element)

    @cached
    def instance_id(self) -> str | None:
        return self.get("InstanceID")

    @cached
    def resource_type(self) -> int | None:
        return parse_int(self.get("ResourceType"))

    @property
    def resource_subtype(self) -> str | None:
        return self.get("ResourceSubType")

    @property
    def element_name(self) -> str | None:
        return self.get("ElementName") or self.get("Caption")

    @property
    def parent(self) -> str | None:
        """The parent controller's InstanceID; oVirt's nil UUID (all zeros) means none."""
        value = self.get("Parent")
        if value and not value.strip("0-"):
            return None
        return value

    @property
    def address_on_parent(self) -> str | None:
        return self.get("AddressOnParent")

    @property
    def host_resources(self) -> list[str]:
        return self.get_all("HostResource")

    @property
    def connections(self) -> list[str]:
        return [c for c in self.get_all("Connection") if c]

    @property
    def virtual_quantity(self) -> int | None:
        return parse_int(self.get("VirtualQuantity"))

    @property
    def cpu_topology(self) -> tuple[int, int, int] | None:
        """(sockets, cores per socket, threads per core) as oVirt/RHV write them in a processor Item
        (``rasd:num_of_sockets``, ``rasd:cpu_per_socket``, ``rasd:threads_per_cpu``); None without them."""
        sockets, cores = parse_int(self.get("num_of_sockets")), parse_int(self.get("cpu_per_socket"))
        if not sockets or not cores or sockets < 1 or cores < 1:
            return None
        threads = parse_int(self.get("threads_per_cpu")) or 1
        return sockets, cores, max(1, threads)

    @property
    def cpu_count(self) -> int | None:
        """Virtual CPUs of a processor Item: ``VirtualQuantity``, else sockets × cores × threads."""
        qty = self.virtual_quantity
        if qty is not None:
            return qty
        topology = self.cpu_topology
        return topology[0] * topology[1] * topology[2] if topology else None

    @property
    def mac(self) -> str | None:
        """A NIC's MAC address: ``rasd:Address`` (DMTF), or ``rasd:MACAddress`` (oVirt/RHV)."""
        return self.get("Address") or self.get("MACAddress") or None

    @property
    def allocation_units(self) -> str | None:
        return self.get("AllocationUnits") or self.get("VirtualQuantityUnits")

    @cached
    def configurations(self) -> set[str] | None:
        text = self.configuration_text
        return set(text.split()) if text else None

    @property
    def required(self) -> bool:
        return (self.required_text or "true").strip().lower() != "false"

    def applies_to(self, profile: str | None) -> bool:
        configs = self.configurations
        return configs is None or (profile is not None and profile in configs)

    @property
    def memory_mib(self) -> int | None:
        qty = self.virtual_quantity
        if qty is None:
            return None
        units = self.allocation_units
        mult = parse_byte_units(units) if units else 1 << 20  # MiB when unstated (common practice)
        if mult is None:
            return None
        return (qty * mult) >> 20

    @property
    def controller_kind(self) -> str:
        return controller_kind(self.resource_type, self.resource_subtype)


class HardwareSection(Node):
    """One ``VirtualHardwareSection`` of a virtual system."""

    transport = OvfAttr("transport")

    @cached
    def items(self) -> list[Item]:
        return [Item(self.envelope, el) for el in iter_children(self.element, None)
                if localname(el) in ITEM_TAGS]

    @property
    def system_types(self) -> list[str]:
        """Hardware families (``vmx-08``, ``virtualbox-2.2``, ...); a value may list several."""
        system = first_child(self.element, "ovf", "System")
        if system is None:
            return []
        out: list[str] = []
        for child in system:
            if isinstance(child.tag, str) and localname(child) == "VirtualSystemType" and child.text:
                out.extend(child.text.split())
        return out

    @property
    def system_identifier(self) -> str | None:
        system = first_child(self.element, "ovf", "System")
        if system is None:
            return None
        for child in system:
            if isinstance(child.tag, str) and localname(child) == "VirtualSystemIdentifier":
                return (child.text or "").strip() or None
        return None

    def items_for(self, profile: str | None) -> list[Item]:
        cache = self.__dict__.setdefault("_items_for", {})
        if profile not in cache:
            cache[profile] = self._resolve_items(profile)
        return list(cache[profile])

    def _resolve_items(self, profile: str | None) -> list[Item]:
        """The Items that hold for ``profile``: per InstanceID, the profile-specific one if any, else the
        general one. Items without InstanceID are kept when they apply, and so are general Items that
        repeat an InstanceID (a descriptor error, or a template's placeholder id): none is dropped."""
        slots: list[Item] = []
        where: dict[str, int] = {}          # InstanceID -> slot of its first Item
        loose: list[Item] = []
        for item in self.items:
            if not item.applies_to(profile):
                continue
            iid = item.instance_id
            if not iid:
                loose.append(item)
                continue
            if iid not in where:
                where[iid] = len(slots)
                slots.append(item)
                continue
            first = slots[where[iid]]
            if item.configurations is not None and first.configurations is None:
                slots[where[iid]] = item          # the profile's own Item replaces the general one
            elif item.configurations is None and first.configurations is None:
                slots.append(item)
        return slots + loose

    def by_type(self, profile: str | None, *types: ResourceType) -> list[Item]:
        wanted = {int(t) for t in types}
        return [i for i in self.items_for(profile) if i.resource_type in wanted]
