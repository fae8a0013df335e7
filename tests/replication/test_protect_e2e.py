"""Issue 12 end to end on a real private libvirtd (QEMU under TCG) and real qemu-img: a two-VM
application — `web` from a VMware-style OVA of the project's virtio test guest, `db` a running
command-loop test guest at site dc1 — protected to site dr on the same host (other storage directory,
other libvirt networks) with `vmferry protect`, synced with `vmferry sync` after the guest wrote to its
disk and the package was refreshed, verified, reported by `vmferry status --json`, each point booted
once, and removed by `vmferry unprotect` leaving everything else alone."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_vmferry
from tests.guest import libvirtd as _libvirtd
from tests.guestimage import build
from tests.replication import sourceguest as sg
from tests.replication.conftest import make_ova
from vmferry.replication import imageio, points
from vmferry.replication.launch import launch_xml, record_test
from vmferry.replication.store import Store
from vmferry.tools.libvirt import connect, wait_console

pytestmark = pytest.mark.slow
MIB = 1 << 20
BS = 64 * 1024
SOURCE = "shop-db-src"
DATA_SIZE = 16 * MIB
PKG_OFFSET = 95 * MIB          # free space of the test guest's ext4 (last block group): safe to change
BOOT_TIMEOUT = 240


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    stack = contextlib.ExitStack()
    daemon, proc = _libvirtd.start()
    try:
        work = daemon.workdir
        own = (daemon.uid, daemon.gid)
        for site in ("dc1", "dr"):
            (work / site).mkdir()
            os.chown(work / site, *own)
        (work / "dr" / "keep-me.txt").write_text("not vmferry's")
        running = stack.enter_context(sg.running_guest(daemon, SOURCE, DATA_SIZE, work / "dc1"))
        console = running.console
        pkg = tmp_path_factory.mktemp("pkg")
        raw = pkg / "web.raw"
        shutil.copyfile(build.build("virtio").image, raw)
        ova = make_ova(raw, pkg, "web")
        manifest = pkg / "app.yaml"
        lib = {"uri": daemon.uri}
        manifest.write_text(yaml.safe_dump({
            "name": "shop",
            "components": {"web": {"package": "web.ova"},
                           "db": {"source": {"domain": SOURCE}}},
            "sites": {
                "dc1": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dc1"),
                                                           "networks": {"VM Network": "dc1-lan"}}},
                "dr": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dr"),
                                                          "networks": {"VM Network": "dr-lan"},
                                                          "test_network": "user"}}}}))
        state = tmp_path_factory.mktemp("state")
        yield {"daemon": daemon, "work": work, "console": console, "raw": raw, "ova": ova, "pkg": pkg,
               "manifest": manifest, "env": {"VMFERRY_STATE": str(state)}, "store": Store(state),
               "data_disk": running.data}
    finally:
        stack.close()
        with connect(daemon.uri) as conn:
            for name in conn.names():
                conn.undefine(name)
        _libvirtd.stop(proc, daemon.workdir.parent)


def point_bytes(store: Store, point_id: str, key: str) -> bytes:
    group = store.load("shop")
    with imageio.open_image(points.chain_spec(group, group.point(point_id), key)) as image:
        return image.pread(image.size, 0)


def boot(world, vm: str, point_id: str, markers: list[str]):
    """Launch ``vm`` as of ``point_id`` on the isolated test network (user-mode) through a throw-away
    layer; read its console until a marker; remove the domain."""
    daemon, store = world["daemon"], world["store"]
    work = daemon.workdir / f"launch-{vm}-{point_id}"
    xml = launch_xml(store.load("shop"), vm, point_id, str(work), network="user")
    for root, _dirs, files in os.walk(work):
        daemon.own(Path(root))
        for f in files:
            daemon.own(Path(root) / f)
    with connect(daemon.uri) as conn:
        info = conn.define(xml)
        try:
            conn.start(info.name)
            return wait_console(work / "console.log", markers, BOOT_TIMEOUT,
                                stop_when=lambda: not conn.info(info.name).active)
        finally:
            conn.undefine(info.name)


def test_protect_sync_status_boot_unprotect(world):
    env, store, console = world["env"], world["store"], world["console"]
    before_db = console.md5sum("/dev/vdb")
    res = run_vmferry("protect", world["manifest"], "--from", "dc1", "--to", "dr", "--rpo", "15m", "--keep", "3",
                      "--domain-type", "qemu", "--json", env=env, timeout=1800)
    assert res.returncode == 0, res.stderr
    group = store.load("shop")
    assert sorted(vm.vm for vm in group.vms) == ["shop-db", "shop-web"]
    assert group.replica_dir == str(world["work"] / "dr" / "shop")
    web, db = group.vm("shop-web"), group.vm("shop-db")
    assert web.source_kind == "package" and db.source_kind == "domain"
    assert [d.disk for d in db.disks] == ["vda", "vdb"]
    replica = Path(group.replica_dir)
    assert (replica / web.domain_xml).is_file() and (replica / web.env_iso).is_file()
    assert "dr-lan" in (replica / web.domain_xml).read_text()          # the target's network, not dc1-lan
    (p1,) = group.points

    # between two syncs: the guest writes two blocks of its data disk; the package is refreshed
    assert console.run(sg.write_blocks_command("/dev/vdb", [3, 100])) == 0
    after_db = console.md5sum("/dev/vdb")
    assert after_db != before_db
    raw = bytearray(world["raw"].read_bytes())
    raw[PKG_OFFSET:PKG_OFFSET + 16] = b"vmferry-point-2!"
    world["raw"].write_bytes(raw)
    make_ova(world["raw"], world["pkg"], "web")
    res = run_vmferry("sync", "shop", "--json", env=env, timeout=1800)
    assert res.returncode == 0, res.stderr
    p2 = json.loads(res.stdout)
    group = store.load("shop")
    assert [p.point_id for p in group.points] == [p1.point_id, p2["point_id"]]
    pdir = Path(points.point_dir(group, p2["point_id"]))
    sync = {k: json.loads((pdir / f"{k}.sync.json").read_text()) for k in ("shop-db.vdb", "shop-web.vmdisk1")}
    assert sync["shop-db.vdb"]["bytes_written"] == 2 * BS and not sync["shop-db.vdb"]["full"]
    assert sync["shop-web.vmdisk1"]["bytes_written"] == BS and not sync["shop-web.vmdisk1"]["full"]

    # the data of the second sync is in the second point and not in the first
    old_db, new_db = (point_bytes(store, pid, "shop-db.vdb") for pid in (p1.point_id, p2["point_id"]))
    assert hashlib.md5(old_db).hexdigest() == before_db and hashlib.md5(new_db).hexdigest() == after_db
    old_web, new_web = (point_bytes(store, pid, "shop-web.vmdisk1") for pid in (p1.point_id, p2["point_id"]))
    assert new_web[PKG_OFFSET:PKG_OFFSET + 16] == b"vmferry-point-2!"
    assert old_web[PKG_OFFSET:PKG_OFFSET + 16] != b"vmferry-point-2!"

    res = run_vmferry("verify", "shop", "--json", env=env, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr

    # each point boots: web as of the second (package refreshed, guest repaired again), db as of the first
    result = boot(world, "shop-web", p2["point_id"], [build.MARK_IP, build.MARK_ROOT_MISSING])
    assert result.found == build.MARK_IP, result.text[-2000:]
    record_test("shop", "shop-web", p2["point_id"], True, "booted, read its OVF environment", store=store)
    result = boot(world, "shop-db", p1.point_id, [sg.READY])
    assert result.found == sg.READY, result.text[-2000:]
    record_test("shop", "shop-db", p1.point_id, True, "booted", store=store)
    assert len(os.listdir(points.point_dir(store.load("shop"), p1.point_id))) > 0
    assert run_vmferry("verify", "shop", "--quick", env=env).returncode == 0      # booting changed no point

    res = run_vmferry("status", "shop", "--json", env=env)
    assert res.returncode == 0, res.stderr
    app = json.loads(res.stdout)["applications"][0]
    assert app["newest_point"] == p2["point_id"] and app["rpo"] == "ok" and app["target_site"] == "dr"
    vms = {v["vm"]: v for v in app["vms"]}
    assert vms["shop-db"]["last_test"]["point_id"] == p1.point_id and vms["shop-db"]["last_test"]["ok"]
    assert vms["shop-db"]["consistency"] in ("application", "crash")
    assert vms["shop-web"]["readiness"] in ("ready", "needs-fixes")
    assert vms["shop-db"]["last_sync"]["bytes_written"] >= 2 * BS

    # unprotect: the replica, the capture directory, the checkpoints and the record go; nothing else
    with connect(world["daemon"].uri) as conn:
        assert any(c.getName().startswith("vmferry-shop.") for c in conn.domain(SOURCE).listAllCheckpoints(0))
    res = run_vmferry("unprotect", "shop", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert not Path(group.replica_dir).exists() and not Path(group.capture_dir).exists()
    assert (world["work"] / "dr" / "keep-me.txt").read_text() == "not vmferry's"
    assert world["ova"].is_file() and world["data_disk"].is_file()
    with connect(world["daemon"].uri) as conn:
        assert conn.info(SOURCE).active
        assert not any(c.getName().startswith("vmferry-shop.") for c in conn.domain(SOURCE).listAllCheckpoints(0))
    assert console.md5sum("/dev/vdb") == after_db
    assert not store.exists("shop")
