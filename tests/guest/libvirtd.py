"""A private, real ``libvirtd`` for the tests: session mode, in a temp dir, stopped afterwards.

As root the daemon runs as ``nobody`` (a session daemon needs a non-root user; it then keeps all its
state, sockets and logs under the temp dir and never touches the system libvirt). Without root it runs
as the current user. The URI is ``qemu:///session?socket=<dir>/run/libvirt/libvirt-sock``; it listens
on no network address at all.

:func:`start_system` (root only) starts a *privileged* private daemon instead, for tests that need
libvirt networks (a bridge, firewall rules, guests' taps on it — a session daemon cannot make them):
``libvirtd`` runs as root in its own mount namespace where ``/etc/libvirt``, ``/run/libvirt``,
``/var/lib/libvirt``, ``/var/cache/libvirt`` and ``/var/log/libvirt`` are directories of the temp dir,
so it never sees or touches the system's libvirt; its QEMU runs as ``nobody`` (``qemu.conf``: no
dynamic ownership, no security driver, no cgroups, no per-domain namespaces, logs to files). The URI is
``qemu:///system?socket=<dir>/run/libvirt-sock``. :func:`stop` destroys its domains and networks first
(QEMU processes, bridges and firewall rules outlive a killed daemon).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# the daemons run under a subreaper that reaps the QEMU processes they orphan at once (see reaper.py:
# without it each domain stop waited ~1.4 s for this host's PID 1)
REAPER = [sys.executable, str(Path(__file__).with_name("reaper.py"))]


@dataclass
class Libvirtd:
    uri: str
    workdir: Path          # writable by the daemon's user: put disks, ISOs and console logs here
    uid: int
    gid: int
    log: Path

    def own(self, path: Path) -> Path:
        """Give ``path`` to the daemon's user so QEMU can open it."""
        os.chown(path, self.uid, self.gid)
        return path


def _find_libvirtd() -> str:
    found = shutil.which("libvirtd") or ("/usr/sbin/libvirtd" if os.path.exists("/usr/sbin/libvirtd") else None)
    if not found:
        raise RuntimeError("libvirtd is not installed (Debian package libvirt-daemon-system)")
    return found


