"""Reprotect/failback without booting anything: the record a reprotect writes and reads back, the disks of
a domain definition, refusals (nothing failed over, not reprotected, mixed actions) with exit status 2."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_vmferry
from vmferry.errors import RecoveryError
from vmferry.recovery import reprotect as rp
from vmferry.recovery.failback import failback
from vmferry.replication.model import DiskRef, dumps
from vmferry.replication.store import ProtectionGroup, ReplicaVm, Store

XML = """<domain type='qemu'><name>db</name><devices>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/s/db-root.qcow2'/>
    <target dev='vda' bus='virtio'/></disk>
  <disk type='file' device='disk'><source file='/s/db-data.raw'/><target dev='vdb' bus='virtio'/></disk>
  <disk type='file' device='cdrom'><source file='/s/env.iso'/><target dev='hda' bus='ide'/></disk>
  <disk type='network' device='disk'><source protocol='nbd' name='x'/><target dev='vdc' bus='virtio'/></disk>
</devices></domain>"""


def group(tmp_path, **kw) -> ProtectionGroup:
    replica = tmp_path / "dr" / "shop"
    (replica / "vms" / "shop-db").mkdir(parents=True, exist_ok=True)
    (replica / "vms" / "shop-db" / "domain.xml").write_text(XML.replace("<name>db</name>", "<name>shop-db</name>"))
    vm = ReplicaVm("db", "shop-db", "domain", "db-src", None, (DiskRef("shop", "db", "shop-db", "vda", 1 << 20),),
                   "vms/shop-db/domain.xml", None, False, "ready")
    fields = dict(app="shop", manifest=str(tmp_path / "app.yaml"), source_site="dc1", target_site="dr",
                  target_uri="test:///default", source_uri="test:///default", replica_dir=str(replica),
                  rpo_seconds=900, keep=3, created_at="2026-12-01T00:00:00+00:00", vms=(vm,))
    fields.update(kw)
    return ProtectionGroup(**fields)


def test_disk_files_lists_file_disks_by_target_with_their_format():
    assert rp.disk_files(XML) == {"vda": ("/s/db-root.qcow2", "qcow2"), "vdb": ("/s/db-data.raw", "raw")}


def test_a_reprotected_record_carries_the_forward_one(tmp_path):
    forward = group(tmp_path)
    assert rp.reversed_of(forward) is None
    extra = json.dumps({"kind": rp.EXTRA_KIND, "failover_point": "p", "forward": dumps(forward)})
    back = group(tmp_path / "x", source_site="dr", target_site="dc1", extra=("{not json", extra))
    assert rp.reversed_of(back) == forward


def test_reprotect_refuses_an_application_that_runs_nowhere_else(tmp_path):
    store = Store(tmp_path / "state")
    store.save(group(tmp_path))
    with pytest.raises(RecoveryError, match="does not run at site 'dr': fail the application over first"):
        rp.reprotect("shop", store=store)
    with pytest.raises(RecoveryError, match="unknown change method"):
        rp.reprotect("shop", store=store, method="guess")
    with pytest.raises(RecoveryError, match="was not reprotected"):
        failback(tmp_path / "state", "shop")
    assert store.load("shop") == group(tmp_path)          # nothing written


def test_cli_refusals_exit_2_with_one_line(tmp_path):
    env = {"VMFERRY_STATE": str(tmp_path / "state")}
    res = run_vmferry("recover", "shop", "--reprotect", "--failback", env=env)
    assert res.returncode == 2 and "actions of their own" in res.stderr
    res = run_vmferry("recover", "shop", "--reprotect", "--test", env=env)
    assert res.returncode == 2 and "actions of their own" in res.stderr
    res = run_vmferry("recover", "shop", "--failback", "--failover", "--planned", env=env)
    assert res.returncode == 2 and "actions of their own" in res.stderr
    res = run_vmferry("recover", "shop", "--reprotect", env=env)
    assert res.returncode == 2 and "is not protected" in res.stderr and len(res.stderr.strip().splitlines()) == 1
