"""The failover tests' guest: the serving test guest (:mod:`tests.recovery.serviceguest`) that also keeps
data. Its ``/sbin/init`` mounts the root file system read-write, serves ``/var/vmferry-data`` (as it was
at boot) at ``http://ADDRESS/data.txt``, runs shell commands sent on its serial console (the command loop
of :mod:`tests.replication.sourceguest`, so :class:`~tests.replication.sourceguest.Console` drives it),
and its guest agent also answers ``guest-shutdown`` (sync, file system read-only, power off): libvirt's
clean shutdown through the agent. Cached like the others, keyed by the service image and :data:`INIT`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from tests.guestimage import build as _build
from tests.recovery import serviceguest
from vmferry.tools.proc import run

DATA = "/var/vmferry-data"
INIT = r"""#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -o remount,rw /
echo "VMFERRY-SVC-BOOTED"
insmod /lib/vmferry/virtio_console.ko || echo "VMFERRY-SVC no virtio_console"
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
name=$(prop vmferry.hostname)
busybox ip link set lo up
busybox ip link set eth0 up
[ -n "$addr" ] && busybox ip addr add "$addr" dev eth0
[ -n "$gw" ] && busybox ip route add default via "$gw"
echo "VMFERRY-SVC-NET eth0 ${addr:-none} gw ${gw:-none}"
mkdir -p /tmp/www
echo "vmferry test service ${name:-unnamed}" > /tmp/www/index.html
echo ok > /tmp/www/health
if [ -f /var/vmferry-data ]; then cp /var/vmferry-data /tmp/www/data.txt; else echo none > /tmp/www/data.txt; fi
busybox httpd -p 80 -h /tmp/www
for p in $(prop vmferry.test.tcp | tr ',' ' '); do busybox httpd -p "$p" -h /tmp/www; done
port=
for p in /sys/class/virtio-ports/*; do
  [ -f "$p/name" ] && [ "$(cat "$p/name")" = org.qemu.guest_agent.0 ] && port=/dev/$(busybox basename "$p")
done
if [ -n "$port" ]; then
  (
    while :; do
      exec 3<>"$port"
      while read -t 15 -r line <&3; do
        case "$line" in
          *guest-sync*) id=$(echo "$line" | sed -n 's/.*"id" *: *\([0-9]*\).*/\1/p'); echo "{\"return\": $id}" >&3 ;;
          *guest-ping*) echo '{"return": {}}' >&3 ;;
          *guest-shutdown*) echo "VMFERRY-SVC-SHUTDOWN" > /dev/ttyS0; busybox sync; mount -o remount,ro /; poweroff -f ;;
          *) echo '{"error": {"class": "CommandNotFound", "desc": "vmferry test agent"}}' >&3 ;;
        esac
      done
      exec 3<&-
    done
  ) &
fi
(
  exec </dev/ttyS0 >/dev/ttyS0 2>&1
  busybox stty -echo
  while read -r id cmd; do
    sh -c "$cmd"
    echo "VMFERRY-REPL-DONE $id rc=$?"
  done
) &
echo "VMFERRY-SVC-SERVING agent=${port:-none}"
while :; do sleep 3600; done
"""


def app_image() -> Path:
    """The cached qcow2 of the failover guest (built once from the serving guest, with libguestfs)."""
    from vmferry.tools.guestfs import binding, guestfs_env

    base = serviceguest.service_image()
    cache = _build.cache_dir()
    key = hashlib.sha256((str(base) + INIT).encode()).hexdigest()[:16]
    out = cache / f"recoveryapp-{key}.qcow2"
    with _build._locked(cache / ".recoveryapp.lock"):
        if out.exists():
            return out
        with tempfile.TemporaryDirectory(prefix="vmferry-recapp-", dir=cache) as tmp:
            img = Path(tmp) / "disk.qcow2"
            run(["qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", base, img])
            for k, v in guestfs_env().items():
                os.environ.setdefault(k, v)
            g = binding().GuestFS(python_return_dict=True)
            try:
                g.add_drive_opts(str(img), format="qcow2")
                g.launch()
                g.mount("/dev/sda1", "/")
                g.write("/sbin/init", INIT)
                g.chmod(0o755, "/sbin/init")
                g.umount_all()
                g.shutdown()
            finally:
                g.close()
            os.chmod(img, 0o444)
            os.replace(img, out)
    return out


if __name__ == "__main__":
    print(app_image())
