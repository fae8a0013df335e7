"""`vmferry status` and `vmferry verify` on a real protection record and real points: the newest point,
its age against the RPO (VMF-DR-001 when it lapses), the last sync's bytes; a tampered point is VMF-DR-002."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import run_vmferry
from tests.replication.conftest import make_ova
from tests.replication.test_points import SIZE, _group, _raw
from vmferry.replication import imageio, points
from vmferry.replication.protect import parse_duration
from vmferry.replication.status import status
from vmferry.replication.store import Store


def _protected(tmp_path: Path, state: Path):
    raw = tmp_path / "disk.raw"
    _raw(raw)
    ova = make_ova(raw, tmp_path, "web")
    store = Store(state)
    _, ref = _group(store, tmp_path, ova)
    old = datetime.now(UTC) - timedelta(hours=1)
    draft = points.begin_point("shop", store=store, moment=old)
    points.sync_disk(draft, ref, store=store)
    return store, ref, points.seal_point(draft, store=store)


def test_status_json_reports_age_and_the_rpo_breach(tmp_path, state):
    store, ref, p1 = _protected(tmp_path, state)
    res = run_vmferry("status", "--json")
    assert res.returncode == 1, res.stderr            # the point is an hour old, the RPO 15 minutes
    doc = json.loads(res.stdout)
    (app,) = doc["applications"]
    assert app["newest_point"] == p1.point_id and app["rpo"] == "breached"
    assert 3590 <= app["age_seconds"] <= 3700 and app["rpo_seconds"] == 900
    (vm,) = app["vms"]
    assert vm["vm"] == "shop-web" and vm["protected_site"] == "dr" and vm["rpo"] == "breached"
    assert vm["last_sync"]["bytes_written"] == SIZE and vm["consistency"] == "crash"
    assert vm["readiness"] == "ready" and vm["last_test"] is None
    (finding,) = doc["findings"]
    assert finding["rule"] == "VMF-DR-001" and p1.point_id in finding["message"]

    # a sync now: the RPO is met again, and the last sync moved nothing (the package did not change)
    draft = points.begin_point("shop", store=store)
    points.sync_disk(draft, ref, store=store)
    p2 = points.seal_point(draft, store=store)
    res = run_vmferry("status", "shop", "--json")
    assert res.returncode == 0, res.stderr
    app = json.loads(res.stdout)["applications"][0]
    assert app["newest_point"] == p2.point_id and app["rpo"] == "ok" and app["age_seconds"] < 120
    assert app["last_sync"]["bytes_written"] == 0 and [p["id"] for p in app["points"]] == [p1.point_id, p2.point_id]
    later = datetime.now(UTC) + timedelta(minutes=16)      # the schedule lapses
    assert [f["rule"] for f in status("shop", store=store, now=later)["findings"]] == ["VMF-DR-001"]
    human = run_vmferry("status")
    assert human.returncode == 0 and "shop-web: ready" in human.stdout


def test_verify_cli_passes_then_reports_a_tampered_point(tmp_path, state):
    store, _, p1 = _protected(tmp_path, state)
    res = run_vmferry("verify", "shop", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["points"] == [{"id": p1.point_id, "problems": []}]
    group = store.load("shop")
    layer = Path(points.point_dir(group, p1.point_id)) / "shop-web.vmdisk1.qcow2"
    layer.chmod(0o600)
    with imageio.open_image(points.ImageSpec(str(layer), "qcow2"), writable=True) as image:
        image.pwrite(b"tampered", 2 << 20)
    res = run_vmferry("verify", "shop")
    assert res.returncode == 1 and "VMF-DR-002" in res.stdout and "FAILED" in res.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path, state):
    for args in (("status", "nope"), ("sync", "nope"), ("unprotect", "nope"), ("verify", "../x")):
        res = run_vmferry(*args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, (args, res.stderr)
    assert not os.path.exists(state / "groups" / "nope.json")
    assert parse_duration("90s") == 90 and parse_duration("15m") == 900 and parse_duration("1d") == 86400
