"""A VM's new network settings expressed as OVF environment properties.

The settings are :class:`vmferry.portable.NetConfig` values per NIC; :func:`vmferry.netconv.write`
turns them into properties of one guest convention (vmferry's portable keys
``vmferry.net.<n>.address`` = ``address/prefix``, ``.gateway``, ``.dns``, ``.search`` by default;
``vmware``, ``cisco`` or ``cloud-init`` on request). This is the one place the plan decides it.
"""

from __future__ import annotations

from vmferry.portable import NetConfig


def ovf_properties(configs: dict[int, NetConfig], convention: str = "vmferry") -> dict[str, str]:
    """OVF environment properties (key → value) carrying ``configs``."""
    from vmferry.netconv import write

    return {p.key: p.value or "" for p in write(configs, convention)}
