"""The three-component application of the failover/failback end-to-end tests and its surroundings.

db <- app <- web, web behind HAProxy, DNS names in one zone, a firewall rule (app -> db), the components'
locator EIDs (their addresses at dc1): the test guests of :mod:`tests.recovery.appguest`, and the real
servers of the surroundings on 127.0.0.1 — BIND 9 (RFC 2136 + TSIG), HAProxy (runtime API), the locator
service (``vmferry locator serve``, one key per site). Used by ``test_failover_app_e2e`` (dc1 on a session
libvirtd of its own, stopped for the disaster) and ``test_failback_app_e2e`` (dc1 and dr on the shared
privileged libvirtd, each with a production network on a host bridge).
"""

from __future__ import annotations

import contextlib
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.locator.serving import spawn_locator
from tests.plans.servers import HAProxy
from vmferry.locator.client import LocatorClient
from vmferry.locator.devservers import Named, free_port
from vmferry.locator.model import Locator
from vmferry.plans.dnsupdate import ensure_rrset
from vmferry.plans.haproxy import RuntimeApi

HOSTS = {"db": 11, "app": 12, "web": 13}        # component -> last octet of its address at each site
SECRET = "fo13-locator-secret-0123456789"


def user_nic(mac: str) -> str:
    return f"<interface type='user'><mac address='{mac}'/><model type='virtio'/></interface>"


def network_nic(network: str, mac: str) -> str:
    return f"<interface type='network'><source network='{network}'/><mac address='{mac}'/><model type='virtio'/></interface>"


def source_xml(name: str, disk: Path, work: Path, nic: str) -> str:
    """A source guest: the app guest's disk, ``nic``, its serial console and guest agent on sockets in ``work``."""
    return f"""<domain type='qemu'>
  <name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{disk}'/>
      <target dev='vda' bus='virtio'/></disk>
    {nic}
    <serial type='unix'><source mode='bind' path='{work / (name + ".sock")}'/><target port='0'/></serial>
    <channel type='unix'><source mode='bind' path='{work / (name + ".agent")}'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <memballoon model='none'/>
  </devices>
</domain>"""


def bridge_network(name: str, bridge: str, prefix: str) -> str:
    """A production network: a host bridge at ``<prefix>.1/24`` (the host reaches the guests: proofs)."""
    return (f"<network><name>{name}</name><bridge name='{bridge}' stp='off'/><dns enable='no'/>"
            f"<ip address='{prefix}.1' prefix='24'/></network>")


def site_surroundings(servers: dict, key_id: str, ruleset: Path, table: str) -> dict:
    """A site's ``dns``, ``load_balancer``, ``locator`` and ``firewall`` sections (the servers of :func:`servers`)."""
    named = servers["named"]
    return {"dns": {"server": f"127.0.0.1:{named.port}",
                    "tsig": {"name": named.key_name, "algorithm": "hmac-sha256", "secret": named.secret}},
            "load_balancer": {"kind": "haproxy", "runtime": f"unix:{servers['haproxy'].socket}"},
            "locator": {"url": servers["locator"], "key_id": key_id, "secret": SECRET, "ttl": 30},
            "firewall": {"ruleset": str(ruleset), "table": table}}


def manifest(path: Path, *, app: str, zone: str, domains: str, src: str, dr: str, dc1_site: dict,
             dr_site: dict) -> Path:
    """The application ``app`` (source domains ``<domains><component>``) at dc1 (``src``.x addresses on its
    network ``lan``) moved to dr (network ``dr-lan``, readdressed to ``dr``.x); ``dc1_site``/``dr_site``:
    the sites' ``libvirt`` section and surroundings (:func:`site_surroundings`)."""
    comps = {c: {"source": {"domain": f"{domains}{c}"}, "nics": [{"network": "lan", "address": f"{src}.{h}/24"}],
                 "ports": [80]} for c, h in HOSTS.items()}
    path.write_text(yaml.safe_dump({
        "name": app, "zone": zone, "components": comps,
        "dependencies": [{"from": "web", "to": "app", "port": 80}, {"from": "app", "to": "db", "port": 80}],
        "dns": {"records": [{"name": "www", "type": "A", "pool": "web"}, {"name": "app", "type": "A", "component": "app"},
                            {"name": "db", "type": "A", "component": "db"}]},
        "load_balancer": {"pools": [{"name": "web", "port": 80, "members": ["web"],
                                     "health_check": {"type": "http", "path": "/health"}}]},
        "firewall": [{"name": "app-to-db", "from": "app", "to": "db", "port": 80}],
        "sites": {
            "dc1": {"platform": "libvirt", **dc1_site,
                    "networks": {"lan": {"subnet": f"{src}.0/24", "gateway": f"{src}.1"}}},
            "dr": {"platform": "libvirt", **dr_site,
                   "networks": {"dr-lan": {"subnet": f"{dr}.0/24", "gateway": f"{dr}.1"}}}},
        "moves": [{"from": "dc1", "to": "dr", "networks": {"lan": "dr-lan"},
                   "readdress": [{"from": f"{src}.0/24", "to": f"{dr}.0/24"}]}]}, sort_keys=False))
    return path


