"""The console in a real browser (Debian's Chromium, headless) against a real ``vmferry serve``: its own
Temporal server and workers for dc1 and dr, the serving test guest packed as an OVA and protected
dc1 -> dr through a durable protect run (RPO 30 s, so its schedule syncs every 15 s) on the privileged
private libvirtd. One served application for the whole module:

* the overview shows it with its RPO state; screenshots of the overview and the application page at
  1280x800 and 390x844 go to the test output, with no horizontal overflow and no console error;
* a write without the operator token is refused (401) and starts no run;
* signed in, a test failover started from the application page and confirmed: the run page shows its
  steps arriving live (server-sent events, no reload), then the report with the measured RTO;
* the schedule paused, the RPO cell of an overview left open turns red (without a reload) once the
  newest point is older than the RPO, and its last test shows the RTO.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_vmferry
from tests.console.conftest import REPO, output_dir
from tests.recovery import serviceguest
from tests.replication.conftest import make_ova
from tests.workflows.conftest import _dies_with_us, _env
from vmferry.tools.proc import run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostnet"), pytest.mark.timeout(1800)]

TOKEN = "console-browser-test-token-0123"
RPO = 30
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


@dataclass
class Served:
    url: str
    address: str
    state: Path
    env: dict
    proc: subprocess.Popen
    log: Path


def _manifest(tmp: Path, work: Path, uri: str) -> Path:
    """The serving test guest as application 'shop'. Its subnets (10.161.15/16.0/24) are used by no other
    test: an isolated test network's bridge takes its gateway address on the host, where another test's
    network on the same subnet (another private libvirtd) would collide."""
    raw = tmp / "web.raw"
    run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", serviceguest.service_image(), raw])
    make_ova(raw, tmp, "web", ip="10.161.15.13")
    lib = {"uri": uri}
    manifest = tmp / "app.yaml"
    manifest.write_text(yaml.safe_dump({
        "name": "shop",
        "components": {"web": {"package": "web.ova", "nics": [{"address": "10.161.15.13/24"}], "ports": [80]}},
        "sites": {
            "dc1": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dc1"),
                                                       "networks": {"VM Network": "dc1-lan"}},
                    "networks": {"VM Network": {"subnet": "10.161.15.0/24", "gateway": "10.161.15.1"}}},
            "dr": {"platform": "libvirt", "libvirt": {**lib, "storage": str(work / "dr"),
                                                      "networks": {"VM Network": "dr-lan"}},
                   "networks": {"dr-app": {"subnet": "10.161.16.0/24", "gateway": "10.161.16.1"}}}},
        "moves": [{"from": "dc1", "to": "dr", "networks": {"VM Network": "dr-app"},
                   "readdress": [{"from": "10.161.15.0/24", "to": "10.161.16.0/24"}]}]}))
    return manifest


@pytest.fixture(scope="module")
def served(netlibvirtd, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    work = netlibvirtd.workdir
    for site in ("dc1", "dr"):
        (work / site).mkdir(exist_ok=True)
        netlibvirtd.own(work / site)
    manifest = _manifest(tmp, work, netlibvirtd.uri)
    state = tmp / "state"
    env = {"VMFERRY_STATE": str(state), "VMFERRY_CONSOLE_TOKEN": TOKEN, "VMFERRY_TEMPORAL": ""}
    log = tmp / "serve.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "vmferry", "serve", "--state-dir", str(state), "--site", "dc1",
                                 "--site", "dr", "--listen", "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=sink,
                                cwd=REPO, env=_env(env), preexec_fn=_dies_with_us)
    address = None
    try:
        deadline = time.monotonic() + 120
        while not re.search(r"console (http://\S+)", log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        url = re.search(r"console (http://\S+)", text).group(1)
        address = re.search(r"local Temporal server (\S+);", text).group(1)
        assert f"operator token {TOKEN}" in text and "$VMFERRY_CONSOLE_TOKEN" in text
        res = run_vmferry("protect", manifest, "--from", "dc1", "--to", "dr", "--rpo", f"{RPO}s", "--domain-type",
                          "qemu", "--temporal", address, "--json", env=env, timeout=1200)
        assert res.returncode == 0, res.stderr[-3000:] + log.read_text()[-3000:]
        yield Served(url, address, state, env, proc, log)
    finally:
        if address and proc.poll() is None:
            run_vmferry("unprotect", "shop", "--temporal", address, env=env, timeout=300)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        (output_dir() / "serve.log").write_text(log.read_text())


def _page(chromium, size: str):
    width, height = SIZES[size]
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def _status(served: Served) -> dict:
    res = run_vmferry("status", "shop", "--json", env=served.env)
    return json.loads(res.stdout)["applications"][0]


def _runs(served: Served) -> list[dict]:
    res = run_vmferry("runs", "--json", "--temporal", served.address, env=served.env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["runs"]


def test_overview_and_application_page_at_two_sizes(served, chromium):
    out = output_dir()
    for size in SIZES:
        context, page, errors = _page(chromium, size)
        try:
            page.goto(served.url)
            cell = page.locator('tr[data-app="shop"] td.rpo')
            assert cell.get_attribute("data-rpo") == "green", cell.inner_text()
            assert "dc1 → dr" in page.locator('tr[data-app="shop"]').inner_text()
            page.screenshot(path=str(out / f"overview-{size}.png"), full_page=True)
            assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth"), size
            page.click('a[href="/apps/shop"]')
            page.wait_for_selector("figure.graph svg")
            assert page.locator("ol.groups li").first.inner_text().startswith("Boot group 1: web")
            assert page.locator("circle.pt").count() >= 1
            page.screenshot(path=str(out / f"app-{size}.png"), full_page=True)
            assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth"), size
            assert errors == [], errors
        finally:
            context.close()
        assert (out / f"overview-{size}.png").stat().st_size > 5000


def test_a_write_without_the_token_is_refused_and_starts_nothing(served):
    before = _runs(served)
    request = urllib.request.Request(served.url + "apps/shop/test", data=b"confirm=yes", method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    time.sleep(1)
    after = _runs(served)
    assert not [r for r in after if r["workflow_type"] == "TestRecovery"]
    assert {r["workflow_id"] for r in after if r["workflow_type"] != "SyncWorkflow"} == \
        {r["workflow_id"] for r in before if r["workflow_type"] != "SyncWorkflow"}


def _pause_schedule(served: Served) -> None:
    from vmferry.workflows.endpoint import connect

    async def pause():
        client = await connect(served.address)
        await client.get_schedule_handle("vmferry-sync-shop").pause(note="console test: let the RPO lapse")

    with ThreadPoolExecutor(1) as pool:           # Playwright's sync API runs an event loop in this thread
        pool.submit(asyncio.run, pause()).result(timeout=60)


def test_test_failover_from_the_page_live_steps_report_and_rto(served, chromium):
    _pause_schedule(served)                 # no sync competes with the test; the RPO lapses meanwhile
    served.paused = True
    watch = _page(chromium, "phone")        # an overview left open while the test runs (see the last test)
    watch[1].goto(served.url)
    assert watch[1].locator('tr[data-app="shop"] td.rpo').get_attribute("data-rpo") in ("green", "amber")
    served.watch = watch
    context, page, errors = _page(chromium, "desktop")
    try:
        page.goto(served.url + "login?back=/apps/shop")
        page.get_by_label("Operator token").fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/apps/shop$"))
        page.get_by_text("Test failover…").click()
        page.get_by_role("button", name="Start test failover").click()
        page.wait_for_url(re.compile(r".*/runs/vmferry-recover-test-shop-dr$"))
        page.wait_for_load_state("load")
        navigations: list[str] = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        seen: list[str] = []                # every step the list showed; after the final reload it is empty
        deadline = time.monotonic() + 900
        while not page.locator("#report").count():
            assert time.monotonic() < deadline, seen
            for text in page.locator("#steps li").all_inner_texts():
                if text and text not in seen:
                    seen.append(text)
            time.sleep(0.2)
        assert len(navigations) <= 1, navigations     # the steps grew in place; one reload at the end
        report = page.locator("#report").inner_text()
        page.screenshot(path=str(output_dir() / "run-report-desktop.png"), full_page=True)
        assert "— OK" in report, report + served.log.read_text()[-3000:]
        assert len(seen) >= 3, (seen, served.log.read_text()[-2000:])   # steps arrived one by one
        assert any("shop-web" in s for s in seen), seen
        rto = page.locator("#rto").inner_text()
        value = float(re.search(r"Measured RTO: ([0-9.]+) s", rto).group(1))
        assert value > 0
        assert "10.161.16.13" in report and "nothing left" in report
        assert page.locator("#run-status").inner_text() == "completed"
        assert errors == [], errors
    finally:
        context.close()
    status = _status(served)
    (vm,) = status["vms"]
    assert vm["last_test"]["ok"] and abs(vm["last_test"]["rto_seconds"] - value) < 0.2


def test_rpo_cell_turns_red_when_the_schedule_stops(served, chromium):
    """The overview opened before the test failover, never reloaded since: it refreshes itself, and its
    RPO cell is red once the newest point is older than the RPO."""
    if not getattr(served, "paused", False):
        _pause_schedule(served)
    context, page, errors = getattr(served, "watch", None) or _page(chromium, "phone")
    try:
        if page.url == "about:blank":
            page.goto(served.url)
        cell = 'tr[data-app="shop"] td.rpo[data-rpo="red"]'
        age = _status(served)["age_seconds"]
        page.wait_for_selector(cell, timeout=max(RPO - age, 0) * 1000 + 30_000)
        assert _status(served)["rpo"] == "breached"
        row = page.locator('tr[data-app="shop"]')
        assert "RPO breached" in row.inner_text()
        # the page may have turned red before the test's result was recorded: a later refresh shows it
        page.wait_for_selector('tr[data-app="shop"] td.test .ok', timeout=20_000)
        assert "passed" in row.locator("td.test").inner_text() and "RTO" in row.locator("td.test").inner_text()
        assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
        assert errors == [], errors
    finally:
        context.close()
