"""Fast checks of the failover pieces that need no VM: the failover record (atomic, refused when foreign),
the report's surroundings and source lines, the CLI's refusals of bad input."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_vmferry
from vmferry.errors import RecoveryError
from vmferry.recovery import failover_record as rec
from vmferry.recovery.report import RecoveryReport, render_html, render_text


def test_record_round_trip_steps_and_remove(tmp_path):
    assert rec.load(tmp_path, "shop") is None
    doc = {"version": rec.VERSION, "app": "shop", "run": "r1", "steps": {}, "apply_journal": str(tmp_path / "j.json")}
    (tmp_path / "j.json").write_text("{}")
    rec.save(tmp_path, doc)
    rec.mark_step(tmp_path, doc, "launch-1", vms=["shop-db"])
    again = rec.load(tmp_path, "shop")
    assert rec.step_done(again, "launch-1")["vms"] == ["shop-db"] and rec.step_done(again, "launch-2") is None
    assert [p.name for p in rec.record_dir(tmp_path).iterdir() if p.name.startswith(".")] == []   # no temp left
    assert rec.remove(tmp_path, "shop") and rec.load(tmp_path, "shop") is None
    assert not (tmp_path / "j.json").exists() and not rec.remove(tmp_path, "shop")


def test_record_of_another_app_or_garbage_is_refused(tmp_path):
    rec.record_dir(tmp_path).mkdir(parents=True)
    rec.record_path(tmp_path, "shop").write_text(json.dumps({"version": rec.VERSION, "app": "other"}))
    with pytest.raises(RecoveryError, match="not a vmferry failover record"):
        rec.load(tmp_path, "shop")
    rec.record_path(tmp_path, "shop").write_text("{cut")
    with pytest.raises(RecoveryError, match="cannot read the failover record"):
        rec.load(tmp_path, "shop")


def test_report_names_the_surroundings_and_the_source():
    report = RecoveryReport(app="shop", site="dr", point_id="p", point_taken_at="t", run_id="r", started_at="s",
                            kind="failover-planned")
    report.data_loss_seconds = 0.0
    report.source = {"fo-db": "clean", "fo-web": "forced"}
    report.surroundings = [{"id": "dns:www.x/A", "kind": "dns", "summary": "replace www <b>", "status": "applied",
                            "detail": "replaced", "verified": True, "verify_detail": "www.x A answers 10.0.0.1"},
                           {"id": "lb:web/web", "kind": "lb", "summary": "move", "status": "failed",
                            "detail": "refused", "verified": False, "verify_detail": ""}]
    text = render_text(report)
    assert "source fo-web: stopped (forced)" in text and "data-loss window: 0 s" in text
    assert "dns dns:www.x/A: applied, verified (www.x A answers 10.0.0.1)" in text
    assert "lb lb:web/web: failed, NOT verified" in text
    page = render_html(report)
    assert "<h2>Surroundings</h2>" in page and "replace www &lt;b&gt;" in page
    assert report.to_dict()["source_stopped"] == {"fo-db": "clean", "fo-web": "forced"}


def test_cli_refuses_bad_failover_requests(tmp_path):
    env = {"VMFERRY_STATE": str(tmp_path / "state")}
    res = run_vmferry("recover", "shop", "--to", "dr", "--failover", env=env)
    assert res.returncode == 2 and "planned" in res.stderr and "disaster" in res.stderr
    res = run_vmferry("recover", "shop", "--to", "dr", "--failover", "--planned", "--test", env=env)
    assert res.returncode == 2 and "not a test" in res.stderr
    res = run_vmferry("recover", "shop", "--to", "dr", "--failover", "--planned", "--disaster", env=env)
    assert res.returncode == 2
    res = run_vmferry("recover", "shop", "--to", "dr", "--failover", "--disaster", env=env)
    assert res.returncode == 2 and "shop" in res.stderr                 # not protected: one clear line
    assert not (tmp_path / "state" / "recovery").exists()


def test_no_sync_over_a_failover_that_launched_the_application(tmp_path):
    """Once a failover started a VM at the target, a sync in the old direction is refused (one line, exit 2;
    the durable run's first step says the same); a failover that launched nothing yet refuses nothing
    (its own final sync runs then), and the reprotect's removal of the record lets syncs run again."""
    from datetime import UTC, datetime

    from tests.console.records import record
    from vmferry.errors import ReplicationError
    from vmferry.replication.store import Store
    from vmferry.workflows.library import StoreLibrary

    state = tmp_path / "state"
    record(Store(state), "shop", age=10, now=datetime.now(UTC))
    doc = {"version": rec.VERSION, "app": "shop", "run": "20261201T060000Z-ab12cd", "mode": "planned",
           "source_site": "dc1", "target_site": "dr", "status": "running", "steps": {},
           "vms": {"shop-db": {"state": "defining"}}}
    rec.save(state, doc)
    rec.refuse_sync(state, "shop")                               # nothing launched yet: allowed
    doc["vms"]["shop-db"]["state"] = "started"
    rec.save(state, doc)
    with pytest.raises(ReplicationError, match="--reprotect"):
        rec.refuse_sync(state, "shop")
    with pytest.raises(ReplicationError, match="runs at site 'dr'"):
        StoreLibrary(state).begin_point("shop")
    res = run_vmferry("sync", "shop", env={"VMFERRY_STATE": str(state), "VMFERRY_TEMPORAL": ""})
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "planned failover (run 20261201T060000Z-ab12cd)" in res.stderr and "--reprotect" in res.stderr
    (state / "recovery" / "failover" / "shop.json").write_text("{ damaged")
    with pytest.raises(ReplicationError, match="unreadable"):
        rec.refuse_sync(state, "shop")
    rec.record_path(state, "shop").unlink()
    rec.refuse_sync(state, "shop")                               # forgotten (reprotected): allowed again
