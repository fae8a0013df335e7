"""Fixtures of the workflow tests: one real Temporal dev server per test module (vmferry's own
:class:`DevServer` on 127.0.0.1), worker processes started and killed for real, history helpers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from vmferry.workflows.server import DevServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def temporal(tmp_path_factory):
    server = DevServer(tmp_path_factory.mktemp("temporal-state")).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class WorkerProc:
    proc: subprocess.Popen
    identity: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.proc)


def _dies_with_us() -> None:
    """A worker started by a test gets SIGKILL if the test process dies (no worker outlives a run)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _env(extra: dict | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")])
    env.pop("VMFERRY_DEBUG", None)
    env.update(extra or {})
    return env


@pytest.fixture
def start_worker():
    """Start a worker process over the file-copy library; returns once its workers poll."""
    started: list[WorkerProc] = []

    def start(address: str, root: Path, *args: str, env: dict | None = None) -> WorkerProc:
        proc = subprocess.Popen([sys.executable, "-m", "tests.workflows.file_worker", address, str(root), *args],
                                stdout=subprocess.PIPE, text=True, cwd=REPO, env=_env(env), preexec_fn=_dies_with_us)
        line = proc.stdout.readline()
        if not line.startswith("ready "):
            proc.kill()
            proc.wait()
            raise AssertionError(f"worker did not start: {line!r}")
        worker = WorkerProc(proc, line[len("ready "):].strip())
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def launch_vmferry_worker(log: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """``vmferry worker ARGS`` (the real command) as a child process that dies with this one, its
    standard error in ``log``; returns once it serves."""
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "vmferry", "worker", *args], stdout=subprocess.DEVNULL,
                                stderr=sink, cwd=REPO, env=_env(env), preexec_fn=_dies_with_us)
    deadline = time.monotonic() + 60
    while "serving" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise AssertionError(f"vmferry worker did not start: {log.read_text()!r}")
        time.sleep(0.1)
    return proc


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def start_vmferry_worker(tmp_path):
    """Start ``vmferry worker`` itself (the real command) as a child process; returns once it serves."""
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict | None = None) -> subprocess.Popen:
        proc = launch_vmferry_worker(tmp_path / f"worker-{len(started)}.log", *args, env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_process(proc)


def run(coro):
    return asyncio.run(coro)


async def history_events(client, workflow_id: str, run_id: str | None = None) -> list:
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    return [event async for event in handle.fetch_history_events()]


def activity_runs(events) -> dict[int, dict]:
    """Per scheduled activity (by its scheduled event id): type, input queue, started (identity,
    attempt, last failure) and outcome events, from a workflow history."""
    runs: dict[int, dict] = {}
    for event in events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            runs[event.event_id] = {"type": attrs.activity_type.name, "queue": attrs.task_queue.name,
                                    "activity_id": attrs.activity_id, "scheduled": attrs}
        elif event.HasField("activity_task_started_event_attributes"):
            attrs = event.activity_task_started_event_attributes
            runs[attrs.scheduled_event_id]["started"] = attrs
        elif event.HasField("activity_task_completed_event_attributes"):
            attrs = event.activity_task_completed_event_attributes
            runs[attrs.scheduled_event_id]["completed"] = attrs
        elif event.HasField("activity_task_failed_event_attributes"):
            attrs = event.activity_task_failed_event_attributes
            runs[attrs.scheduled_event_id]["failed"] = attrs
        elif event.HasField("activity_task_canceled_event_attributes"):
            attrs = event.activity_task_canceled_event_attributes
            runs[attrs.scheduled_event_id]["canceled"] = attrs
    return runs
