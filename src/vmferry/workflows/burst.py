"""The burst policy's control loop as a Temporal workflow: the workflow keeps time, each round is an activity.

:class:`BurstWatchWorkflow` runs ``rounds`` rounds ``interval`` seconds apart (durable timers: a worker or
server restart resumes the loop where it was). Each round is the activity ``burst_round`` on the burst site's
queue (``vmferry.site.<S>``), which calls :meth:`BurstLibrary.burst_round` — in production
:class:`StoreBurstLibrary`: the protection group and manifest from the state directory, the target
(:func:`vmferry.burst.target.target_from_group`) and one :func:`vmferry.burst.policy.watch_round` (read
HAProxy's metric, decide, add or remove copies, record the decision). A round that adds copies lasts until
they serve (boot under TCG: minutes), so its timeout is the copies' proof timeout plus a margin. The result
is the list of decisions (``Decision.to_dict()``), the same ones the burst record keeps.

Workers register :data:`WORKFLOWS` on the control queue and :meth:`BurstActivities.activities` on each site
queue; ``vmferry worker`` and ``serve`` do (:mod:`vmferry.workflows.worker`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from vmferry.workflows.endpoint import site_queue

NON_RETRYABLE = ["BurstError", "ReplicationError", "PlanError", "UsageError", "TypeError", "ValueError", "KeyError"]


@dataclass(frozen=True)
class BurstWatchRequest:
    app: str
    component: str
    site: str
    rounds: int = 60
    interval: float = 10.0
    timeout: float = 300.0            # each copy, start to proof
    domain_type: str | None = None


class BurstLibrary(Protocol):
    def burst_round(self, request: BurstWatchRequest) -> dict: ...


class StoreBurstLibrary:
    """The real one: protection records and burst records in ``state_dir``."""

    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.state_dir = os.fspath(state_dir)

    def burst_round(self, request: BurstWatchRequest) -> dict:
        from vmferry.burst.policy import watch_round
        from vmferry.burst.target import target_from_group
        from vmferry.plans.manifest import load_app
        from vmferry.replication.store import Store

        group = Store(self.state_dir).load(request.app)
        target = target_from_group(load_app(group.manifest), group, request.component, request.site,
                                   domain_type=request.domain_type, timeout=request.timeout)
        return watch_round(target, self.state_dir).to_dict()


class BurstActivities:
    def __init__(self, library: BurstLibrary) -> None:
        self.library = library

    @activity.defn(name="burst_round")
    def burst_round(self, request: BurstWatchRequest) -> dict:
        return self.library.burst_round(request)

    def activities(self) -> list:
        return [self.burst_round]


@workflow.defn(name="BurstWatch")
class BurstWatchWorkflow:
    @workflow.run
    async def run(self, request: BurstWatchRequest) -> list[dict]:
        decisions: list[dict] = []
        for i in range(request.rounds):
            if i:
                await workflow.sleep(timedelta(seconds=request.interval))
            decisions.append(await workflow.execute_activity(
                "burst_round", request, task_queue=site_queue(request.site),
                start_to_close_timeout=timedelta(seconds=request.timeout + 300),
                retry_policy=RetryPolicy(maximum_attempts=2, non_retryable_error_types=NON_RETRYABLE),
                result_type=dict))
        return decisions


WORKFLOWS = [BurstWatchWorkflow]


def workflow_id(app: str, component: str) -> str:
    return f"vmferry-burst-{app}-{component}"
