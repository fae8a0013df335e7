"""The failover tests' guest: the serving test guest (:mod:`tests.recovery.serviceguest`) that also keeps
data. Its ``/sbin/init`` mounts the root file system read-write, serves ``/var/vmferry-data`` (as it was
at boot) at ``http://ADDRESS/data.txt``, runs shell commands sent on its serial console (the command loop
of :mod:`tests.replication.sourceguest`, so :class:`~tests.replication.sourceguest.Console` drives it),
and its guest agent also answers ``guest-shutdown`` (sync, file system read-only, power off): libvirt's
clean shutdown through the agent, and ``vmferry-write-data`` (``{"execute": "vmferry-write-data",
"arguments": {"data": "TEXT"}}``, TEXT of ``[A-Za-z0-9._-]``: written to ``/var/vmferry-data`` and synced),
which writes data in a guest a recovery launched (its serial console is a log file, not a command loop).
Cached like the others, keyed by the service image and :data:`INIT`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.guestimage.derived import INIT_MOUNTS, derived_image
from tests.recovery import serviceguest

DATA = "/var/vmferry-data"
INIT = INIT_MOUNTS + 'mount -o remount,rw /\necho "VMFERRY-SVC-BOOTED"\n' + serviceguest.OVF_ENV + "name=$(prop vmferry.hostname)\n" + serviceguest.NET_UP + r"""mkdir -p /tmp/www
echo "vmferry test service ${name:-unnamed}" > /tmp/www/index.html
echo ok > /tmp/www/health
if [ -f /var/vmferry-data ]; then cp /var/vmferry-data /tmp/www/data.txt; else echo none > /tmp/www/data.txt; fi
busybox httpd -p 80 -h /tmp/www
for p in $(prop vmferry.test.tcp | tr ',' ' '); do busybox httpd -p "$p" -h /tmp/www; done
""" + serviceguest.agent_loop(r"""          *guest-shutdown*) echo "VMFERRY-SVC-SHUTDOWN" > /dev/ttyS0; busybox sync; mount -o remount,ro /; poweroff -f ;;
          *vmferry-write-data*)
            d=$(echo "$line" | sed -n 's/.*"data" *: *"\([A-Za-z0-9._-]*\)".*/\1/p')
            if [ -n "$d" ] && echo "$d" > /var/vmferry-data && busybox sync; then echo '{"return": {}}' >&3
            else echo '{"error": {"class": "GenericError", "desc": "vmferry test agent: not written"}}' >&3; fi ;;
""") + r"""(
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
    base = serviceguest.service_image()
    key = hashlib.sha256((str(base) + INIT).encode()).hexdigest()[:16]
    return derived_image("recoveryapp", key, INIT, {}, base=base)


def write_data(uri: str, domain: str, text: str) -> None:
    """Write ``text`` to :data:`DATA` in the running guest ``domain`` through its guest agent (synced)."""
    import json
    import time

    from vmferry.errors import TargetError
    from vmferry.tools import libvirt as lv

    command = json.dumps({"execute": "vmferry-write-data", "arguments": {"data": text}})
    deadline = time.monotonic() + 60
    with lv.connect(uri) as conn:
        while True:
            try:
                answer = json.loads(conn.agent_command(domain, command, timeout=30))
                break
            except TargetError as exc:
                # the agent closes and opens its port again after 15 s without a command: libvirt then says
                # "not connected" for a moment
                if "not connected" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    if "return" not in answer:
        raise RuntimeError(f"{domain}: the guest did not write its data: {answer}")


if __name__ == "__main__":
    print(app_image())
