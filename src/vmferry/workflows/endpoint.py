"""Where vmferry's Temporal service is, how to reach it, and the names of its task queues.

The address of the service, first found wins:

1. the one given explicitly (the command line's choice);
2. ``$VMFERRY_TEMPORAL`` (``HOST:PORT``);
3. the local server ``vmferry serve`` started for the state directory (recorded in
   ``temporal.json`` while it runs, see :mod:`vmferry.workflows.server`).

None of them: no Temporal service is configured and commands run the library directly.

Task queues (one fact, one place):

* ``vmferry`` — workflow tasks (and the activities that talk to Temporal itself, such as schedules);
* ``vmferry.site.<S>`` — the other activities that must run at site S (begin, seal, abandon a point,
  protect);
* ``vmferry.site.<S>.copy`` — copies of the disks site S holds, served by a dedicated worker whose
  ``max_concurrent_activities`` is the host's limit of concurrent copies.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vmferry.errors import UsageError, WorkflowError

CONTROL_QUEUE = "vmferry"
ENV_ADDRESS = "VMFERRY_TEMPORAL"
DEFAULT_NAMESPACE = "default"

_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def default_state_dir() -> Path:
    """vmferry's state directory (:func:`vmferry.replication.store.state_dir`)."""
    from vmferry.replication.store import state_dir

    return Path(state_dir())


def check_site(site: str) -> str:
    if not _SITE.match(site or ""):
        raise UsageError(f"{site!r} is not a site name (letters, digits, '.', '_', '-'; at most 63)")
    return site


def site_queue(site: str) -> str:
    """The task queue of the activities that run at ``site``."""
    return f"{CONTROL_QUEUE}.site.{check_site(site)}"


def copy_queue(site: str) -> str:
    """The task queue of the disk copies that run at ``site`` (bounded per host)."""
    return f"{site_queue(site)}.copy"


def check_address(address: str) -> str:
    match = _ADDRESS.match(address.strip())
    if not match or not 0 < int(match.group(2)) < 65536:
        raise UsageError(f"a Temporal address is HOST:PORT, not {address!r}")
    return address.strip()


def resolve_address(explicit: str | None = None, state_dir: str | os.PathLike | None = None) -> str | None:
    """The configured Temporal address (see the module's documentation), or None."""
    if explicit:
        return check_address(explicit)
    env = os.environ.get(ENV_ADDRESS)
    if env:
        return check_address(env)
    from vmferry.workflows.server import recorded_address

    return recorded_address(state_dir if state_dir is not None else default_state_dir())


async def connect(address: str, namespace: str = DEFAULT_NAMESPACE, timeout: float = 10.0):
    """A :class:`temporalio.client.Client` connected to ``address``; failures become WorkflowError."""
    from datetime import timedelta

    from temporalio.client import Client
    from temporalio.service import RPCError

    try:
        return await Client.connect(check_address(address), namespace=namespace,
                                    connect_timeout=timedelta(seconds=timeout))
    except (RPCError, RuntimeError, OSError) as exc:
        raise WorkflowError(f"cannot reach the Temporal service at {address}: {exc}") from exc
