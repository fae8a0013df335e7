"""Each copy its own identity: machine-id, hostname, MAC, SSH host keys, address.

The copy's system disk (a qcow2 overlay over the ready image) is generalized with guest repair's own
edits (:func:`vmferry.guest.unitrepair.generalize`: machine-id emptied, D-Bus id, SSH host keys, DHCP
leases and persistent-net rules removed, hostname cleared), then given its identity: a fresh
``/etc/machine-id`` (what systemd's first boot would write, here fixed in advance so it is known and
recorded) and ``/etc/hostname``. Only the overlay is written: the ready image stays as it was.
The MAC goes in the copy's domain definition, the address in its OVF environment.
"""

from __future__ import annotations

import os
import re
import uuid

from vmferry.burst.model import BurstCopy
from vmferry.errors import BurstError, VmferryError

_HOST = re.compile(r"[^a-z0-9-]+")


def hostname_for(component: str, index: int) -> str:
    base = _HOST.sub("-", component.lower()).strip("-")[:50] or "copy"
    return f"{base}-b{index}"


def new_machine_id() -> str:
    return uuid.uuid4().hex


def new_mac(used: set[str]) -> str:
    """A locally administered unicast MAC under QEMU's 52:54:00 prefix, not in ``used``."""
    for _ in range(1000):
        tail = os.urandom(3)
        mac = "52:54:00:" + ":".join(f"{b:02x}" for b in tail)
        if mac not in used:
            return mac
    raise BurstError("no free MAC address found")


def load_binding() -> None:
    """Import libguestfs' Python binding once, before threads generalize copies side by side (two threads
    importing it at the same time can see a half-initialized module)."""
    from vmferry.tools.guestfs import binding

    binding()


def generalize_overlay(overlay: str, copy: BurstCopy) -> list[str]:
    """Generalize the guest on ``overlay`` and give it ``copy``'s machine-id and hostname. Returns the
    files changed (for the record and the report)."""
    from vmferry.guest import unitrepair
    from vmferry.guest.repair import Editor, RepairReport
    from vmferry.tools.guestfs import Session

    report = RepairReport(overlay, ["kvm"])
    try:
        with Session(overlay, "qcow2") as s:
            if s.inspect("type") != "linux":
                raise BurstError(f"the ready image holds a {s.inspect('type')} guest: only Linux guests are "
                                 "generalized for burst copies", path=overlay)
            ed = Editor(s, report)
            unitrepair.generalize(ed)
            ed.write("/etc/machine-id", copy.machine_id + "\n", "burst copy: its own machine-id")
            ed.write("/etc/hostname", copy.hostname + "\n", "burst copy: its own hostname")
    except BurstError:
        raise
    except VmferryError as exc:
        raise BurstError(f"cannot generalize the copy {copy.name}: {exc}") from exc
    return [c.file for c in report.changes]
