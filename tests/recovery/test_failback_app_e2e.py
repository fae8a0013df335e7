"""Issue 13 failback end to end, surroundings included: the three-component application of
:mod:`tests.recovery.appworld` (db <- app <- web behind HAProxy, DNS names, a firewall rule, locator
EIDs) runs at dc1, is protected to dr, fails over to dr (planned), is reprotected (dr -> dc1: only the
blocks written at dr go back; the sync schedule, paused, is turned round and resumed) and fails back as a
durable run (``vmferry recover APP --failback --temporal``: the Failover workflow on a worker serving both
sites, which pauses the schedule again first). Both sites live on the
shared privileged libvirtd, each with a production network on a host bridge (the proofs reach the guests
at either site); both sites name the same BIND 9, HAProxy and locator service on 127.0.0.1 (each with its
own locator key) and a ruleset file of their own.

After the failback: ``dig`` answers the dc1 addresses again, HAProxy's pool (``show servers state``) lists
the dc1 member and serves through it, the locator resolves the dc1 locators, the dc1 ruleset passes
``nft -c``, what the db guest wrote at dr before the failback is served at dc1, and no dr copy runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from tests.conftest import run_vmferry
from tests.plans.test_apply import dig
from tests.recovery import appguest, appworld
from tests.recovery.appworld import HOSTS, http, locators
from vmferry.tools import libvirt as lv
from vmferry.workflows.runs import schedule_of
from vmferry.workflows.server import DevServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500), pytest.mark.xdist_group("hostnet")]
APP, ZONE = "fbshop", "shop.fb.test"
SRC, DR = "10.93.0", "10.94.0"
NETWORKS = {"fb-dc1-lan": ("vmffb1", SRC), "fb-dr-lan": ("vmffb2", DR)}
SOURCES = [f"fb-{c}" for c in HOSTS]                # the source domains at dc1 (and the failback's names)
COPIES = [f"{APP}-{c}" for c in HOSTS]             # the failover's copies at dr
TIMEOUT = 240
MIB = 1 << 20


def _remove_all(uri: str) -> None:
    with lv.connect(uri) as conn:
        for name in SOURCES + COPIES:
            if name in conn.names():
                conn.undefine(name)
        for net, (bridge, _prefix) in NETWORKS.items():
            if net in conn.networks():
                conn.remove_network(net)
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)


@pytest.fixture(scope="module")
def world(netlibvirtd, tmp_path_factory):
    base = tmp_path_factory.mktemp("fb13")
    image = appguest.app_image()
    net = netlibvirtd
    state = base / "state"
    storage = {site: net.workdir / f"fb-{site}" for site in ("dc1", "dr")}
    with contextlib.ExitStack() as stack:
        _remove_all(net.uri)                         # left by an earlier set-up of this module
        stack.callback(lambda: [shutil.rmtree(d, ignore_errors=True) for d in storage.values()])
        stack.callback(_remove_all, net.uri)
        for d in storage.values():
            d.mkdir()
            net.own(d)
        with lv.connect(net.uri) as conn:
            for name, (bridge, prefix) in NETWORKS.items():
                conn.define_network(appworld.bridge_network(name, bridge, prefix))
        t_boot = time.monotonic()
        with lv.connect(net.uri) as conn:
            for h, name in zip(HOSTS.values(), SOURCES, strict=True):
                disk = storage["dc1"] / f"{name}.qcow2"
                subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)
                os.chmod(disk, 0o644)
                net.own(disk)
                conn.define(appworld.source_xml(name, disk, net.workdir,
                                                appworld.network_nic("fb-dc1-lan", f"52:54:00:93:00:{h:02x}")))
                conn.start(name)
        srv = stack.enter_context(appworld.servers(base, zone=ZONE, src=SRC, keys=("dc1-1", "dr-1")))
        rulesets = {site: base / f"{site}.nft" for site in ("dc1", "dr")}
        path = appworld.manifest(
            base / "app.yaml", app=APP, zone=ZONE, domains="fb-", src=SRC, dr=DR,
            dc1_site={"libvirt": {"uri": net.uri, "storage": str(storage["dc1"]), "networks": {"lan": "fb-dc1-lan"}},
                      **appworld.site_surroundings(srv, "dc1-1", rulesets["dc1"], "vmferry_fbshop")},
            dr_site={"libvirt": {"uri": net.uri, "storage": str(storage["dr"]), "networks": {"lan": "fb-dr-lan"}},
                     **appworld.site_surroundings(srv, "dr-1", rulesets["dr"], "vmferry_fbshop")})
        temporal = DevServer(base / "temporal").start()      # the durable runs' service (reprotect, failback)
        stack.callback(temporal.stop)
        world = {**srv, "uri": net.uri, "rulesets": rulesets, "state": state, "env": {"VMFERRY_STATE": str(state)},
                 "figures": {}, "temporal": temporal.address, "base": base}
        appworld.set_surroundings(world, SRC)
        assert appworld.registered_by(world) == {"dc1"}
        world["figures"]["boot"] = time.monotonic() - t_boot
        t0 = time.monotonic()
        res = run_vmferry("protect", path, "--from", "dc1", "--to", "dr", "--domain-type", "qemu", "--rpo", "2d", "--json",
                          env=world["env"], timeout=900)
        assert res.returncode == 0, res.stderr
        world["figures"]["protect"] = time.monotonic() - t0
        yield world
        print("figures (s, bytes):", json.dumps({k: round(v, 1) for k, v in world["figures"].items()}))


def _recover(world, *args: str) -> dict:
    t0 = time.monotonic()
    res = run_vmferry("recover", APP, *args, "--json", env=world["env"], timeout=1200)
    doc = json.loads(res.stdout) if res.stdout.strip() else {}
    assert res.returncode == 0, json.dumps(doc, indent=1)[:4000] + res.stderr
    world["figures"][args[0].lstrip("-") if args[0] != "--to" else "failover"] = time.monotonic() - t0
    return doc


def _paused_schedule(address: str) -> None:
    from vmferry.workflows.endpoint import connect
    from vmferry.workflows.protection import ScheduleRequest
    from vmferry.workflows.schedules import ensure_schedule, pause_schedule

    async def go() -> None:
        client = await connect(address)
        await ensure_schedule(client, ScheduleRequest(APP, "dc1", "dr", 14 * 86400))
        await pause_schedule(client, APP, f"failover of {APP} to dr (planned)")

    asyncio.run(go())


def test_failover_to_dr_then_reprotect_moves_back_only_what_dr_wrote(world):
    doc = _recover(world, "--to", "dr", "--failover", "--planned", "--domain-type", "qemu", "--timeout", str(TIMEOUT),
                   "--shutdown-timeout", "90")
    assert doc["ok"] and {v["vm"]: v["address"] for v in doc["vms"]} == {f"{APP}-{c}": f"{DR}.{h}"
                                                                          for c, h in HOSTS.items()}
    assert dig(world["named"], f"www.{ZONE}") == [f"{DR}.13"]                  # the surroundings went to dr
    assert world["haproxy"].state() == {"web": f"{DR}.13:80"}
    assert locators(world) == {f"{SRC}.{h}": [f"{DR}.{h}"] for h in HOSTS.values()}
    assert appworld.registered_by(world) == {"dr"}                              # with dr's locator key

    res = run_vmferry("sync", APP, env=world["env"])                          # dc1 is not the source any more
    assert res.returncode == 2 and "runs at site 'dr'" in res.stderr and "--reprotect" in res.stderr

    appguest.write_data(world["uri"], f"{APP}-db", f"at-dr-{uuid.uuid4().hex[:8]}")   # moved back by the reprotect
    # the application's sync schedule, paused as a durable failover leaves it: the reprotect points it
    # from dr to dc1 and resumes it
    _paused_schedule(world["temporal"])
    rp = _recover(world, "--reprotect", "--temporal", world["temporal"])
    schedule = schedule_of(world["temporal"], APP)
    assert rp["schedule"] == schedule and not schedule["paused"]
    assert (schedule["source_site"], schedule["target_site"], schedule["every_seconds"]) == ("dr", "dc1", 86400)
    assert (rp["source_site"], rp["target_site"]) == ("dr", "dc1") and sorted(rp["undefined"]) == sorted(SOURCES)
    disks = {d["key"]: d for d in rp["disks"]}
    assert sorted(disks) == sorted(f"{name}.vda" for name in SOURCES)        # keyed by the dc1 domains
    for key, d in disks.items():      # the old dc1 disks adopted; only the blocks the copies wrote at dr went back
        assert (d["method"], d["adopted"]) == ("bitmap", "moved"), (key, d)
        assert d["bytes_written"] <= MIB, (key, d)                           # of ~23 MiB allocated per disk
    assert disks["fb-db.vda"]["bytes_written"] > 0                             # at least the data written at dr
    world["figures"]["reprotect_bytes"] = rp["bytes_written"]
    with lv.connect(world["uri"]) as conn:
        assert all(conn.info(name).active for name in COPIES)                  # the application still runs at dr


def test_failback_returns_the_application_and_its_surroundings_to_dc1(world):
    marker = f"before-failback-{uuid.uuid4().hex[:12]}"
    appguest.write_data(world["uri"], f"{APP}-db", marker)                      # written at dr, just before
    # a durable failback: the Failover workflow on a worker serving both sites
    worker = appworld.start_worker(world["env"], world["base"] / "worker.log", world["temporal"], "dr", "dc1")
    try:
        doc = _recover(world, "--failback", "--domain-type", "qemu", "--timeout", str(TIMEOUT), "--shutdown-timeout",
                       "90", "--temporal", world["temporal"])
    finally:
        appworld.stop_worker(worker)
    print(f"failback: RTO {doc['rto_seconds']:.0f} s")
    schedule = schedule_of(world["temporal"], APP)           # the failback paused the dr -> dc1 syncs first
    assert schedule["paused"] and f"failover of {APP} to dc1 (planned)" in schedule["note"], schedule
    res = run_vmferry("sync", APP, env=world["env"])
    assert res.returncode == 2 and "runs at site 'dc1'" in res.stderr
    assert doc["ok"] and doc["site"] == "dc1" and doc["kind"] == "failover-planned" and doc["data_loss_seconds"] == 0
    assert doc["source_stopped"] == {name: "clean" for name in COPIES}
    assert [(g["group"], g["components"]) for g in doc["groups"]] == [(1, ["db"]), (2, ["app"]), (3, ["web"])]
    assert {v["domain"]: v["address"] for v in doc["vms"]} == {f"fb-{c}": f"{SRC}.{h}" for c, h in HOSTS.items()}
    assert all(v["proved"] for v in doc["vms"])
    assert sorted(s["kind"] for s in doc["surroundings"]) == ["dns"] * 3 + ["firewall"] + ["lb"] + ["locator"] * 3
    assert all(s["verified"] for s in doc["surroundings"]), doc["surroundings"]

    # the surroundings, read back from the real servers: at dc1's addresses again
    named = world["named"]
    assert dig(named, f"www.{ZONE}") == [f"{SRC}.13"]
    assert dig(named, f"app.{ZONE}") == [f"{SRC}.12"] and dig(named, f"db.{ZONE}") == [f"{SRC}.11"]
    assert world["haproxy"].state() == {"web": f"{SRC}.13:80"}
    assert locators(world) == {f"{SRC}.{h}": [f"{SRC}.{h}"] for h in HOSTS.values()}
    assert appworld.registered_by(world) == {"dc1"}         # registered with dc1's key: dc1's site section applied
    ruleset = world["rulesets"]["dc1"]
    text = ruleset.read_text()
    assert f"ip saddr {SRC}.12 ip daddr {SRC}.11 tcp dport 80 accept" in text and DR not in text
    subprocess.run(["nft", "-c", "-f", str(ruleset)], check=True, capture_output=True, timeout=30)

    # the application serves at dc1, through HAProxy, with the data written at dr; no dr copy runs
    deadline = time.monotonic() + 30
    while True:
        try:
            if "vmferry test service" in http(f"http://127.0.0.1:{world['haproxy'].port}/"):
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "HAProxy never served from the dc1 member"
        time.sleep(1)
    assert http(f"http://{SRC}.11/data.txt").strip() == marker
    with lv.connect(world["uri"]) as conn:
        assert not any(conn.info(name).active for name in COPIES)
        assert all(conn.info(name).active for name in SOURCES)
