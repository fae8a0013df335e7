"""``vmferry serve`` starts its own Temporal server in the state directory and runs the workflows;
``vmferry runs`` lists and follows runs; stopping serve stops the server and forgets its address."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

from tests.conftest import run_vmferry
from tests.workflows.conftest import REPO, _dies_with_us, _env, run
from tests.workflows.test_durable_sync import FAST, make_app
from vmferry.workflows.endpoint import connect, resolve_address
from vmferry.workflows.protection import SyncRequest
from vmferry.workflows.server import recorded_address


def test_serve_runs_and_follow(tmp_path, start_worker):
    state = tmp_path / "state"
    serve = subprocess.Popen([sys.executable, "-m", "vmferry", "serve", "--state-dir", str(state)],
                             stderr=subprocess.PIPE, text=True, cwd=REPO, env=_env(None),
                             preexec_fn=_dies_with_us)
    try:
        line = serve.stderr.readline()
        assert "local Temporal server 127.0.0.1:" in line, line
        address = recorded_address(state)
        assert address and address in line
        assert (state / "temporal.db").is_file()
        assert resolve_address(None, state) == address
        make_app(tmp_path, "shop", {"web.vda": 2 * 1024 * 1024})
        start_worker(address, tmp_path, "--site", "dc1", "--site", "dr", env={"VMFERRY_TEST_CHUNK_DELAY": "0.05"})

        async def start():
            client = await connect(address)
            handle = await client.start_workflow("SyncWorkflow", SyncRequest("shop", "dc1", "dr", FAST),
                                                 id="serve-shop", task_queue="vmferry")
            return handle.id

        workflow_id = run(start())
        followed = run_vmferry("runs", "serve-shop", "--follow", "--json", "--state-dir", state, timeout=120)
        assert followed.returncode == 0, followed.stderr
        result = json.loads(followed.stdout)
        assert result["status"] == "COMPLETED" and result["result"]["app"] == "shop"
        events = [json.loads(ln) for ln in followed.stderr.splitlines()]
        assert {e["step"] for e in events} == {"sync web.vda"}
        assert events[-1]["event"] == "end" and events[-1]["done"] == 2 * 1024 * 1024, events
        listed = run_vmferry("runs", "--json", "--state-dir", state)
        assert listed.returncode == 0, listed.stderr
        runs = json.loads(listed.stdout)["runs"]
        assert [(r["workflow_id"], r["workflow_type"], r["status"]) for r in runs] == \
            [(workflow_id, "SyncWorkflow", "COMPLETED")]
        missing = run_vmferry("runs", "nope", "--follow", "--state-dir", state)
        assert missing.returncode == 2 and "no run 'nope'" in missing.stderr
    finally:
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
    assert recorded_address(state) is None
    assert not (state / "temporal.json").exists()
    deadline = time.monotonic() + 10
    while run_vmferry("runs", "--temporal", address).returncode == 0:  # the server is gone too
        assert time.monotonic() < deadline
        asyncio.run(asyncio.sleep(0.2))


def test_no_temporal_service_is_one_line(tmp_path):
    result = run_vmferry("runs", "--state-dir", tmp_path, env={"VMFERRY_TEMPORAL": ""})
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no Temporal service" in result.stderr
    bad = run_vmferry("runs", "--temporal", "nohost")
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr


def test_serve_killed_takes_its_server_along(tmp_path):
    """``kill -9`` of ``vmferry serve``: the Temporal server it started stops too (it never outlives
    serve), and its recorded address is no longer offered."""
    import os

    state = tmp_path / "state"
    serve = subprocess.Popen([sys.executable, "-m", "vmferry", "serve", "--state-dir", str(state)],
                             stderr=subprocess.PIPE, text=True, cwd=REPO, env=_env(None), preexec_fn=_dies_with_us)
    try:
        assert "local Temporal server" in serve.stderr.readline()
        server_pid = json.loads((state / "temporal.json").read_text())["pid"]
    finally:
        serve.kill()
        serve.wait(timeout=10)
    deadline = time.monotonic() + 20
    while recorded_address(state) is not None:
        assert time.monotonic() < deadline, "the Temporal server outlived vmferry serve"
        time.sleep(0.2)
    try:
        os.kill(server_pid, 0)
        with open(f"/proc/{server_pid}/stat") as fh:
            assert fh.read().rpartition(")")[2].split()[0] == "Z"
    except ProcessLookupError:
        pass
