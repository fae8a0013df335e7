"""What sources write (ResourceSubType spellings), in the portable vocabulary, through the
translation tables of :mod:`vmferry.tables` (one place for the data)."""

from __future__ import annotations

from vmferry.tables import controllers, nics


def nic_model(subtype: str | None) -> str | None:
    """Portable NIC model of a ResourceSubType; a list of alternatives ("VMXNET3 virtio") gives the first."""
    models = nics.nic_models(subtype)
    return models[0] if models else None


def nic_alternatives(subtype: str | None) -> set[str]:
    return set(nics.nic_models(subtype))


def controller(resource_type: int | None, subtype: str | None) -> tuple[str, str | None]:
    """(kind, portable model) of a storage controller. Where a subtype lists alternatives
    ("virtio lsilogic", as Cisco appliances write for KVM and VMware), the vendor's own model wins."""
    choices = controllers.controller_models(resource_type, subtype)
    if not choices:
        from vmferry.ovf.rasd import controller_kind

        return controller_kind(resource_type, subtype), None
    if len(choices) > 1:
        for kind, model in choices:
            if model not in ("virtio-scsi", "virtio-blk"):
                return kind, model
    return choices[0]
