"""The burst test guest: the recovery tests' serving guest (tests/recovery/serviceguest.py) with an
identity to generalize and a page that tells it. The image carries the identity of "the original VM"
(``/etc/machine-id`` ORIGINAL_MACHINE_ID, ``/etc/hostname`` ``web``, an SSH host key file); its init takes
its hostname from ``/etc/hostname`` (the OVF environment's ``vmferry.hostname`` when that is empty), names
itself on ``/`` ("vmferry test service <hostname>") and writes ``/identity.txt``: machine-id, hostname,
the MAC of eth0, its address and the SSH host key files — read by the tests from the guest itself.

Cached beside the built guests, keyed by the service image and :data:`INIT`."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.guestimage.derived import derived_image
from tests.recovery import serviceguest

ORIGINAL_MACHINE_ID = "0123456789abcdef0123456789abcdef"
_NAME = "name=$(prop vmferry.hostname)\n"
_PAGE = 'echo "vmferry test service ${name:-unnamed}" > /tmp/www/index.html\n'
INIT = serviceguest.INIT.replace(_NAME, """name=$(cat /etc/hostname 2>/dev/null)
[ -n "$name" ] || name=$(prop vmferry.hostname)
busybox hostname "$name"
""").replace(_PAGE, _PAGE + """{
  echo "machine-id=$(cat /etc/machine-id 2>/dev/null)"
  echo "hostname=$(busybox hostname)"
  echo "mac=$(cat /sys/class/net/eth0/address)"
  echo "address=$(busybox ip -4 -o addr show dev eth0 | sed -n 's/.* inet \\([0-9.]*\\).*/\\1/p' | head -n 1)"
  echo "ssh-keys=$(ls /etc/ssh 2>/dev/null | grep ssh_host_ | tr '\\n' ' ')"
} > /tmp/www/identity.txt
""")
assert INIT != serviceguest.INIT and "identity.txt" in INIT and "busybox hostname \"$name\"" in INIT


def burst_image() -> Path:
    base = serviceguest.service_image()
    key = hashlib.sha256(str(base).encode() + INIT.encode() + ORIGINAL_MACHINE_ID.encode()).hexdigest()[:16]
    return derived_image("burstguest", key, INIT, {}, base=base, contents={
        "/etc/machine-id": ORIGINAL_MACHINE_ID + "\n", "/etc/hostname": "web\n",
        "/etc/ssh/ssh_host_ed25519_key": "not a real key: the original VM's host key\n"})


def identity(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
