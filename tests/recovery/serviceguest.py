"""A serving test guest for the recovery tests: the project's small virtio test guest
(tests/guestimage/build.py) whose ``/sbin/init`` brings its NIC up with the address of the OVF
environment (``vmferry.net.0.address``/``.gateway``, the portable keys vmferry writes), serves HTTP
with busybox ``httpd`` on port 80 and on the TCP ports listed in ``vmferry.test.tcp``, and answers
the guest agent's ``guest-sync``/``guest-ping`` on the ``org.qemu.guest_agent.0`` virtio-serial port
(a few lines of busybox shell speaking qemu-ga's protocol: the Debian qemu-ga binary needs a libc the
busybox guest does not have). Then it idles, as a service does.

The derived image is a read-only qcow2 cached beside the built guest, keyed by the base image,
:data:`INIT` and the kernel module added (``virtio_console``, which the base guest does not carry).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.guestimage import build as _build
from tests.guestimage.derived import INIT_MOUNTS, derived_image, kernel_module
from vmferry.tools.proc import run

BOOTED = "VMFERRY-SVC-BOOTED"
NET = "VMFERRY-SVC-NET"
SERVING = "VMFERRY-SVC-SERVING"
# Finds the OVF environment on a CD-ROM (``prop KEY`` reads one of its properties) and reads the address
# and gateway vmferry gave eth0; NET_UP then brings the network up with them. Shared with the guests
# derived from this one (tests/recovery/appguest.py, tests/burst/burstguest.py).
OVF_ENV = r"""insmod /lib/vmferry/virtio_console.ko || echo "VMFERRY-SVC no virtio_console"
env=
for cd in /dev/sr0 /dev/sr1 /dev/sr2; do
  [ -b "$cd" ] || continue
  if mount -t iso9660 -o ro "$cd" /mnt 2>/dev/null; then
    if [ -f /mnt/ovf-env.xml ]; then env=/mnt/ovf-env.xml; break; fi
    umount /mnt
  fi
done
prop() {
  [ -n "$env" ] || return 0
  tr '\n' ' ' < "$env" | grep -o '<[^>]*Property [^>]*>' | grep "key=\"$1\"" \
    | sed -n 's/.*value="\([^"]*\)".*/\1/p' | head -n 1
}
addr=$(prop vmferry.net.0.address)
gw=$(prop vmferry.net.0.gateway)
"""
NET_UP = r"""busybox ip link set lo up
busybox ip link set eth0 up
[ -n "$addr" ] && busybox ip addr add "$addr" dev eth0
[ -n "$gw" ] && busybox ip route add default via "$gw"
echo "VMFERRY-SVC-NET eth0 ${addr:-none} gw ${gw:-none}"
"""


def agent_loop(extra_cases: str = "", comment: str = "") -> str:
    """The guest agent in busybox shell: finds the ``org.qemu.guest_agent.0`` port and answers
    ``guest-sync``/``guest-ping`` (and the ``case`` branches of ``extra_cases``) in the background. The
    port is closed and opened again after 15 s without a command: the host side then sees the agent
    appear again (one missed "port opened" event must not hide the agent for good)."""
    return r"""port=
for p in /sys/class/virtio-ports/*; do
  [ -f "$p/name" ] && [ "$(cat "$p/name")" = org.qemu.guest_agent.0 ] && port=/dev/$(busybox basename "$p")
done
if [ -n "$port" ]; then
  (
""" + comment + r"""    while :; do
      exec 3<>"$port"
      while read -t 15 -r line <&3; do
        case "$line" in
          *guest-sync*) id=$(echo "$line" | sed -n 's/.*"id" *: *\([0-9]*\).*/\1/p'); echo "{\"return\": $id}" >&3 ;;
          *guest-ping*) echo '{"return": {}}' >&3 ;;
""" + extra_cases + r"""          *) echo '{"error": {"class": "CommandNotFound", "desc": "vmferry test agent"}}' >&3 ;;
        esac
      done
      exec 3<&-
    done
  ) &
fi
"""


# (the comment stays in this guest's init as it was: it is part of the cached image's key)
INIT = INIT_MOUNTS + 'echo "VMFERRY-SVC-BOOTED"\n' + OVF_ENV + "name=$(prop vmferry.hostname)\n" + NET_UP + r"""mkdir -p /tmp/www
echo "vmferry test service ${name:-unnamed}" > /tmp/www/index.html
busybox httpd -p 80 -h /tmp/www
for p in $(prop vmferry.test.tcp | tr ',' ' '); do busybox httpd -p "$p" -h /tmp/www; done
""" + agent_loop(comment="""    # the port is closed and opened again after 15 s without a command: the host side then sees the
    # agent appear again (one missed "port opened" event must not hide the agent for good)
""") + r"""echo "VMFERRY-SVC-SERVING agent=${port:-none}"
while :; do sleep 3600; done
"""


def service_image() -> Path:
    """The cached qcow2 of the serving guest (built once, with libguestfs); read-only."""
    base = _build.build("virtio")
    module = kernel_module("virtio_console")
    key = hashlib.sha256((base.image + INIT + module.name).encode() + module.read_bytes()).hexdigest()[:16]
    return derived_image("recoveryservice", key, INIT, {"/lib/vmferry/virtio_console.ko": module})


def broken_image() -> Path:
    """A guest that never comes up on virtio: the project's ``legacy`` test guest (no virtio driver in
    its initramfs), as qcow2. It prints ``VMFERRY-ROOT-MISSING`` on its console and powers off."""
    base = _build.build("legacy")
    cache = _build.cache_dir()
    key = hashlib.sha256(base.image.encode()).hexdigest()[:16]
    out = cache / f"recoverybroken-{key}.qcow2"
    with _build._locked(cache / ".recoverybroken.lock"):
        if not out.exists():
            tmp = out.with_name(out.name + ".tmp")
            run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", base.image, tmp])
            os.chmod(tmp, 0o444)
            os.replace(tmp, out)
    return out
