"""Issue 13 failover end to end: a three-component application (db <- app <- web, web behind HAProxy, DNS
names, a firewall rule, locator EIDs) of serving test guests running at site dc1 (a private session
libvirtd), protected with ``vmferry protect`` to site dr (the privileged private libvirtd, its production
network on a bridge) whose surroundings are real servers on 127.0.0.1: BIND 9 (RFC 2136 + TSIG),
HAProxy (runtime API), the locator service, an nftables ruleset checked with ``nft -c``.

* planned (``vmferry recover --failover --planned``, in process): the source guests shut down through
  their agent, the final point, the app at dr from it in boot order; ``dig`` answers the dr addresses,
  HAProxy's pool holds the dr member (and serves through it), the locator resolves the new locators, the
  ruleset passes ``nft -c``, and what the db guest wrote just before the failover is served at dr;
* disaster through the Temporal workflow with the source libvirtd stopped: the ``vmferry worker`` is
  killed with ``kill -9`` in the middle of the boot groups and started again; the run finishes, no VM is
  started twice (libvirt domain ids unchanged, one start each), DNS/HAProxy/locator end at dr, and the
  report gives the data-loss window since the newest point.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import run_vmferry
from tests.guest import libvirtd as _libvirtd
from tests.plans.test_apply import dig
from tests.recovery import appguest, appworld
from tests.recovery.appworld import HOSTS, http, locators, set_surroundings
from tests.replication import sourceguest as sg
from vmferry.recovery import failover_record
from vmferry.tools import libvirt as lv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.xdist_group("hostnet")]
REPO = Path(__file__).resolve().parents[2]
ZONE = "shop.fo.test"
SRC, DR = "10.91.0", "10.92.0"
PROD = appworld.bridge_network("fo-dr-lan", "vmffo0", DR)
TIMEOUT = 240


def manifest(path: Path, src, net, srv: dict, ruleset: Path) -> Path:
    return appworld.manifest(
        path, app="shop", zone=ZONE, domains="fo-", src=SRC, dr=DR,
        dc1_site={"libvirt": {"uri": src.uri, "storage": str(src.workdir / "dc1"), "networks": {"lan": "fo-dc1-lan"}}},
        dr_site={"libvirt": {"uri": net.uri, "storage": str(net.workdir / "fo-dr"), "networks": {"lan": "fo-dr-lan"}},
                 **appworld.site_surroundings(srv, "dr-1", ruleset, "vmferry_shop")})


@contextmanager
def app_world(netlibvirtd, base: Path):
    """The application running at dc1 (a private session libvirtd started here, three booted guests),
    dr on ``netlibvirtd`` (a privileged private libvirtd: its production network), BIND, HAProxy and the locator
    on 127.0.0.1 set as for dc1, and the application protected dc1 -> dr; all stopped and removed after.
    Also used by bench/recover.py (which sets this module's ``SRC``, ``DR`` and ``PROD`` to subnets of its own)."""
    image = appguest.app_image()
    src, src_proc = _libvirtd.start()
    consoles = []
    state = base / "state"
    try:
        for d in (src.workdir / "dc1", netlibvirtd.workdir / "fo-dr"):
            d.mkdir(exist_ok=True)
        src.own(src.workdir / "dc1")
        netlibvirtd.own(netlibvirtd.workdir / "fo-dr")
        with lv.connect(netlibvirtd.uri) as conn:
            if "fo-dr-lan" in conn.networks():         # left by an earlier set-up of this module
                conn.remove_network("fo-dr-lan")
            bridge = etree.fromstring(PROD).find("bridge").get("name")   # PROD's own (bench/recover.py sets its own)
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)
            conn.define_network(PROD)
        t_boot = time.monotonic()
        with lv.connect(src.uri) as conn:
            for comp, h in HOSTS.items():
                disk = src.workdir / "dc1" / f"fo-{comp}.qcow2"
                subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)
                os.chmod(disk, 0o644)
                src.own(disk)
                conn.define(appworld.source_xml(f"fo-{comp}", disk, src.workdir,
                                                appworld.user_nic(f"52:54:00:91:00:{h:02x}")))
                conn.start(f"fo-{comp}")
        consoles = [sg.Console(src.workdir / f"fo-{c}.sock") for c in HOSTS]
        with appworld.servers(base, zone=ZONE, src=SRC, keys=("dr-1",)) as srv:
            ruleset = base / "dr.nft"
            path = manifest(base / "app.yaml", src, netlibvirtd, srv, ruleset)
            world = {**srv, "src": src, "src_proc": src_proc, "net": netlibvirtd, "ruleset": ruleset,
                     "manifest": path, "state": state, "env": {"VMFERRY_STATE": str(state)}, "db": consoles[0],
                     "base": base}
            set_surroundings(world, SRC)
            world["boot_seconds"] = time.monotonic() - t_boot
            t0 = time.monotonic()
            res = run_vmferry("protect", path, "--from", "dc1", "--to", "dr", "--domain-type", "qemu", "--json",
                              env=world["env"], timeout=900)
            if res.returncode != 0:
                raise RuntimeError(f"vmferry protect failed: {res.stderr}")
            world["protect_seconds"] = time.monotonic() - t0
            yield world
    finally:
        for c in consoles:
            c.close()
        with lv.connect(netlibvirtd.uri) as conn:
            for name in ("shop-db", "shop-app", "shop-web"):
                if name in conn.names():
                    conn.undefine(name)
            conn.remove_network("fo-dr-lan")
        if src_proc.poll() is None:
            _libvirtd.stop(src_proc, src.workdir.parent)


