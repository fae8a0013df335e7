"""A worker process over the file-copy library: ``vmferry worker``'s own code path
(:func:`vmferry.cli.worker_cmd.serve_workers`) with :class:`tests.workflows.filelib.FileCopyLibrary`.

    python -m tests.workflows.file_worker ADDRESS ROOT [--site S]... [--workflows] [--max-copies N]

Prints ``ready <identity>`` on standard output once its workers poll.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from tests.workflows.filelib import FileCopyLibrary
from vmferry.cli.worker_cmd import serve_workers
from vmferry.workflows.worker import WorkerPlan, worker_identity


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("root")
    parser.add_argument("--site", action="append", default=[])
    parser.add_argument("--workflows", action="store_true")
    parser.add_argument("--max-copies", type=int, default=2)
    args = parser.parse_args()
    plan = WorkerPlan(tuple(args.site), args.workflows, args.max_copies)

    def announce() -> None:
        print(f"ready {worker_identity(plan.sites, plan.workflows)}", flush=True)

    asyncio.run(serve_workers(args.address, "default", plan, FileCopyLibrary(args.root), announce=announce))
    sys.stdout.flush()
    os._exit(0)  # the Temporal SDK's threads can abort a finalizing interpreter (temporalio/sdk-python#300)


if __name__ == "__main__":
    main()
