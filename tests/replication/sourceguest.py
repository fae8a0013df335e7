"""A running source guest for the replication tests and bench: the project's small virtio test guest
(tests/guestimage/build.py) whose ``/sbin/init`` is replaced by a command loop on its serial console, so
a test makes the *guest* write to its disks (busybox ``dd`` inside the VM) between two syncs.

The derived image is a qcow2 (persistent dirty bitmaps need qcow2), cached beside the built guest and
keyed by the base image and :data:`INIT`. Each domain gets its own copy of it (about 100 MiB) plus any
data disks the test asks for; the console is a Unix socket QEMU listens on (:class:`Console`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

from tests.guestimage import build as _build
from vmferry.tools.proc import run

READY = "VMFERRY-REPL-READY"
DONE = "VMFERRY-REPL-DONE"
INIT = r"""#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
exec </dev/ttyS0 >/dev/ttyS0 2>&1
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


def console_module(base) -> Path:
    found = list((_build.cache_dir() / "extract").glob(
        f"linux-image-*/lib/modules/{base.kernel_version}/kernel/drivers/char/virtio_console.ko"))
    if not found:
        raise RuntimeError("virtio_console.ko is not in the test guest's kernel package")
    return found[0]


def source_image() -> Path:
    """The cached qcow2 of the command-loop guest (built once, with libguestfs)."""
    from vmferry.tools.guestfs import binding, guestfs_env

    base = _build.build("virtio")
    cache = _build.cache_dir()
    libs = agent_libraries()
    key = hashlib.sha256((base.image + INIT + repr(sorted(libs.items()))).encode()).hexdigest()[:16]
    out = cache / f"replsource-{key}.qcow2"
    with _build._locked(cache / ".replsource.lock"):
        if out.exists():
            return out
        with tempfile.TemporaryDirectory(prefix="vmferry-replsource-", dir=cache) as tmp:
            img = Path(tmp) / "disk.qcow2"
            run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", base.image, img])
            for key, value in guestfs_env().items():
                os.environ.setdefault(key, value)
            g = binding().GuestFS(python_return_dict=True)
            try:
                g.add_drive_opts(str(img), format="qcow2")
                g.launch()
                g.mount("/dev/sda1", "/")
                g.write("/sbin/init", INIT)
                g.chmod(0o755, "/sbin/init")
                # the real qemu-guest-agent (its package files are in the guest) with the shared
                # libraries it needs, from this Debian 12 host, and the virtio console module
                g.mkdir_p("/lib/vmferry")
                g.upload(str(console_module(base)), "/lib/vmferry/virtio_console.ko")
                for guest_path, host_path in agent_libraries().items():
                    g.mkdir_p(os.path.dirname(guest_path))
                    g.upload(host_path, guest_path)
                    g.chmod(0o755, guest_path)
                g.umount_all()
                g.shutdown()
            finally:
                g.close()
            os.chmod(img, 0o444)
            os.replace(img, out)
    return out


def domain_xml(name: str, disks: list[tuple[Path, str]], console: Path, *, memory_mib: int = 256,
               agent: bool = True) -> str:
    """A domain running the guest on ``disks`` (qcow2, virtio), its console on the Unix socket
    ``console``; with ``agent`` a guest-agent channel (the guest then starts qemu-ga)."""
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
