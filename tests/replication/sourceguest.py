"""A running source guest for the replication tests and bench: the project's small virtio test guest
(tests/guestimage/build.py) whose ``/sbin/init`` is replaced by a command loop on its serial console, so
a test makes the *guest* write to its disks (busybox ``dd`` inside the VM) between two syncs.

The derived image is a qcow2 (persistent dirty bitmaps need qcow2), cached beside the built guest and
keyed by the base image and :data:`INIT`. Each domain gets its own copy of it (about 100 MiB) plus any
data disks the test asks for; the console is a Unix socket QEMU listens on (:class:`Console`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.guestimage import build as _build
from tests.guestimage.derived import INIT_MOUNTS, derived_image, kernel_module
from vmferry.tools.proc import run

READY = "VMFERRY-REPL-READY"
DONE = "VMFERRY-REPL-DONE"
INIT = INIT_MOUNTS + r"""exec </dev/ttyS0 >/dev/ttyS0 2>&1
busybox stty -echo
insmod /lib/vmferry/virtio_console.ko
busybox sleep 1
for port in /sys/class/virtio-ports/*; do
  [ "$(cat "$port/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && agent="/dev/${port##*/}"
done
if [ -n "$agent" ]; then
  /usr/sbin/qemu-ga -m virtio-serial -p "$agent" -t /tmp -f /tmp/qemu-ga.pid &
  echo "VMFERRY-REPL-AGENT $agent"
fi
echo "VMFERRY-REPL-READY"
while read -r id cmd; do
  sh -c "$cmd"
  echo "VMFERRY-REPL-DONE $id rc=$?"
