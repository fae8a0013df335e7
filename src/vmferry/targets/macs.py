"""MAC addresses of a converted VM's NICs: the source's own where it states one, else one derived from the
VM's identity.

A derived MAC is the same on every conversion of the same VM (replicas, re-conversions and the guest's
network rules written by ``guest repair`` keep matching): the first 3 bytes of
SHA-256(``"vmferry-mac" NUL <VirtualSystem id> NUL <NIC InstanceID, or its index>``) after QEMU's
locally administered prefix ``52:54:00``. Two VMs with the same VirtualSystem id and NIC InstanceIDs get
the same MACs: give them different ids (or ``--new-macs``) before deploying them side by side.

This is the one place that decides a NIC's MAC: the KVM target writes :func:`nic_macs` into the domain,
the OVF environment's cloud-init network config matches on it, and guest repair binds the guest's
configuration to it.
"""

from __future__ import annotations

import hashlib
import re

from vmferry.portable import Nic, PortableVM

PREFIX = "52:54:00"
_MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$", re.I)


def normalise_mac(mac: str) -> str:
    """``00-50-56-AA-BB-CC`` -> ``00:50:56:aa:bb:cc``."""
    return mac.strip().lower().replace("-", ":")


def derived_mac(vm_id: str, nic_key: str) -> str:
    """The MAC for NIC ``nic_key`` (its InstanceID, or its index) of the VM whose id is ``vm_id``."""
    digest = hashlib.sha256(b"vmferry-mac\0" + vm_id.encode() + b"\0" + nic_key.encode()).digest()
    return PREFIX + ":" + ":".join(f"{b:02x}" for b in digest[:3])


def nic_mac(vm: PortableVM, nic: Nic) -> str:
    """The source's MAC for ``nic`` when it states a valid one, else the derived one."""
    if nic.mac and _MAC.match(nic.mac.strip()):
        return normalise_mac(nic.mac)
    return derived_mac(vm.id or vm.name or "vm", nic.instance_id or str(nic.index))


def nic_macs(vm: PortableVM, profile: str | None = None) -> list[str]:
    """MACs of the NICs of ``profile`` (default: the NICs of every profile), in the guest's order."""
    nics = vm.nics_for(profile) if profile is not None else vm.nics
    return [nic_mac(vm, n) for n in nics]
