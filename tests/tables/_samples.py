"""Controller and NIC Items of every real sample, read with vmferry's own OVF model."""

from __future__ import annotations

from functools import cache

from tests.conftest import ALL_SAMPLES
from vmferry.dialects.ovirt import device_kind
from vmferry.ovf import Envelope
from vmferry.ovf.rasd import CONTROLLER_TYPES, NIC_TYPES


@cache
def items() -> tuple[tuple[str, int, str | None], ...]:
    """(sample name, ResourceType, ResourceSubType) of every NIC and storage controller Item."""
    out = []
    for path in ALL_SAMPLES:
        for system in Envelope.from_file(path).systems:
            for section in system.hardware_sections:
                for item in section.items:
                    if device_kind(item) is not None:
                        continue  # oVirt's own <Type> says what it is (its video Item has ResourceType 20)
                    if item.resource_type in NIC_TYPES or item.resource_type in CONTROLLER_TYPES:
                        out.append((path.name, item.resource_type, item.resource_subtype))
    return tuple(out)


@cache
def families() -> tuple[tuple[str, str], ...]:
    """(sample name, VirtualSystemType value) of every sample."""
    return tuple((path.name, value) for path in ALL_SAMPLES for system in Envelope.from_file(path).systems
                 for section in system.hardware_sections for value in section.system_types)