def start(timeout: float = 30) -> tuple[Libvirtd, subprocess.Popen]:

    base = Path(tempfile.mkdtemp(prefix="vmferry-libvirtd-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("nobody")
        uid, gid = user.pw_uid, user.pw_gid
        prefix = ["runuser", "-u", "nobody", "--"]
    else:
        uid, gid = os.getuid(), os.getgid()
        prefix = []
    for sub in ("run", "config", "cache", "data", "work"):
        (base / sub).mkdir(mode=0o700)
    for p in [base, *base.iterdir()]:
        os.chown(p, uid, gid)
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(base),
           "XDG_RUNTIME_DIR": str(base / "run"), "XDG_CONFIG_HOME": str(base / "config"),
           "XDG_CACHE_HOME": str(base / "cache"), "XDG_DATA_HOME": str(base / "data"), "LANG": "C"}
    log = base / "libvirtd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*REAPER, *prefix, "env", *(f"{k}={v}" for k, v in env.items()), _find_libvirtd()],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    sock = base / "run" / "libvirt" / "libvirt-sock"
    uri = f"qemu:///session?socket={sock}"
    _wait_answering(proc, base, sock, uri, log, timeout)
    return Libvirtd(uri, base / "work", uid, gid, log), proc


def _wait_answering(proc, base: Path, sock: Path, uri: str, log: Path, timeout: float) -> None:
    """Wait until the daemon ``proc`` answers on ``uri``; stop it and raise with its log's tail when it
    exits or does not answer within ``timeout`` seconds."""
    import libvirt

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"libvirtd exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if sock.exists():
            try:
                libvirt.open(uri).close()
                return
            except libvirt.libvirtError:
                pass
        if time.monotonic() > deadline:
            stop(proc, base)
            raise RuntimeError(f"libvirtd did not answer within {timeout} s: {log.read_text()[-2000:]}")
        time.sleep(0.2)


def deploy_and_wait(daemon: Libvirtd, xml: Path, log: Path, until: list[str], timeout: float = 150):
    """``vmferry deploy XML --start`` on ``daemon``, then read the serial log ``log`` until a marker
    of ``until`` appears, the domain stops, or ``timeout`` passes; the domain is removed afterwards.
    Returns a :class:`vmferry.tools.libvirt.ConsoleResult`."""
    import json

    from tests.conftest import run_vmferry
    from vmferry.tools.libvirt import connect, wait_console

    res = run_vmferry("deploy", xml, "--connect", daemon.uri, "--start", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["state"] == "running", info
    with connect(daemon.uri) as conn:
        try:
            return wait_console(log, until, timeout, stop_when=lambda: not conn.info(info["name"]).active)
        finally:
            conn.undefine(info["name"])


SYSTEM_DIRS = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt",
               "cache": "/var/cache/libvirt", "log": "/var/log/libvirt"}
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


def start_system(timeout: float = 30) -> tuple[Libvirtd, subprocess.Popen]:
    """A privileged private libvirtd (see the module docstring) in a new temp dir; root only."""
    if os.geteuid() != 0:
        raise RuntimeError("a privileged private libvirtd needs root")
    from tests.guestimage.build import cache_dir

    base = Path(tempfile.mkdtemp(prefix="vmferry-libvirtd-"))
    proc, uri, user = launch_system(base, cache_dir())
    log = base / "libvirtd.log"
    _wait_answering(proc, base, base / "run" / "libvirt-sock", uri, log, timeout)
    return Libvirtd(uri, base / "work", user.pw_uid, user.pw_gid, log), proc


def launch_system(base: Path, cache: Path) -> tuple[subprocess.Popen, str, pwd.struct_passwd]:
    """Lay out ``base`` and start the privileged daemon there (not yet answering); the one starter of the
    tests' and the demo's (scripts/demo_libvirtd.py) daemons. QEMU's capabilities (probed on the first
    domain start, about a minute under TCG on a busy host) are kept under ``cache`` across runs.
    Returns the process, the URI and QEMU's user."""
    import grp

    user = pwd.getpwnam("nobody")
    group = grp.getgrgid(user.pw_gid).gr_name
    base.mkdir(parents=True, exist_ok=True)
    keep = cache / "libvirt-system-cache"
    keep.mkdir(parents=True, exist_ok=True)
    (base / "cache").symlink_to(keep)
    for sub in (*SYSTEM_DIRS, "etc/qemu/networks", "lib/dnsmasq", "lib/qemu", "lib/network", "log/qemu", "work"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    os.chown(base / "work", user.pw_uid, user.pw_gid)
    os.chmod(base, 0o755)
    (base / "etc" / "qemu.conf").write_text(QEMU_CONF.format(user=user.pw_name, group=group))
    (base / "etc" / "libvirtd.conf").write_text(LIBVIRTD_CONF)
    mounts = []
    for sub, target in SYSTEM_DIRS.items():
        os.makedirs(target, exist_ok=True)          # an empty mount point on the host (no system daemon here)
        mounts.append(f"mount --bind {base / sub} {target}")
    if os.path.exists("/dev/kvm"):
        # libvirt probes QEMU's capabilities as root, finds KVM, then finds /dev/kvm unusable for QEMU's
        # user (nobody) and calls the cached capabilities invalid at every lookup: a new probe (~40 s under
        # TCG) per domain definition. An unreadable /dev/kvm in the daemon's namespace: both say no KVM.
        (base / "nokvm").touch(mode=0)
        mounts.append(f"mount --bind {base / 'nokvm'} /dev/kvm")
    # its own pid file (the default /run/libvirtd.pid would keep a second private daemon from starting)
    script = " && ".join([*mounts, f"exec {_find_libvirtd()} --pid-file {base / 'libvirtd.pid'}"])
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C"}
    with open(base / "libvirtd.log", "wb") as out:
        proc = subprocess.Popen([*REAPER, "unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
    return proc, f"qemu:///system?socket={base / 'run' / 'libvirt-sock'}", user


def _remove_all(base: Path) -> None:
    """Destroy every domain and network of the daemon under ``base`` (system or session socket)."""
    import libvirt

    for sock in (base / "run" / "libvirt-sock", base / "run" / "libvirt" / "libvirt-sock"):
        if not sock.exists():
            continue
        scheme = "system" if sock.parent == base / "run" else "session"
        try:
            conn = libvirt.open(f"qemu:///{scheme}?socket={sock}")
        except libvirt.libvirtError:
            continue
        try:
            for obj in [*conn.listAllDomains(), *conn.listAllNetworks()]:
                try:
                    if obj.isActive():
                        obj.destroy()
                except libvirt.libvirtError:
                    pass
        finally:
            conn.close()


def stop(proc: subprocess.Popen, base: Path) -> None:
    """Stop the daemon; the guests it still runs first (QEMU outlives its libvirtd otherwise)."""
    if proc.poll() is None:
        _destroy_all(f"qemu:///session?socket={base / 'run' / 'libvirt' / 'libvirt-sock'}")
    if proc.poll() is None:
        _remove_all(base)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    shutil.rmtree(base, ignore_errors=True)


def _destroy_all(uri: str) -> None:
    import libvirt

    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return
    try:
        for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            try:
                dom.destroy()
            except libvirt.libvirtError:
                pass   # it stopped by itself meanwhile
    finally:
        conn.close()