@pytest.fixture(scope="module")
def world(netlibvirtd, tmp_path_factory):
    with app_world(netlibvirtd, tmp_path_factory.mktemp("fo13")) as world:
        yield world


def test_planned_failover_moves_the_app_and_its_surroundings(world):
    print(f"setup: sources booted in {world['boot_seconds']:.0f} s, protect {world['protect_seconds']:.0f} s")
    marker = f"fo13-{uuid.uuid4().hex[:12]}"
    assert world["db"].run(f"echo {marker} > {appguest.DATA} && busybox sync") == 0   # just before the failover
    res = run_vmferry("recover", "shop", "--to", "dr", "--failover", "--planned", "--domain-type", "qemu",
                      "--timeout", str(TIMEOUT), "--shutdown-timeout", "90", "--json", env=world["env"], timeout=1200)
    doc = json.loads(res.stdout)
    assert res.returncode == 0, json.dumps(doc, indent=1)[:4000] + res.stderr
    print(f"planned failover: RTO {doc['rto_seconds']:.0f} s")
    assert doc["ok"] and doc["kind"] == "failover-planned" and doc["data_loss_seconds"] == 0
    assert doc["source_stopped"] == {"fo-db": "clean", "fo-app": "clean", "fo-web": "clean"}
    assert [(g["group"], g["components"]) for g in doc["groups"]] == [(1, ["db"]), (2, ["app"]), (3, ["web"])]
    assert {v["vm"]: v["address"] for v in doc["vms"]} == {f"shop-{c}": f"{DR}.{h}" for c, h in HOSTS.items()}
    assert all(v["proved"] for v in doc["vms"]) and doc["rto_seconds"] > 0
    kinds = sorted(s["kind"] for s in doc["surroundings"])
    assert kinds == ["dns"] * 3 + ["firewall"] + ["lb"] + ["locator"] * 3
    assert all(s["verified"] for s in doc["surroundings"])
    record = failover_record.load(world["state"], "shop")
    assert record["point_id"] == doc["point"] and record["steps"]["final-sync"]["point_id"] == doc["point"]
    assert {name: v["starts"] for name, v in record["vms"].items()} == {"shop-db": 1, "shop-app": 1, "shop-web": 1}

    # the surroundings, read back from the real servers
    named = world["named"]
    assert dig(named, f"www.{ZONE}") == [f"{DR}.13"]
    assert dig(named, f"app.{ZONE}") == [f"{DR}.12"] and dig(named, f"db.{ZONE}") == [f"{DR}.11"]
    assert world["haproxy"].state() == {"web": f"{DR}.13:80"}
    assert locators(world) == {f"{SRC}.{h}": [f"{DR}.{h}"] for h in HOSTS.values()}
    text = world["ruleset"].read_text()
    assert f"ip saddr {DR}.12 ip daddr {DR}.11 tcp dport 80 accept" in text and SRC not in text
    subprocess.run(["nft", "-c", "-f", str(world["ruleset"])], check=True, capture_output=True, timeout=30)

    # the data written just before the failover is there, and web answers through HAProxy
    deadline = time.monotonic() + 30
    while True:
        try:
            if "vmferry test service shop-web" in http(f"http://127.0.0.1:{world['haproxy'].port}/"):
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "HAProxy never served from the dr member"
        time.sleep(1)
    with lv.connect(world["src"].uri) as conn:
        assert not any(conn.info(f"fo-{c}").active for c in HOSTS)          # the source stays down
    with lv.connect(world["net"].uri) as conn:
        assert all(conn.info(f"shop-{c}").active for c in HOSTS)

    again = run_vmferry("recover", "shop", "--to", "dr", "--failover", "--planned", "--json", env=world["env"])
    assert again.returncode == 2 and "already failed over" in again.stderr

    # the data written just before the failover is in the final point and served at dr (zero data loss)
    served = http(f"http://{DR}.11/data.txt").strip()
    assert served == marker, (f"data written before the planned failover is not at dr: served {served!r}, marker "
                              f"found in {where_is(world, marker, doc['point'])}")


def where_is(world, marker: str, point: str) -> dict:
    """Which images hold ``marker`` (a failure's diagnosis): the source disk, each point's chain of shop-db."""
    out = {}
    images = {"source": world["src"].workdir / "dc1" / "fo-db.qcow2"}
    for layer in sorted((world["net"].workdir / "fo-dr" / "shop" / "points").glob("*/shop-db.vda.qcow2")):
        images[layer.parent.name + (" (failover)" if layer.parent.name == point else "")] = layer
    for name, image in images.items():
        raw = world["base"] / "probe.raw"
        subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(image), str(raw)], check=True, timeout=120)
        out[name] = marker.encode() in raw.read_bytes()
        raw.unlink()
    return out