done
poweroff -f
"""


def agent_binary() -> Path:
    found = list((_build.cache_dir() / "extract").glob("qemu-guest-agent_*/usr/sbin/qemu-ga"))
    if not found:
        raise RuntimeError("the test guest's qemu-guest-agent package is not extracted (build the virtio guest)")
    return found[0]


def agent_libraries() -> dict[str, str]:
    """Guest path -> host file of each shared library qemu-ga needs (ldd on this Debian 12 host: the
    guest's packages come from the same release) and of the dynamic loader."""
    out = {}
    for line in run(["ldd", agent_binary()]).stdout.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            out[parts[2]] = os.path.realpath(parts[2])
        elif parts and parts[0].startswith("/"):
            out[parts[0]] = os.path.realpath(parts[0])
    return out


def source_image() -> Path:
    """The cached qcow2 of the command-loop guest (built once, with libguestfs)."""
    base = _build.build("virtio")
    libs = agent_libraries()
    key = hashlib.sha256((base.image + INIT + repr(sorted(libs.items()))).encode()).hexdigest()[:16]
    # the real qemu-guest-agent (its package files are in the guest) with the shared libraries it needs,
    # from this Debian 12 host, and the virtio console module
    files = {"/lib/vmferry/virtio_console.ko": kernel_module("virtio_console"), **libs}
    return derived_image("replsource", key, INIT, files, executable=tuple(libs))


def domain_xml(name: str, disks: list[tuple[Path, str]], console: Path, *, memory_mib: int = 256,
               agent: bool = True, nic: bool = False) -> str:
    """A domain running the guest on ``disks`` (qcow2, virtio), its console on the Unix socket
    ``console``; with ``agent`` a guest-agent channel (the guest then starts qemu-ga); with ``nic`` a
    user-mode virtio NIC."""
    items = "".join(
        f"<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='writeback'/>"
        f"<source file='{path}'/><target dev='{dev}' bus='virtio'/></disk>" for path, dev in disks)
    channel = (f"<channel type='unix'><source mode='bind' path='{console.with_name(console.stem + '-agent.sock')}'/>"
               "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>") if agent else ""
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    {items}
    <serial type='unix'><source mode='bind' path='{console}'/><target port='0'/></serial>
    {channel}
    {"<interface type='user'><model type='virtio'/></interface>" if nic else ""}
    <memballoon model='none'/>
  </devices>
</domain>"""


class Console:
    """The guest's serial console: send one shell command, wait for its ``DONE <id> rc=N`` line."""

    def __init__(self, path: Path, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.connect(str(path))
                break
            except OSError:
                self._sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.text = ""
        self._n = 0
        self._wait_ready(deadline)

    def _read(self, until: str, deadline: float) -> re.Match:
        pattern = re.compile(until)
        while not (found := pattern.search(self.text)):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {until!r} on the console; it said: {self.text[-1500:]}")
            self._sock.settimeout(min(left, 2))
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise EOFError(f"console closed; it said: {self.text[-1500:]}")
            self.text += data.decode("utf-8", "replace")
        return found

    def _wait_ready(self, deadline: float) -> None:
        # the guest may have printed READY before we connected: ping until a command answers
        while True:
            self._n += 1
            tag = f"ping{self._n}"
            self._sock.sendall(f"{tag} true\n".encode())
            try:
                self._read(rf"{DONE} {tag} rc=\d+\s", min(deadline, time.monotonic() + 5))
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    def run(self, command: str, timeout: float = 300) -> int:
        """Run ``command`` in the guest's shell; its exit status."""
        self._n += 1
        tag = f"c{self._n}"
        self._sock.sendall(f"{tag} {command}\n".encode())
        return int(self._read(rf"{DONE} {tag} rc=(\d+)\s", time.monotonic() + timeout).group(1))

    def md5sum(self, path: str) -> str:
        """The MD5 of ``path`` (a device or a file) as the guest reads it."""
        before = len(self.text)
        if self.run(f"busybox md5sum {path}") != 0:
            raise RuntimeError(f"md5sum {path} failed in the guest: {self.text[before:][-500:]}")
        return next(w for w in self.text[before:].split() if len(w) == 32 and set(w) <= set("0123456789abcdef"))

    def close(self) -> None:
        self._sock.close()


MAX_LINE = 4000   # the guest tty's canonical line limit is 4096 bytes


def write_blocks_command(device: str, blocks: list[int], block: int = 65536, source: str = "/dev/urandom") -> str:
    """A guest shell command writing ``source`` data over the ``block``-sized blocks ``blocks`` of
    ``device`` (one busybox dd per run of consecutive blocks), then flushing to the disk. Longer than a
    console line allows: a ValueError (split the blocks)."""
    runs: list[tuple[int, int]] = []
    for b in sorted(set(blocks)):
        if runs and runs[-1][0] + runs[-1][1] == b:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((b, 1))
    items = " ".join(f"{s}:{n}" for s, n in runs)
    command = (f"for r in {items}; do busybox dd if={source} of={device} bs={block} seek=${{r%:*}} "
               f"count=${{r#*:}} conv=notrunc 2>/dev/null || exit 1; done; busybox sync")
    if len(command) > MAX_LINE:
        raise ValueError(f"{len(blocks)} blocks make a command line too long for the console")
    return command


def new_disk(path: Path, size: int, owner: tuple[int, int] | None = None) -> Path:
    run(["qemu-img", "create", "-q", "-f", "qcow2", path, str(size)])
    if owner:
        os.chown(path, *owner)
    return path


def copy_root(dest: Path, owner: tuple[int, int] | None = None) -> Path:
    shutil.copyfile(source_image(), dest)
    os.chmod(dest, 0o644)
    if owner:
        os.chown(dest, *owner)
    return dest


@dataclass
class RunningGuest:
    name: str
    root: Path          # vda: a copy of the command-loop guest
    data: Path          # vdb: an empty qcow2 data disk
    console: Console


@contextlib.contextmanager
def running_guest(daemon, name: str, data_size: int, workdir: Path | None = None, *, agent: bool = True,
                  nic: bool = False, prepare=None) -> Iterator[RunningGuest]:
    """The command-loop guest ``name`` running on the private libvirtd ``daemon`` (tests/guest/libvirtd.py):
    its root disk (vda) and a new ``data_size`` qcow2 data disk (vdb) in ``workdir`` (the daemon's by
    default), owned by the daemon's user, ``prepare(data_disk)`` called before the start; yields once its
    console answers. On exit the console is closed and the domain undefined (destroyed; its disks stay)."""
    from vmferry.tools.libvirt import connect

    work = workdir or daemon.workdir
    own = (daemon.uid, daemon.gid)
    root = copy_root(work / f"{name}-root.qcow2", own)
    data = new_disk(work / f"{name}-data.qcow2", data_size, own)
    if prepare is not None:
        prepare(data)
    console = None
    try:
        with connect(daemon.uri) as conn:
            conn.define(domain_xml(name, [(root, "vda"), (data, "vdb")], work / f"{name}.sock", agent=agent, nic=nic))
            conn.start(name)
        console = Console(work / f"{name}.sock")
        yield RunningGuest(name, root, data, console)
    finally:
        if console is not None:
            console.close()
        with connect(daemon.uri) as conn:
            if name in conn.names():
                conn.undefine(name)