@contextlib.contextmanager
def servers(base: Path, *, zone: str, src: str, keys: tuple[str, ...]) -> Iterator[dict]:
    """BIND 9 serving ``zone``, HAProxy with backend ``web`` at the dc1 member (``src``.13:80), the locator
    service where each key of ``keys`` (``<site>-1``) may register the EIDs under ``src``; all stopped after."""
    from vmferry.plans.model import SiteDns, Tsig

    with contextlib.ExitStack() as stack:
        named = Named(base / "named", zone=zone).start()
        stack.callback(named.close)
        haproxy = HAProxy(base / "haproxy", {"web": f"{src}.{HOSTS['web']}:80"}).start()
        stack.callback(haproxy.close)
        work = base / "locator"
        work.mkdir(parents=True, exist_ok=True)
        (work / "sites.toml").write_text("".join(
            f'[[site]]\nname = "{k.rpartition("-")[0]}"\nkey_id = "{k}"\nsecret = "{SECRET}"\n'
            f'prefixes = ["{src}.0/24"]\n' for k in keys))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = spawn_locator([sys.executable, "-m", "vmferry.cli.main", "locator", "serve", "--sites",
                              str(work / "sites.toml"), "--http", f"127.0.0.1:{port}", "--db",
                              str(work / "locator.db")], work, url)

        def stop_locator() -> None:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=15)

        stack.callback(stop_locator)
        yield {"named": named, "haproxy": haproxy, "locator": url, "zone": zone, "src_prefix": src, "key": keys[0],
               "dns": SiteDns("127.0.0.1", named.port, Tsig(named.key_name, named.secret, "hmac-sha256"))}


def set_surroundings(world: dict, prefix: str) -> None:
    """DNS, HAProxy and the locator as they are while the application runs at ``prefix`` (its addresses)."""
    zone, eids = world["zone"], world["src_prefix"]
    for name, comp in (("www", "web"), ("app", "app"), ("db", "db")):
        ensure_rrset(world["dns"], zone, f"{name}.{zone}", "A", [f"{prefix}.{HOSTS[comp]}"], 60)
    RuntimeApi(f"unix:{world['haproxy'].socket}").ensure_member("web", "web", f"{prefix}.{HOSTS['web']}", 80,
                                                                 check=False)
    with LocatorClient(world["locator"], key_id=world["key"], secret=SECRET) as client:
        for h in HOSTS.values():
            client.register(f"{eids}.{h}/32", [Locator(f"{prefix}.{h}")], ttl=30)


def locators(world: dict) -> dict[str, list[str]]:
    """Each component's EID (its dc1 address) -> the locators the locator service resolves it to."""
    eids = world["src_prefix"]
    with LocatorClient(world["locator"]) as client:
        out = {}
        for h in HOSTS.values():
            res = client.resolve(f"{eids}.{h}")
            out[f"{eids}.{h}"] = [loc.address for loc in res.mapping.locators] if res.mapping else []
        return out


def registered_by(world: dict) -> set[str]:
    """The sites (locator keys' names) whose registrations the components' EIDs resolve through now."""
    eids = world["src_prefix"]
    with LocatorClient(world["locator"]) as client:
        return {m.site for h in HOSTS.values() if (m := client.resolve(f"{eids}.{h}").mapping) is not None}


def http(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:   # noqa: S310 - test, our own guest
        return resp.read().decode()


def start_worker(env: dict, log: Path, address: str, *sites: str):
    """A ``vmferry worker`` serving ``sites`` and the workflows on Temporal at ``address`` (killed if the
    test process dies); returns once it serves."""
    import subprocess
    import time

    from tests.workflows.conftest import REPO, _dies_with_us, _env

    argv = [sys.executable, "-m", "vmferry", "worker"]
    for site in sites:
        argv += ["--site", site]
    with open(log, "w") as sink:
        proc = subprocess.Popen([*argv, "--workflows", "--temporal", address], stdout=subprocess.DEVNULL,
                                stderr=sink, cwd=REPO, env=_env(env), preexec_fn=_dies_with_us)
    deadline = time.monotonic() + 60
    while "serving" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return proc


def stop_worker(proc) -> None:
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