def _reset_to_source(world) -> None:
    """Undo the planned failover so the next one starts from the application at dc1."""
    with lv.connect(world["net"].uri) as conn:
        for c in HOSTS:
            if f"shop-{c}" in conn.names():
                conn.undefine(f"shop-{c}")
    record = failover_record.load(world["state"], "shop")
    if record:
        subprocess.run(["rm", "-rf", record["run_dir"]], check=True)
    failover_record.remove(world["state"], "shop")
    world["ruleset"].unlink(missing_ok=True)
    set_surroundings(world, SRC)


def _schedule(address: str, action: str) -> None:
    import asyncio

    from vmferry.workflows.endpoint import connect
    from vmferry.workflows.protection import ScheduleRequest
    from vmferry.workflows.schedules import ensure_schedule, remove_schedule

    async def go() -> None:
        client = await connect(address)
        if action == "ensure":
            await ensure_schedule(client, ScheduleRequest("shop", "dc1", "dr", 14 * 86400))
        else:
            await remove_schedule(client, "shop")

    asyncio.run(go())


def test_disaster_failover_survives_kill9_of_the_worker_with_the_source_gone(world):
    from vmferry.workflows.runs import schedule_of
    from vmferry.workflows.server import DevServer

    _reset_to_source(world)
    assert dig(world["named"], f"www.{ZONE}") == [f"{SRC}.13"]
    _libvirtd.stop(world["src_proc"], world["src"].workdir.parent)          # the source site is gone
    group = json.loads(run_vmferry("status", "shop", "--json", env=world["env"]).stdout)["applications"][0]
    newest = group["newest_point"]
    server = DevServer(world["base"] / "temporal").start()
    workers = []
    cli = None
    try:
        # the application's sync schedule, as protect made it (its interval of a week: it does not fire here)
        _schedule(server.address, "ensure")
        workers.append(appworld.start_worker(world["env"], world["base"] / "worker-1.log", server.address, "dr"))
        cli = subprocess.Popen([sys.executable, "-m", "vmferry", "recover", "shop", "--to", "dr", "--failover",
                                "--disaster", "--domain-type", "qemu", "--timeout", str(TIMEOUT), "--json",
                                "--temporal", server.address], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}",
                                                         **world["env"]})
        # kill -9 once the first boot group runs (its VM started, the group not yet proved)
        deadline = time.monotonic() + 300
        while True:
            record = failover_record.load(world["state"], "shop")
            vms = (record or {}).get("vms", {})
            if vms.get("shop-db", {}).get("state") == "started":
                break
            assert time.monotonic() < deadline and cli.poll() is None, (cli.poll(), record)
            time.sleep(0.1)
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(timeout=10)
        killed_in = failover_record.load(world["state"], "shop")
        with lv.connect(world["net"].uri) as conn:
            ids_before = {name: conn.domain(name).ID() for name, v in killed_in["vms"].items()
                          if v["state"] == "started"}
        assert "launch-3" not in killed_in["steps"]                          # it really was in the middle
        workers.append(appworld.start_worker(world["env"], world["base"] / "worker-2.log", server.address, "dr"))
        out, err = cli.communicate(timeout=900)
        schedule = schedule_of(server.address, "shop")
        _schedule(server.address, "remove")
    finally:
        if cli is not None and cli.poll() is None:
            cli.kill()
        for w in workers:
            appworld.stop_worker(w)
        server.stop()
    doc = json.loads(out)
    assert cli.returncode == 0, json.dumps(doc, indent=1)[:4000] + err
    assert doc["ok"] and doc["kind"] == "failover-disaster" and doc["point"] == newest
    # the failover paused the schedule first, naming itself; a sync from the old source is refused
    assert schedule["paused"] and "failover of shop to dr (disaster)" in schedule["note"], schedule
    res = run_vmferry("sync", "shop", env=world["env"])
    assert res.returncode == 2 and "runs at site 'dr'" in res.stderr and "--reprotect" in res.stderr
    assert doc["data_loss_seconds"] > 0 and doc["source_stopped"] == {}
    record = failover_record.load(world["state"], "shop")
    assert {name: v["starts"] for name, v in record["vms"].items()} == {"shop-db": 1, "shop-app": 1, "shop-web": 1}
    with lv.connect(world["net"].uri) as conn:
        for name, dom_id in ids_before.items():
            assert conn.domain(name).ID() == dom_id                         # the same QEMU: not started again
        assert all(conn.info(f"shop-{c}").active for c in HOSTS)
    assert dig(world["named"], f"www.{ZONE}") == [f"{DR}.13"] and dig(world["named"], f"db.{ZONE}") == [f"{DR}.11"]
    assert world["haproxy"].state() == {"web": f"{DR}.13:80"}
    assert locators(world) == {f"{SRC}.{h}": [f"{DR}.{h}"] for h in HOSTS.values()}
    subprocess.run(["nft", "-c", "-f", str(world["ruleset"])], check=True, capture_output=True, timeout=30)
