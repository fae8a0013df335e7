"""The demo's private, privileged libvirtd: a daemon of its own that can make libvirt networks (a bridge
and the host's address on it — a session daemon cannot), hidden from the system's libvirt.

``libvirtd`` runs as root in its own mount namespace where ``/etc/libvirt``, ``/run/libvirt``,
``/var/lib/libvirt``, ``/var/cache/libvirt`` and ``/var/log/libvirt`` are directories under ``BASE``;
its QEMU runs as ``nobody`` (no dynamic ownership, no security driver, no cgroups). The URI is
``qemu:///system?socket=BASE/run/libvirt-sock``; it listens on no network address.

Idempotent: ``BASE`` is fixed (one demo daemon per machine); :func:`start` first stops a daemon an
earlier, killed demo left there (its pid file), destroying its domains and networks (QEMU processes and
bridges outlive a killed libvirtd). :func:`stop` does the same for the daemon it started.

    python scripts/demo_libvirtd.py start|stop      # by hand; the demo uses start()/stop()
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BASE = Path(os.environ.get("VMFERRY_DEMO_DIR", "/tmp/vmferry-demo"))
CACHE = Path(os.environ.get("VMFERRY_TEST_CACHE", Path.home() / ".cache" / "vmferry-test"))
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))         # the one starter of private daemons: tests/guest/libvirtd.py


@dataclass
class Daemon:
    base: Path
    pid: int
    uri: str
    workdir: Path          # owned by QEMU's user: the sites' storage directories go here
    uid: int
    gid: int
    cleaned: tuple[str, ...] = ()   # what an earlier demo had left under base (removed first)


def uri_of(base: Path) -> str:
    return f"qemu:///system?socket={base / 'run' / 'libvirt-sock'}"


def start(base: Path = BASE, timeout: float = 30) -> Daemon:
    """Start the daemon under ``base`` (after removing whatever an earlier demo left there)."""
    if os.geteuid() != 0:
        raise SystemExit("the demo's libvirtd makes libvirt networks (bridges): run it as root")
    cleaned = tuple(stop(base))
    if not shutil.which("libvirtd") and not os.path.exists("/usr/sbin/libvirtd"):
        raise SystemExit("libvirtd is not installed (Debian package libvirt-daemon-system)")
    from tests.guest.libvirtd import launch_system

    proc, uri, user = launch_system(base, CACHE)
    log = base / "libvirtd.log"
    (base / "pid").write_text(str(proc.pid))
    daemon = Daemon(base, proc.pid, uri, base / "work", user.pw_uid, user.pw_gid, cleaned)
    deadline = time.monotonic() + timeout
    while not _answers(daemon.uri):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-1500:]
            stop(base)
            raise SystemExit(f"the demo's libvirtd did not start: {tail}")
        time.sleep(0.2)
    return daemon


def _answers(uri: str) -> bool:
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)   # a refused connection is an answer here
    try:
        libvirt.open(uri).close()
        return True
    except libvirt.libvirtError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(base: Path = BASE) -> list[str]:
    """Destroy the daemon's domains and networks, stop it, remove ``base``; what was removed."""
    removed: list[str] = []
    if not base.exists():
        return removed
    pid = None
    try:
        pid = int((base / "pid").read_text())
    except (OSError, ValueError):
        pass
    if pid and _alive(pid) and _answers(uri_of(base)):
        removed += _remove_all(uri_of(base))
    if pid and _alive(pid):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        _reap(pid)
        removed.append(f"libvirtd {pid}")
    shutil.rmtree(base, ignore_errors=True)
    return removed


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _remove_all(uri: str) -> list[str]:
    import libvirt

    out = []
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains():
            try:
                name, persistent = dom.name(), dom.isPersistent()
                if dom.isActive():
                    dom.destroy()
                if persistent:
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                                      | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
                out.append(f"domain {name}")
            except libvirt.libvirtError:
                pass
        for net in conn.listAllNetworks():
            try:
                name, persistent = net.name(), net.isPersistent()
                if net.isActive():
                    net.destroy()
                if persistent:
                    net.undefine()
                out.append(f"network {name}")
            except libvirt.libvirtError:
                pass
    finally:
        conn.close()
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["start"]:
        d = start()
        print(d.uri)
    elif sys.argv[1:] == ["stop"]:
        print("\n".join(stop()) or "nothing to stop")
    else:
        raise SystemExit("usage: demo_libvirtd.py start|stop")
