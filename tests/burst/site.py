"""The burst site of the tests and the benchmark: on a privileged private libvirtd, a libvirt network
(host at the gateway), the ready image of the web component (the burst test guest as a recovery point's
layer), the component's production server (a local HTTP server) behind HAProxy, BIND for the zone, the
locator, and the application manifest with its ``burst:`` policy — everything on 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.burst import burstguest
from tests.burst.servers import LOCATOR_SECRET, HAProxy, Locator, Primary
from tests.recovery import replicas
from vmferry.burst.target import BurstTarget, make_target
from vmferry.locator.devservers import Named
from vmferry.plans.manifest import load_app
from vmferry.recovery.model import Probe, RecoveryVm, VmDisk, VmNic
from vmferry.sites import libvirt_net
from vmferry.tools import libvirt as lv

ZONE = "shop.example.test"
SUBNET, GATEWAY, POOL = "10.78.0.0/24", "10.78.0.1", "10.78.0.50-10.78.0.59"
POLICY = {"metric": "rate", "up": 6, "down": 2, "min": 0, "max": 2, "step": 2, "cooldown": 5, "drain_timeout": 20,
          "instance_dns": True}


@dataclass
class BurstSite:
    target: BurstTarget
    storage: Path
    image: Path                      # the ready image's base (what a full copy would copy)
    top: Path                        # the ready point's layer
    haproxy: HAProxy
    named: Named
    locator: Locator
    network: str


def _manifest(tmp: Path, *, uri: str, storage: Path, network: str, named: Named, haproxy: HAProxy,
              locator: Locator, policy: dict) -> Path:
    path = tmp / "shop.yaml"
    path.write_text(yaml.safe_dump({
        "name": "shop", "zone": ZONE,
        "components": {"web": {
            "source": {"domain": "web"}, "nics": [{"network": "lan", "address": "10.66.0.13/24"}], "ports": [80],
            "burst": policy}},
        "dns": {"records": [{"name": "www", "component": "web"}]},
        "load_balancer": {"pools": [{"name": "web", "port": 80, "members": ["web"],
                                     "health_check": {"type": "http", "path": "/"}}]},
        "sites": {"cloud": {
            "platform": "libvirt",
            "libvirt": {"uri": uri, "storage": str(storage), "networks": {"cloud-lan": network}},
            "networks": {"cloud-lan": {"subnet": SUBNET, "gateway": GATEWAY, "pool": POOL}},
            "dns": {"server": f"127.0.0.1:{named.port}",
                    "tsig": {"name": named.key_name, "secret": named.secret}},
            "load_balancer": {"kind": "haproxy", "runtime": f"unix:{haproxy.socket}"},
            "locator": {"url": locator.url, "key_id": "cloud-1", "secret": LOCATOR_SECRET}}}}))
    return path


@contextlib.contextmanager
def burst_site(daemon, tmp: Path, *, policy: dict | None = None) -> Iterator[BurstSite]:
    image = burstguest.burst_image()
    (daemon.workdir / "cloud").mkdir()
    storage = daemon.own(daemon.workdir / "cloud")
    top = replicas.make_replica(storage, "shop", "web", image)
    net = libvirt_net.plan_network("shop", "burst", 0, "cloud-lan", SUBNET, GATEWAY, set())
    with contextlib.ExitStack() as stack:
        primary = Primary()
        stack.callback(primary.close)
        haproxy = HAProxy(tmp / "haproxy", primary.port).start()
        stack.callback(haproxy.close)
        named = Named(tmp / "named", zone=ZONE).start()
        stack.callback(named.close)
        locator = Locator(tmp / "locator", ZONE, SUBNET).start()
        stack.callback(locator.close)
        with lv.connect(daemon.uri) as conn:
            conn.define_network(libvirt_net.network_xml(net))
        stack.callback(_remove_all, daemon.uri, net.name)
        app = load_app(_manifest(tmp, uri=daemon.uri, storage=storage, network=net.name, named=named,
                                 haproxy=haproxy, locator=locator, policy=policy or POLICY))
        vm = RecoveryVm(component="web", name="web", domain_xml=replicas.replica_domain("web"),
                        disks=(VmDisk("vda", str(top)),), nics=(VmNic(0, "cloud-lan", None, 24),),
                        probes=(Probe("http", 80, "/"),), agent=True, timeout=400)
        target = make_target(app, "web", "cloud", vm, replicas.POINT, uri=daemon.uri, storage=str(storage),
                             domain_type="qemu")     # the private daemon's QEMU (nobody) cannot open /dev/kvm
        yield BurstSite(target, storage, image, top, haproxy, named, locator, net.name)


def _remove_all(uri: str, network: str) -> None:
    """Whatever a failed test left: the copies' domains, then the network."""
    with lv.connect(uri) as conn:
        for name in conn.names():
            if name.startswith("shop-"):
                conn.undefine(name)
        conn.remove_network(network)
