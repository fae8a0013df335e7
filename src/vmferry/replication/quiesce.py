"""Quiescing running domains for a recovery point: freeze their file systems through the QEMU guest
agent (libvirt's ``virDomainFSFreeze``), take the point, thaw (``virDomainFSThaw``).

When the agent answers and freezes at least one file system, that VM's part of the point is
*application*-consistent; otherwise (no agent channel, agent not running in the guest, agent error or
timeout) the point is taken anyway, *crash*-consistent, and :attr:`Freeze.reason` says why. A thaw
always follows a freeze, even when taking the point fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from vmferry.replication.model import Consistency
from vmferry.tools.libvirt import binding, message

AGENT_TIMEOUT = 10  # seconds libvirt waits for the guest agent's answer


@dataclass(frozen=True)
class Freeze:
    """What freezing one domain gave."""
    domain: str
    consistency: Consistency
    filesystems: int = 0          # file systems the agent froze
    reason: str = ""              # why the VM is only crash-consistent


def freeze(dom) -> Freeze:
    """Freeze every file system of the running domain ``dom`` (a ``virDomain``) through its agent."""
    libvirt = binding()
    name = dom.name()
    try:
        try:
            dom.agentSetResponseTimeout(AGENT_TIMEOUT, 0)
        except (libvirt.libvirtError, AttributeError):
            pass   # no agent channel: fsFreeze below says so
        frozen = dom.fsFreeze(None, 0)
    except libvirt.libvirtError as exc:
        return Freeze(name, "crash", reason=f"guest agent did not freeze: {message(exc)}")
    if frozen <= 0:
        thaw(dom)
        return Freeze(name, "crash", reason="guest agent froze no file system")
    return Freeze(name, "application", frozen)


def thaw(dom) -> str:
    """Thaw the domain's file systems; '' or libvirt's message when the thaw failed (the agent thaws by
    itself after its own timeout)."""
    libvirt = binding()
    try:
        dom.fsThaw(None, 0)
    except libvirt.libvirtError as exc:
        return message(exc)
    return ""


@contextmanager
def quiesced(domains: Sequence, *, enabled: bool = True) -> Iterator[list[Freeze]]:
    """Freeze every domain of ``domains`` (``virDomain`` objects), yield what each gave, thaw those that
    froze. With ``enabled`` false nothing is asked of the guests: every VM is crash-consistent."""
    if not enabled:
        yield [Freeze(d.name(), "crash", reason="quiescing not asked for") for d in domains]
        return
    done: list[Freeze] = []
    try:
        for dom in domains:
            done.append(freeze(dom))
        yield done
    finally:
        for dom, result in zip(domains, done, strict=False):
            if result.consistency == "application":
                thaw(dom)
