"""Reprotect and failback end to end on a private libvirtd (QEMU under TCG): the command-loop test guest
`shop-db-src` (root + 16 MiB data disk, real qemu-ga) runs at dc1, is protected to dr, fails over to dr
(fo13's disaster failover of its newest point: the copy started paused, marked for change tracking), writes a known amount in
the dr guest; `vmferry recover shop --reprotect` moves exactly those blocks back into the old dc1 disks
(found by the dirty bitmap, the old disks checked against the failover point's digests and adopted), and
`status` says dr -> dc1; after another known write, `vmferry recover shop --failback` (fo13's planned
failover of the reversed record) stops the copy, takes a final point of exactly that write and brings
`shop-db-src` back up at dc1 with the dr guest's data; a second reprotect (its change-tracking mark deleted) finds the next write by block hashes and copies a root disk
that no longer holds the failback point whole. An interrupted reprotect leaves the forward protection and
the old disks as they were."""

from __future__ import annotations

import base64
import json
import os
import time

import pytest
import yaml

from tests.conftest import run_vmferry
from tests.guest import libvirtd as _libvirtd
from tests.replication import sourceguest as sg
from vmferry.errors import RecoveryError
from vmferry.recovery import failover_record
from vmferry.recovery import reprotect as rp
from vmferry.recovery.failover_steps import FailoverRequest, failover
from vmferry.replication import imageio, points, tracking
from vmferry.replication.protect import protect, sync_app
from vmferry.replication.status import status
from vmferry.replication.store import Store
from vmferry.tools import libvirt as lv
from vmferry.tools.proc import run

# one worker runs the module: its tests follow one application through failover, reprotect, failback
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500), pytest.mark.xdist_group("reprotect13")]
MIB = 1 << 20
BS = 64 * 1024
SOURCE = "shop-db-src"
DR_BLOCKS = [*range(32, 64), 200]            # 33 blocks = 2 MiB + 64 KiB written in the dr guest
BACK_BLOCKS = list(range(100, 116))          # 1 MiB written between reprotect and failback
DC1_BLOCKS = list(range(140, 148))           # 512 KiB written at dc1 after the failback


