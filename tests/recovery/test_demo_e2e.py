"""`make demo`'s recovery part (scripts/demo_recover.py) run for real, with two of its three components
(db <- web, two boot groups): it protects the application to dr on its own privileged libvirtd, runs
the test recovery, prints the report with the RTO, and leaves nothing — also not the daemon and the
network an earlier, killed demo left behind (it stops them first)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import demo_libvirtd  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.xdist_group("hostnet")]
LEFTOVER = ("<network><name>demo-leftover</name><bridge name='vmfdemo9' stp='off'/><dns enable='no'/>"
            "<ip address='10.79.0.1' prefix='24'/></network>")


def _gone(pid: int) -> bool:
    """The daemon this test started has exited (reaped here: it is this process's child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def test_demo_protects_recovers_reports_the_rto_and_leaves_nothing():
    if os.geteuid() != 0:
        pytest.skip("the demo's libvirtd makes libvirt networks: root only")
    import libvirt

    base = Path(tempfile.mkdtemp(prefix="vmferry-demo-test-", dir="/tmp"))   # QEMU (nobody) must reach it
    os.chmod(base, 0o755)
    base = base / "d"
    env = dict(os.environ, VMFERRY_DEMO_DIR=str(base), PYTHONPATH=str(REPO / "src"))
    try:
        old = demo_libvirtd.start(base)                  # what a demo killed with -9 leaves behind
        conn = libvirt.open(old.uri)
        conn.networkCreateXML(LEFTOVER)
        conn.close()
        res = subprocess.run([sys.executable, str(REPO / "scripts" / "demo_recover.py"), "--components", "db,web"],
                             capture_output=True, text=True, env=env, timeout=1700, cwd=REPO)
        left_behind = base.exists()                     # the demo removes its directory when it ends
    finally:
        if base.exists():
            demo_libvirtd.stop(base)
        shutil.rmtree(base.parent, ignore_errors=True)
    out = res.stdout
    assert res.returncode == 0, out[-5000:] + res.stderr[-3000:]
    assert _gone(old.pid), out
    assert re.search(rf"removed first, left by an earlier demo: network demo-leftover, libvirtd {old.pid}\n", out)
    assert "vmferry protect" in out and "shop: protected from dc1 to dr" in out
    assert re.search(r"group 1 \(db\): launch [0-9.]+ s, boot to proof [0-9.]+ s", out)
    assert re.search(r"group 2 \(web\): launch", out)
    assert re.search(r"shop-db \(db, 10\.77\.0\.11, qemu\): proved in [0-9.]+ s", out)
    assert re.search(r"ok +tcp 5432", out) and "application check pool web: web: ok" in out
    rto = float(re.search(r"^ +RTO: ([0-9.]+) s$", out, re.M).group(1))
    assert rto > 0 and f"RTO {rto:.1f} s" in out
    assert "replicas unchanged: yes" in out and "nothing left" in out
    assert "recovery demo finished" in out
    assert not left_behind                                                 # daemon stopped, files removed
    daemons = subprocess.run(["pgrep", "-f", f"{base}/"], capture_output=True, text=True).stdout.split()
    assert daemons == []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "vmfdemo9" not in links
