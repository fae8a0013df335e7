"""Failback: after a reprotect, a planned failover back to the original site, surroundings included.

    report = failback(state_dir, "shop", shutdown_timeout=120)

The reprotected record (source: the recovery site's running copies; target: the original site) is failed
over *planned* by :func:`vmferry.recovery.failover_steps.failover`, the same steps as any planned failover:

1. the copies at the recovery site are shut down (cleanly through their guest agent or ACPI, powered off
   after ``shutdown_timeout``); their definitions stay (the old source a later reprotect updates);
2. the final point is taken from them (started paused, incremental from the reprotect's checkpoint):
   every write is in it, zero data loss;
3. the application is launched at the original site from that point, boot group by boot group, under the
   original source domains' names, each VM proved;
4. the move plan's surroundings (recovery site -> original site: DNS, load balancer, nftables, locator) are
   applied and verified, then the application checks run.

The failover record and report are the failover's (``kind: failover-planned``); a failback is refused for
an application that was not reprotected (it already runs at its original site).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from vmferry.errors import RecoveryError
from vmferry.recovery.reprotect import reversed_of
from vmferry.replication.store import Store

Say = Callable[[str], None]


def failback_request(state: str | os.PathLike, app: str, *, timeout: float = 300.0, shutdown_timeout: float = 120.0,
                     domain_type: str | None = None):
    """The planned :class:`~vmferry.recovery.failover_steps.FailoverRequest` that brings ``app`` home."""
    from vmferry.recovery.failover_steps import FailoverRequest

    group = Store(state).load(app)
    if reversed_of(group) is None:
        raise RecoveryError(f"application {app!r} was not reprotected: it runs at its original site already")
    return FailoverRequest(app, group.target_site, "planned", timeout=timeout, shutdown_timeout=shutdown_timeout,
                           domain_type=domain_type)


def failback(state: str | os.PathLike, app: str, *, timeout: float = 300.0, shutdown_timeout: float = 120.0,
             domain_type: str | None = None, say: Say | None = None) -> dict:
    """Fail ``app`` back (see the module's description); the failover report (a JSON document)."""
    from vmferry.recovery.failover_steps import failover

    request = failback_request(state, app, timeout=timeout, shutdown_timeout=shutdown_timeout,
                               domain_type=domain_type)
    return failover(state, request, say=say or (lambda _m: None))