def agent_sh(uri: str, domain: str, command: str, timeout: float = 120) -> str:
    """Run ``command`` in the guest through its guest agent (guest-exec); its standard output."""
    with lv.connect(uri) as conn:
        out = json.loads(conn.agent_command(domain, json.dumps(
            {"execute": "guest-exec", "arguments": {"path": "/bin/sh", "arg": ["-c", command],
                                                   "capture-output": True}}), timeout=30))
        pid = out["return"]["pid"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = json.loads(conn.agent_command(domain, json.dumps(
                {"execute": "guest-exec-status", "arguments": {"pid": pid}}), timeout=30))["return"]
            if st.get("exited"):
                assert st.get("exitcode") == 0, st
                return base64.b64decode(st.get("out-data", "")).decode()
            time.sleep(0.3)
    raise TimeoutError(f"{command!r} did not end in {domain}")


def wait_agent(uri: str, domain: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            agent_sh(uri, domain, "true", timeout=20)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def md5(uri: str, domain: str, device: str = "/dev/vdb") -> str:
    return agent_sh(uri, domain, f"busybox md5sum {device}").split()[0]


def point_md5(store: Store, point_id: str, key: str) -> str:
    import hashlib

    group = store.load("shop")
    with imageio.open_image(points.chain_spec(group, group.point(point_id), key)) as image:
        return hashlib.md5(image.pread(image.size, 0)).hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    daemon, proc = _libvirtd.start()
    try:
        work = daemon.workdir
        own = (daemon.uid, daemon.gid)
        for site in ("dc1", "dr"):
            (work / site).mkdir()
            daemon.own(work / site)
        root = sg.copy_root(work / "dc1" / "db-root.qcow2", own)
        data = sg.new_disk(work / "dc1" / "db-data.qcow2", 16 * MIB, own)
        with lv.connect(daemon.uri) as conn:
            conn.define(sg.domain_xml(SOURCE, [(root, "vda"), (data, "vdb")], work / "db.sock"))
            conn.start(SOURCE)
        console = sg.Console(work / "db.sock")
        cfg = tmp_path_factory.mktemp("cfg")
        manifest = cfg / "app.yaml"
        lib = {"uri": daemon.uri}
        manifest.write_text(yaml.safe_dump({
            "name": "shop", "components": {"db": {"source": {"domain": SOURCE}}},
            "sites": {"dc1": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dc1")}},
                      "dr": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dr")}}}}))
        state = tmp_path_factory.mktemp("state")
        store = Store(state)
        protect(str(manifest), "dc1", "dr", domain_type="qemu", store=store)
        assert console.run(sg.write_blocks_command("/dev/vdb", [0, 1, 2])) == 0   # the source's own data
        sync_app("shop", store=store)
        console.close()
        with lv.connect(daemon.uri) as conn:      # the source goes down (idle since the point: nothing lost)
            conn.destroy(SOURCE)
        yield {"daemon": daemon, "uri": daemon.uri, "work": work, "manifest": manifest, "state": state,
               "store": store, "env": {"VMFERRY_STATE": str(state)}}
    finally:
        with lv.connect(daemon.uri) as conn:
            for name in conn.names():
                conn.undefine(name)
        _libvirtd.stop(proc, daemon.workdir.parent)


def test_reprotect_moves_back_only_the_blocks_written_at_dr(world):
    uri, store, env = world["uri"], world["store"], world["env"]
    with pytest.raises(RecoveryError, match="does not run at site 'dr'"):
        rp.reprotect("shop", store=store)                       # nothing failed over yet
    group = store.load("shop")
    rec = failover(world["state"], FailoverRequest("shop", "dr", "disaster", domain_type="qemu"))
    assert rec["ok"], json.dumps(rec)[:3000]
    assert rec["point"] == group.newest.point_id
    with lv.connect(uri) as conn:     # the failover started the copy paused and marked it for a reprotect
        marks = [c.getName() for c in conn.domain("shop-db").listAllCheckpoints(0)]
    assert marks == [tracking.checkpoint_name("shop", group.newest.point_id)]
    wait_agent(uri, "shop-db")
    agent_sh(uri, "shop-db", sg.write_blocks_command("/dev/vdb", DR_BLOCKS))
    world["dr_md5"] = md5(uri, "shop-db")
    res = run_vmferry("recover", "shop", "--failback", env=env)
    assert res.returncode == 2 and "was not reprotected" in res.stderr

    def interrupt(msg: str) -> None:     # the reprotect fails after adopting the first disk
        if msg.startswith("shop-db-src.vdb"):
            raise KeyboardInterrupt(msg)

    with pytest.raises(KeyboardInterrupt):
        rp.reprotect("shop", store=store, say=interrupt)
    back = store.load("shop")
    assert (back.source_site, back.target_site, back.draft) == ("dc1", "dr", None)
    assert (world["work"] / "dc1" / "db-data.qcow2").exists() and (world["work"] / "dc1" / "db-root.qcow2").exists()
    assert not (world["work"] / "dc1" / "shop").exists()

    res = run_vmferry("recover", "shop", "--reprotect", "--json", env=env, timeout=900)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    disks = {d["key"]: d for d in doc["disks"]}
    assert doc["failover_point"] == group.newest.point_id and doc["undefined"] == [SOURCE]
    assert failover_record.load(world["state"], "shop") is None        # the failover is history now
    assert disks["shop-db-src.vdb"]["method"] == "bitmap" and disks["shop-db-src.vdb"]["adopted"] == "moved"
    assert disks["shop-db-src.vdb"]["bytes_written"] == len(DR_BLOCKS) * BS        # exactly what the guest wrote
    assert disks["shop-db-src.vda"]["method"] == "bitmap" and disks["shop-db-src.vda"]["bytes_written"] <= MIB
    world["figures"] = {"reprotect_bytes": doc["bytes_written"], "reprotect_seconds": doc["seconds"]}
    reversed_group = store.load("shop")
    assert (reversed_group.source_site, reversed_group.target_site) == ("dr", "dc1")
    assert reversed_group.replica_dir == str(world["work"] / "dc1" / "shop")
    assert not (world["work"] / "dc1" / "db-data.qcow2").exists()   # the old disk is now the replica's layer
    (point,) = reversed_group.points
    assert points.verify_point(reversed_group, point.point_id) == []
    assert point_md5(store, point.point_id, "shop-db-src.vdb") == world["dr_md5"]
    st = status("shop", store=store)
    (appst,) = st["applications"]
    assert (appst["source_site"], appst["target_site"]) == ("dr", "dc1")
    with lv.connect(uri) as conn:
        assert SOURCE not in conn.names() and conn.info("shop-db").active


def test_failback_returns_the_application_to_dc1_with_no_data_lost(world):
    uri, env = world["uri"], world["env"]
    agent_sh(uri, "shop-db", sg.write_blocks_command("/dev/vdb", BACK_BLOCKS))
    before = md5(uri, "shop-db")
    res = run_vmferry("recover", "shop", "--failback", "--shutdown-timeout", "15", "--domain-type", "qemu", "--json",
                      env=env, timeout=900)
    doc = json.loads(res.stdout) if res.stdout.strip() else {}
    assert res.returncode == 0, res.stderr + json.dumps(doc)[:3000]
    assert doc["ok"] and doc["kind"] == "failover-planned" and doc["site"] == "dc1"
    assert doc["data_loss_seconds"] == 0 and set(doc["source_stopped"]) == {"shop-db"} and doc["surroundings"] == []
    final = world["store"].load("shop").newest
    assert doc["point"] == final.point_id
    assert final.disk("shop-db-src.vdb").bytes_written == len(BACK_BLOCKS) * BS   # the final point: that write
    (vm,) = doc["vms"]
    assert vm["domain"] == SOURCE and vm["proved"]
    with lv.connect(uri) as conn:
        assert conn.info(SOURCE).active and not conn.info("shop-db").active
    wait_agent(uri, SOURCE)
    assert md5(uri, SOURCE) == before                                     # the dr guest's data is at dc1
    world["figures"]["failback_final_bytes"] = final.bytes_written
    res = run_vmferry("recover", "shop", "--failback", env=env)
    assert res.returncode == 2 and "already failed over" in res.stderr


def test_reprotect_again_without_a_bitmap_finds_the_changes_by_hashing(world):
    uri, store = world["uri"], world["store"]
    agent_sh(uri, SOURCE, sg.write_blocks_command("/dev/vdb", DC1_BLOCKS))
    after = md5(uri, SOURCE)
    with lv.connect(uri) as conn:        # the stopped dr copy's root disk no longer holds the failback point
        old_root = rp.disk_files(conn.domain("shop-db").XMLDesc(0))["vda"][0]
    run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 64k", old_root])
    with lv.connect(uri) as conn:
        running = {t: f for t, (f, _fmt) in rp.disk_files(conn.domain(SOURCE).XMLDesc(0)).items()}
        dom = conn.domain(SOURCE)
        marks = [c.getName() for c in dom.listAllCheckpoints(0)]
        assert marks == [tracking.checkpoint_name("shop", store.load("shop").newest.point_id)]   # the failback's
        dom.checkpointLookupByName(marks[0]).delete(0)   # as if it could not be marked: the changes get hashed
    report = rp.reprotect("shop", store=store)
    disks = {d.key: d for d in report.disks}
    assert (report.source_site, report.target_site) == ("dc1", "dr")
    assert disks["shop-db.vdb"].method == "hash" and disks["shop-db.vdb"].adopted == "copied-locally"
    assert disks["shop-db.vdb"].bytes_written == len(DC1_BLOCKS) * BS
    root = disks["shop-db.vda"]
    assert root.method == "full" and root.adopted == "none" and "does not hold the failover point" in root.reason
    assert root.bytes_written > 8 * MIB                 # the whole allocated root disk went again
    assert "shop-db.vda: full" in rp.render_text(report)
    assert all(os.path.exists(f) for f in running.values())
    group = store.load("shop")
    assert (group.source_site, group.target_site) == ("dc1", "dr")
    assert failover_record.load(world["state"], "shop") is None
    assert point_md5(store, report.point_id, "shop-db.vdb") == after
    world["figures"]["hash_reprotect_bytes"] = report.bytes_written
    print("figures", world["figures"])
