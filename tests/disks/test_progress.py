"""vmferry.progress: JSON events, a bar on a terminal, silence otherwise."""

from __future__ import annotations

import io
import json
import os
import pty
import select

from tests.conftest import run_vmferry
from vmferry.progress import Reporter, make_reporter


def test_json_events_have_start_progress_end():
    buf = io.StringIO()
    rep = Reporter("json", buf, interval=0)
    with rep.step("copy", 1000) as step:
        for _ in range(10):
            step.advance(100)
    events = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "end"
    assert events[-1]["done"] == 1000 and events[-1]["total"] == 1000
    assert all(e["step"] == "copy" for e in events)


def test_quiet_when_not_a_terminal_and_bar_on_a_terminal():
    buf = io.StringIO()
    rep = make_reporter(False, buf)
    with rep.step("x", 10) as step:
        step.advance(10)
    assert buf.getvalue() == ""
    master, slave = pty.openpty()
    try:
        tty = os.fdopen(slave, "w")
        rep = make_reporter(False, tty)
        assert rep.mode == "tty"
        with rep.step("convert", 2048) as step:
            step.advance(2048)
        tty.flush()
        text = ""
        while "\n" not in text and select.select([master], [], [], 5)[0]:
            text += os.read(master, 4096).decode()
    finally:
        os.close(master)
        tty.close()
    assert "100.0%" in text and "/s" in text and "convert" in text


def test_cli_json_mode_keeps_stdout_a_json_document(tmp_path, odd_raw):
    done = run_vmferry("disk", "convert", odd_raw, "-O", "vmdk-stream", "-o", tmp_path / "o.vmdk", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["format"] == "vmdk-stream" and doc["virtual_size"] == os.path.getsize(odd_raw)
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert events[-1]["event"] == "end" and events[-1]["done"] == doc["virtual_size"]
    quiet = run_vmferry("disk", "convert", odd_raw, "-O", "qcow2", "-o", tmp_path / "o.qcow2")
    assert quiet.returncode == 0 and quiet.stderr == ""
