"""Run a vmferry worker on this host for the sites whose disks it holds.

Disk copies of site S go to this host's copy queue and run at most --max-copies at a time here; the
site's other steps (begin, seal, abandon a recovery point) run here too. --workflows also runs the
workflows' own code (``vmferry serve`` does that by default). The Temporal service is --temporal, or
$VMFERRY_TEMPORAL, or the local server ``vmferry serve`` started for the state directory.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from vmferry.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", action="append", default=[], metavar="SITE",
                        help="a site whose disks this host holds (repeatable)")
    parser.add_argument("--workflows", action="store_true", help="also run the workflows' code")
    parser.add_argument("--max-copies", type=int, default=None, metavar="N",
                        help="disk copies at once on this host (default 2)")
    parser.add_argument("--temporal", metavar="HOST:PORT", help="the Temporal service")
    parser.add_argument("--namespace", default=None, help="Temporal namespace (default: default)")
    parser.add_argument("--state-dir", metavar="DIR", help="vmferry's state directory")


async def serve_workers(address: str, namespace: str, plan, library, *, announce=None) -> None:
    """Connect and run the workers of ``plan`` until SIGINT/SIGTERM (shared by worker and serve)."""
    from vmferry.workflows.endpoint import connect
    from vmferry.workflows.worker import run_workers

    client = await connect(address, namespace)
    stop, ready = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.ensure_future(run_workers(client, plan, library, stop, ready))
    await asyncio.wait([runner, asyncio.ensure_future(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
    if ready.is_set() and announce is not None:
        announce()
    await runner


def run(args) -> int:
    from vmferry.workflows.activities import default_library
    from vmferry.workflows.endpoint import DEFAULT_NAMESPACE, default_state_dir, resolve_address
    from vmferry.workflows.worker import DEFAULT_MAX_COPIES, WorkerPlan

    if not args.site and not args.workflows:
        raise UsageError("name at least one site whose disks this host holds, or run the workflows")
    state_dir = args.state_dir or default_state_dir()
    address = resolve_address(args.temporal, state_dir)
    if address is None:
        raise UsageError("no Temporal service: start 'vmferry serve', or give its address")
    max_copies = DEFAULT_MAX_COPIES if args.max_copies is None else args.max_copies
    if max_copies < 1:
        raise UsageError(f"the number of concurrent copies must be at least 1, not {max_copies}")
    plan = WorkerPlan(tuple(args.site), args.workflows, max_copies)
    library = default_library(state_dir) if plan.sites else None

    def announce() -> None:
        print(f"vmferry worker: serving {', '.join(plan.sites) or 'workflows'} on {address}", file=sys.stderr,
              flush=True)

    asyncio.run(serve_workers(address, args.namespace or DEFAULT_NAMESPACE, plan, library, announce=announce))
    return 0
