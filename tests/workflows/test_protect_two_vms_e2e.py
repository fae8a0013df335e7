"""Issue 12 through the durable path, end to end: a real private libvirtd (QEMU under TCG) runs a two-VM
application (two command-loop test guests, each a root and a data disk and a NIC) at site dc1; one local
Temporal server on 127.0.0.1 and two real ``vmferry worker`` processes, one for dc1 (with the workflows)
and one for dr. ``vmferry protect --temporal`` protects it to dr (other storage directory, other libvirt
network); its schedule takes points by itself; paused, the schedule lapses. ``vmferry sync --temporal``
before and after the guests write to their disks: the data is in the second point and not the first,
both points boot, every disk copy ran on dc1's worker and every seal on dr's (from the histories), and
``vmferry status --json`` reports each VM's newest point, its age and the RPO verdict — VMF-DR-001 once
the paused schedule let the newest point grow older than the RPO."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_vmferry
from tests.guest import libvirtd as _libvirtd
from tests.replication import sourceguest as sg
from tests.replication.test_protect_e2e import boot, point_bytes
from tests.workflows.conftest import activity_runs, history_events, launch_vmferry_worker, stop_process
from vmferry.replication.store import Store
from vmferry.tools.proc import run
from vmferry.workflows.endpoint import connect
from vmferry.workflows.runs import sync_workflow_id
from vmferry.workflows.schedules import schedule_id
from vmferry.workflows.server import DevServer, temporal_executable

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("temporal-two-vms")]
MIB = 1 << 20
BS = 64 * 1024
DATA_SIZE = 8 * MIB
RPO = 30                     # seconds: the schedule starts a sync every 15 s
SOURCES = {"web": "shop-web-src", "db": "shop-db-src"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    stack = contextlib.ExitStack()
    daemon, proc = _libvirtd.start()
    stack.callback(_libvirtd.stop, proc, daemon.workdir.parent)
    try:
        work = daemon.workdir
        for site in ("dc1", "dr"):
            (work / site).mkdir()
            os.chown(work / site, daemon.uid, daemon.gid)
        guests = {comp: stack.enter_context(sg.running_guest(daemon, name, DATA_SIZE, work / "dc1", nic=True))
                  for comp, name in SOURCES.items()}
        lib = {"uri": daemon.uri}
        manifest = tmp_path_factory.mktemp("app") / "app.yaml"
        manifest.write_text(yaml.safe_dump({
            "name": "shop",
            "components": {comp: {"source": {"domain": name}, "nics": [{"network": "VM Network"}]}
                           for comp, name in SOURCES.items()},
            "sites": {"dc1": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dc1"),
                                                                 "networks": {"VM Network": "dc1-lan"}}},
                      "dr": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dr"),
                                                                "networks": {"VM Network": "dr-lan"}}}}}))
        state = tmp_path_factory.mktemp("state")
        server = DevServer(tmp_path_factory.mktemp("temporal")).start()
        stack.callback(server.stop)
        env = {"VMFERRY_STATE": str(state)}
        logs = tmp_path_factory.mktemp("workers")
        workers = {}
        for site, extra in (("dc1", ("--workflows",)), ("dr", ())):
            workers[site] = launch_vmferry_worker(logs / f"{site}.log", "--site", site, *extra, "--temporal",
                                                  server.address, env=env)
            stack.callback(stop_process, workers[site])
        yield {"daemon": daemon, "work": work, "guests": guests, "manifest": manifest, "env": env,
               "store": Store(state), "address": server.address, "workers": workers}
    finally:
        stack.close()


def vmferry(world, *args, timeout=600):
    res = run_vmferry(*args, "--temporal", world["address"], env=world["env"], timeout=timeout)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def status(world) -> tuple[int, dict]:
    res = run_vmferry("status", "shop", "--json", env=world["env"])
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def histories(world, workflow_id: str) -> list:
    async def fetch():
        return await history_events(await connect(world["address"]), workflow_id)

    return asyncio.run(fetch())


def scheduled_runs_end(world) -> None:
    """Wait until no sync the schedule started is running (it is paused: none starts any more)."""

    async def wait():
        handle = (await connect(world["address"])).get_schedule_handle(schedule_id("shop"))
        deadline = time.monotonic() + 120
        while (desc := await handle.describe()).info.running_actions:
            assert time.monotonic() < deadline, "a scheduled sync never ended"
            await asyncio.sleep(1)
        assert desc.schedule.state.paused

    asyncio.run(wait())


def ran_on(world, runs: dict, kind: str) -> set[str]:
    """The sites whose worker ran the activities ``kind`` (worker identity = pid@host)."""
    site_of = {f"{proc.pid}@": site for site, proc in world["workers"].items()}
    return {next(site for prefix, site in site_of.items() if r["started"].identity.startswith(prefix))
            for r in runs.values() if r["type"] == kind}


def test_two_running_vms_protected_synced_booted_and_rpo_watched_through_temporal(world):
    store, guests = world["store"], world["guests"]
    vmferry(world, "protect", world["manifest"], "--from", "dc1", "--to", "dr", "--rpo", f"{RPO}s",
                  "--keep", "10", "--domain-type", "qemu", "--json", timeout=900)
    group = store.load("shop")
    assert sorted((vm.vm, vm.source_kind) for vm in group.vms) == [("shop-db", "domain"), ("shop-web", "domain")]
    assert group.replica_dir == str(world["work"] / "dr" / "shop")
    for vm in group.vms:
        assert [d.disk for d in vm.disks] == ["vda", "vdb"]
        xml = (Path(group.replica_dir) / vm.domain_xml).read_text()
        assert "dr-lan" in xml and "dc1-lan" not in xml              # the target site's network
    protect_runs = activity_runs(histories(world, "vmferry-protect-shop"))
    assert ran_on(world, protect_runs, "protect") == {"dr"}        # the first copy: on the replica's site

    # the schedule (every RPO/2) takes points by itself
    deadline = time.monotonic() + 90
    while len(store.load("shop").points) < 2:
        assert time.monotonic() < deadline, "the schedule took no point"
        time.sleep(1)
    # ... then lapses: paused, as an operator would
    run([temporal_executable(), "schedule", "toggle", "--schedule-id", schedule_id("shop"), "--pause",
         "--reason", "test: let the RPO lapse", "--address", world["address"]])
    scheduled_runs_end(world)

    # a point, the guests write, the next point
    p1 = json.loads(vmferry(world, "sync", "shop", "--json").stdout)
    before = {comp: g.console.md5sum("/dev/vdb") for comp, g in guests.items()}
    assert guests["web"].console.run(sg.write_blocks_command("/dev/vdb", [5, 77])) == 0
    assert guests["db"].console.run(sg.write_blocks_command("/dev/vdb", [120])) == 0
    after = {comp: g.console.md5sum("/dev/vdb") for comp, g in guests.items()}
    assert all(after[c] != before[c] for c in guests)
    synced = vmferry(world, "sync", "shop", "--json")
    p2 = json.loads(synced.stdout)
    assert p2["parent"] == p1["point_id"]
    events = [json.loads(line) for line in synced.stderr.splitlines() if line.startswith("{")]
    assert {e["step"] for e in events if "step" in e} >= {f"sync shop-{c}.vdb" for c in guests}

    # the data of the second sync is in the second point and not in the first, for both VMs
    for comp in guests:
        key = f"shop-{comp}.vdb"
        old, new = (point_bytes(store, p["point_id"], key) for p in (p1, p2))
        pdir = Path(store.load("shop").points_dir) / p2["point_id"]
        why = (f"{comp}: blocks differing p1/p2 {[i // BS for i in range(0, len(old), BS) if old[i:i + BS] != new[i:i + BS]]}"
               f"; sync {(pdir / f'{key}.sync.json').read_text()}; points {[p.point_id for p in store.load('shop').points]}")
        assert hashlib.md5(old).hexdigest() == before[comp], why
        assert hashlib.md5(new).hexdigest() == after[comp], why
    disks = {d["ref"]["vm"] + "." + d["ref"]["disk"]: d for d in p2["disks"]}
    assert disks["shop-web.vdb"]["bytes_written"] == 2 * BS and disks["shop-db.vdb"]["bytes_written"] == BS

    # every disk copy on the source site's worker, begin there too, the seal on the replica site's worker
    runs = activity_runs(histories(world, sync_workflow_id("shop")))
    assert sorted(r["type"] for r in runs.values() if r["type"] == "sync_disk") == ["sync_disk"] * 4
    assert ran_on(world, runs, "sync_disk") == {"dc1"} and ran_on(world, runs, "begin_point") == {"dc1"}
    assert ran_on(world, runs, "seal_point") == {"dr"}
    assert {r["queue"] for r in runs.values() if r["type"] == "sync_disk"} == {"vmferry.site.dc1.copy"}

    code, doc = status(world)
    app = doc["applications"][0]
    assert code == 0 and app["rpo"] == "ok" and doc["findings"] == []
    for vm in app["vms"]:
        assert vm["newest_point"] == p2["point_id"] and vm["rpo"] == "ok" and 0 <= vm["age_seconds"] < RPO

    # both points boot: web as of the second, db as of the first
    for vm, pid in (("shop-web", p2["point_id"]), ("shop-db", p1["point_id"])):
        result = boot(world, vm, pid, [sg.READY])
        assert result.found == sg.READY, result.text[-2000:]

    # the schedule is paused: the newest point ages past the RPO, status says so (VMF-DR-001, exit 1)
    deadline = time.monotonic() + 2 * RPO
    while (doc := status(world)[1])["applications"][0]["rpo"] == "ok":
        assert time.monotonic() < deadline, "the RPO never lapsed"
        time.sleep(2)
    code, doc = status(world)
    app = doc["applications"][0]
    assert code == 1 and app["newest_point"] == p2["point_id"] and app["age_seconds"] > RPO
    assert [f["rule"] for f in doc["findings"]] == ["VMF-DR-001"]
    assert all(vm["rpo"] == "breached" and vm["newest_point"] == p2["point_id"] for vm in app["vms"])
    assert len(store.load("shop").points) == len(set(p.point_id for p in store.load("shop").points))

    vmferry(world, "unprotect", "shop", "--json")
    assert not store.exists("shop") and not Path(group.replica_dir).exists()
