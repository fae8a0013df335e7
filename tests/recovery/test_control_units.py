"""Run control without VMs: step names, hooks run as real host commands (environment, output, exit
status, timeout killing the hook's whole process group, output larger than a pipe), a report read back
from its JSON document."""

from __future__ import annotations

import time

import pytest

from vmferry.errors import RecoveryError
from vmferry.recovery.control import Control, Hook, RecoveryCancelled, resolve, resolve_step, run_hook
from vmferry.recovery.proofs import CheckResult
from vmferry.recovery.report import GroupResult, RecoveryReport, VmResult, render_text, report_from_dict

GROUPS = (("db",), ("app", "cache"), ("web",))


def test_steps_are_groups_components_or_checks():
    assert resolve_step("group-2", GROUPS) == "group-2"
    assert resolve_step("cache", GROUPS) == "group-2"
    assert resolve_step("checks", GROUPS) == "checks"
    with pytest.raises(RecoveryError, match=r"no step 'group-4' \(steps: group-1, group-2, group-3, checks, db,"):
        resolve_step("group-4", GROUPS)
    with pytest.raises(RecoveryError, match="no step 'checks'"):
        resolve_step("checks", GROUPS, hook=True)          # hooks run around boot groups only
    control = resolve(Control(pause_before=("web", "checks"), hooks=(Hook("after", "app", "true"),)), GROUPS)
    assert control.pause_before == ("group-3", "checks") and control.hooks[0].step == "group-2"
    for bad, msg in ((Hook("during", "db", "true"), "before or after"), (Hook("before", "db", " "), "no command"),
                     (Hook("before", "db", "true", 0), "positive timeout")):
        with pytest.raises(RecoveryError, match=msg):
            resolve(Control(hooks=(bad,)), GROUPS)


def test_hook_gets_the_run_environment_and_its_output_is_kept(tmp_path):
    res = run_hook(Hook("before", "group-1", 'echo "$VMFERRY_STEP $VMFERRY_ADDRESSES"; echo oops >&2'),
                   {"VMFERRY_STEP": "group-1", "VMFERRY_ADDRESSES": "10.77.0.11"})
    assert res.ok and res.returncode == 0 and res.output == "group-1 10.77.0.11\noops\n" and res.detail == ""
    res = run_hook(Hook("after", "group-1", "exit 3"), {})
    assert not res.ok and res.returncode == 3 and res.detail == "exit status 3"
    big = run_hook(Hook("after", "group-1", "head -c 300000 /dev/zero | tr '\\0' x"), {})
    assert big.ok and len(big.output) == 2000                         # the tail; a full pipe never blocked it


def test_hook_timeout_kills_its_process_group(tmp_path):
    marker = tmp_path / "late"
    start = time.monotonic()
    res = run_hook(Hook("before", "group-1", f"(sleep 3; touch {marker}) & sleep 30", timeout=0.5), {})
    assert time.monotonic() - start < 3
    assert not res.ok and res.returncode is None and res.detail == "timed out after 0.5 s"
    time.sleep(3.5)
    assert not marker.exists()                                         # the background child died too


def test_cancellation_stops_a_hook_and_a_sleep():
    flag = {"on": False}
    control = Control(cancelled=lambda: flag["on"])
    control.sleep(0.1)
    flag["on"] = True
    with pytest.raises(RecoveryCancelled):
        control.sleep(10)
    res = run_hook(Hook("before", "group-1", "sleep 30"), {}, cancelled=lambda: True)
    assert not res.ok and res.detail == "the run was cancelled"


def test_report_reads_back_from_its_json_document():
    from vmferry.recovery.control import HookResult

    report = RecoveryReport(app="shop", site="dr", point_id="p1", point_taken_at="2026-12-01T02:00:00+00:00",
                            run_id="r1", started_at="2026-12-01T03:00:00+00:00", ok=True, rto_seconds=42.5)
    report.groups = [GroupResult(0, ["db"], 0.5, 1.25, 30.0)]
    report.vms = [VmResult("db", "shop-db", "vmferry-test-shop-db-r1", 0, "10.77.0.11", 0.7, True, 28.0, 30.0,
                           [CheckResult("tcp 5432", True, "connected", 27.0)], domain_type="qemu")]
    report.hooks = [HookResult("before", "group-1", "true", 0, 0.01, True)]
    report.pauses = [{"step": "checks", "seconds": 5.0}]
    report.timings = {"guest_wait": 28.75}
    back = report_from_dict(report.to_dict())
    assert back.to_dict() == report.to_dict() and render_text(back) == render_text(report)
    assert "paused before checks for 5.0 s" in render_text(back) and "hook before group-1: ok" in render_text(back)
