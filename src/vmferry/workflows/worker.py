"""Workers: the processes that run vmferry's workflows and activities.

* the **control worker** (queue ``vmferry``) runs the workflows' code and the activities that talk to
  Temporal itself (schedules); ``vmferry serve`` runs one in its own process;
* a **site worker** (``vmferry worker --site S``, on each host that holds disks of site S) runs the
  site's steps on ``vmferry.site.S`` and, on a dedicated worker bound to ``vmferry.site.S.copy``, the
  disk copies, at most ``max_copies`` at a time on this host.

:func:`run_workers` runs the chosen workers until ``stop`` is set, then shuts them down (an
activity still copying is left to its heartbeat timeout and resumes on another attempt).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from temporalio.worker import Worker

from vmferry.workflows.activities import ReplicationActivities, ReplicationLibrary
from vmferry.workflows.endpoint import CONTROL_QUEUE, check_site, copy_queue, site_queue

DEFAULT_MAX_COPIES = 2


def worker_identity(sites: Sequence[str], workflows: bool) -> str:
    """``pid@host`` and what the process serves: what a run's history names as the worker."""
    roles = ",".join([f"site={s}" for s in sites] + (["workflows"] if workflows else []))
    return f"{os.getpid()}@{socket.gethostname()} vmferry[{roles}]"


@dataclass(frozen=True)
class WorkerPlan:
    """What one process serves."""

    sites: tuple[str, ...] = ()
    workflows: bool = False
    max_copies: int = DEFAULT_MAX_COPIES

    def __post_init__(self) -> None:
        for site in self.sites:
            check_site(site)
        if self.max_copies < 1:
            raise ValueError("at least one concurrent copy per host")


def build_workers(client, plan: WorkerPlan, library: ReplicationLibrary | None,
                  executor: ThreadPoolExecutor) -> list[Worker]:
    from vmferry.workflows import burst, failover, recovery
    from vmferry.workflows.protection import ProtectWorkflow, SyncWorkflow
    from vmferry.workflows.schedules import ScheduleActivities

    identity = worker_identity(plan.sites, plan.workflows)
    workers: list[Worker] = []
    if plan.workflows:
        workers.append(Worker(client, task_queue=CONTROL_QUEUE, workflows=[SyncWorkflow, ProtectWorkflow, *recovery.WORKFLOWS,
                                                                           *failover.WORKFLOWS, *burst.WORKFLOWS],
                              activities=ScheduleActivities(client).activities(), identity=identity,
                              sticky_queue_schedule_to_start_timeout=timedelta(seconds=3)))
    if plan.sites:
        if library is None:
            raise ValueError("a site worker needs the replication library")
        acts = ReplicationActivities(library)
        site_acts = acts.site_activities()
        store = getattr(library, "store", None)   # the real library: recovery runs over the same state dir
        if store is not None:
            site_acts += recovery.RecoveryActivities(recovery.StoreRecoveryLibrary(store.root)).activities()
            site_acts += failover.FailoverActivities(store.root, client, asyncio.get_running_loop()).site_activities()
            site_acts += burst.BurstActivities(burst.StoreBurstLibrary(store.root)).activities()
        for site in plan.sites:
            workers.append(Worker(client, task_queue=site_queue(site), activities=site_acts,
                                  activity_executor=executor, max_concurrent_activities=4, identity=identity,
                                  max_heartbeat_throttle_interval=timedelta(seconds=1),
                                  default_heartbeat_throttle_interval=timedelta(seconds=1)))
            workers.append(Worker(client, task_queue=copy_queue(site), activities=acts.copy_activities(),
                                  activity_executor=executor, max_concurrent_activities=plan.max_copies,
                                  identity=identity, max_heartbeat_throttle_interval=timedelta(seconds=1),
                                  default_heartbeat_throttle_interval=timedelta(seconds=1)))
    return workers


async def run_workers(client, plan: WorkerPlan, library: ReplicationLibrary | None,
                      stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
    """Run the workers of ``plan`` until ``stop`` is set."""
    threads = len(plan.sites) * (plan.max_copies + 4) + 1
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vmferry-activity") as executor:
        workers = build_workers(client, plan, library, executor)
        tasks = [asyncio.ensure_future(w.run()) for w in workers]
        if ready is not None:
            ready.set()
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        stopper.cancel()
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()
