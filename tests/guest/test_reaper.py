"""tests/guest/reaper.py: the private libvirt daemons' subreaper (orphans reaped at once, status passed on)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.guest.libvirtd import REAPER


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "X"
    except FileNotFoundError:
        return True


def test_an_orphan_of_the_command_is_reaped_at_once():
    # the subshell starts a short sleep and exits: the sleep is orphaned while the command still runs
    proc = subprocess.Popen([*REAPER, "sh", "-c", "( sleep 0.1 & echo $! ); sleep 2"], stdout=subprocess.PIPE,
                            text=True)
    try:
        orphan = int(proc.stdout.readline())
        deadline = time.monotonic() + 1.0
        while not _gone(orphan):
            assert time.monotonic() < deadline, f"orphan {orphan} not reaped within 1 s (still a zombie?)"
            time.sleep(0.02)
        assert proc.poll() is None                       # reaped while the command still runs
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_the_command_status_and_signals_are_passed_on():
    assert subprocess.run([*REAPER, "sh", "-c", "exit 3"]).returncode == 3
    proc = subprocess.Popen([*REAPER, sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"
    proc.terminate()
    assert proc.wait(timeout=10) == 128 + 15                 # the command ended by the SIGTERM passed on
    assert not os.path.exists(f"/proc/{proc.pid}")
