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

import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BASE = Path(os.environ.get("VMFERRY_DEMO_DIR", "/tmp/vmferry-demo"))
CACHE = Path(os.environ.get("VMFERRY_TEST_CACHE", Path.home() / ".cache" / "vmferry-test"))
DIRS = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt", "cache": "/var/cache/libvirt",
        "log": "/var/log/libvirt"}
QEMU_CONF = """user = "{user}"
group = "{group}"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = []
cgroup_controllers = []
stdio_handler = "file"
"""
LIBVIRTD_CONF = """unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
"""


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
    user = pwd.getpwnam("nobody")
    libvirtd = shutil.which("libvirtd") or "/usr/sbin/libvirtd"
    if not os.path.exists(libvirtd):
        raise SystemExit("libvirtd is not installed (Debian package libvirt-daemon-system)")
    base.mkdir(parents=True)
    os.chmod(base, 0o755)
    keep = CACHE / "libvirt-system-cache"     # QEMU's probed capabilities, kept across runs (a minute under TCG)
    keep.mkdir(parents=True, exist_ok=True)
    (base / "cache").symlink_to(keep)
    for sub in (*DIRS, "etc/qemu/networks", "lib/dnsmasq", "lib/qemu", "lib/network", "log/qemu", "work"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    os.chown(base / "work", user.pw_uid, user.pw_gid)
    (base / "etc" / "qemu.conf").write_text(QEMU_CONF.format(user=user.pw_name,
                                                             group=grp.getgrgid(user.pw_gid).gr_name))
    (base / "etc" / "libvirtd.conf").write_text(LIBVIRTD_CONF)
    mounts = []
    for sub, target in DIRS.items():
        os.makedirs(target, exist_ok=True)
        mounts.append(f"mount --bind {base / sub} {target}")
    if os.path.exists("/dev/kvm"):
        # QEMU runs as nobody, who may not use /dev/kvm; but libvirt's capability probe (as root) finds KVM,
        # then calls its cached capabilities invalid at every lookup ("KVM was enabled when probing, but it
        # is not available now") and probes QEMU again: ~40 s per domain definition under TCG. An
        # unreadable /dev/kvm in the daemon's namespace makes both agree: no KVM, capabilities cached.
        (base / "nokvm").touch(mode=0)
        mounts.append(f"mount --bind {base / 'nokvm'} /dev/kvm")
    log = base / "libvirtd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                 " && ".join([*mounts, f"exec {libvirtd} --pid-file {base / 'libvirtd.pid'}"])],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin"),
                                                             "LANG": "C"})
    (base / "pid").write_text(str(proc.pid))
    daemon = Daemon(base, proc.pid, uri_of(base), base / "work", user.pw_uid, user.pw_gid, cleaned)
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
