"""Isolated libvirt networks for test recoveries: a bridge the host sits on, and no way out.

An isolated network is a libvirt ``<network>`` with **no** ``<forward>`` element: libvirt then puts
the host on the bridge with the address given (so the host can reach the guests, and health checks
run from there) and installs firewall rules that reject everything forwarded from or to the bridge
(``LIBVIRT_FWO``/``LIBVIRT_FWI``): the guests reach each other and the host, never another network.
DNS and DHCP are off (``<dns enable='no'/>``, no ``<dhcp>``): guests take their addresses from the OVF
environment, as at the target site.

:func:`isolation_problems` reads the network back from libvirt and says what would let traffic out
(a ``<forward>`` of any mode, a ``<route>``), so a run refuses a network that is not isolated.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from lxml import etree

from vmferry.errors import RecoveryError

BRIDGE_MAX = 15                           # Linux interface names: IFNAMSIZ - 1
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class IsolatedNetwork:
    """One isolated network of a test run: libvirt ``name``, Linux ``bridge``, the ``subnet`` of the
    target network it stands in for and the host's ``host_address`` on it (the guests' gateway)."""

    name: str
    bridge: str
    target_network: str
    subnet: str
    host_address: str

    @property
    def prefix(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen


def bridge_name(run_id: str, index: int) -> str:
    """A bridge name unique to the run (``vmft<6 hex of the run>n<index>``), at most 15 characters."""
    digest = re.sub(r"[^0-9a-f]", "", run_id.lower())[-6:] or "0"
    name = f"vmft{digest}n{index}"
    if len(name) > BRIDGE_MAX:
        raise RecoveryError(f"network {index}: bridge name {name} is longer than {BRIDGE_MAX} characters")
    return name


def network_name(app: str, run_id: str, index: int) -> str:
    return _SAFE.sub("_", f"vmferry-test-{app}-{run_id}-n{index}")[:100]


def plan_network(app: str, run_id: str, index: int, target_network: str, subnet: str,
                 gateway: str | None, taken: set[str]) -> IsolatedNetwork:
    """The isolated stand-in for ``target_network`` (``subnet``): the host takes the network's gateway
    address when there is one (the guests' default route then points at the host, which forwards
    nothing), else the first address no guest takes."""
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError as exc:
        raise RecoveryError(f"network {target_network}: {subnet!r} is not a subnet") from exc
    if net.version != 4 or net.prefixlen > 30:
        raise RecoveryError(f"network {target_network}: {subnet} must be an IPv4 subnet of /30 or larger")
    if gateway:
        host = ipaddress.ip_address(gateway)
        if host not in net:
            raise RecoveryError(f"network {target_network}: gateway {gateway} is outside {subnet}")
        if str(host) in taken:
            raise RecoveryError(f"network {target_network}: gateway {gateway} is also a guest's address")
    else:
        host = next((h for h in net.hosts() if str(h) not in taken), None)
        if host is None:
            raise RecoveryError(f"network {target_network}: no free address in {subnet} for the host side")
    return IsolatedNetwork(network_name(app, run_id, index), bridge_name(run_id, index), target_network,
                           str(net), str(host))


def network_xml(net: IsolatedNetwork) -> str:
    root = etree.Element("network")
    etree.SubElement(root, "name").text = net.name
    etree.SubElement(root, "bridge", name=net.bridge, stp="off", delay="0")
    etree.SubElement(root, "dns", enable="no")
    etree.SubElement(root, "ip", address=net.host_address, prefix=str(net.prefix))
    return etree.tostring(root, encoding="unicode")


def isolation_problems(xml: str) -> list[str]:
    """What in a libvirt network definition lets traffic leave it (empty: isolated)."""
    root = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    name = root.findtext("name") or "?"
    out = []
    fwd = root.find("forward")
    if fwd is not None:
        out.append(f"network {name} forwards traffic (<forward mode='{fwd.get('mode') or 'nat'}'>)")
    for route in root.findall("route"):
        out.append(f"network {name} has a static route to {route.get('address')}/{route.get('prefix')}")
    return out
