"""Apply a plan's steps to real servers, with a journal so that applying again is safe.

The journal (JSON, written atomically after every step) records each applied step's id and digest.
A step whose digest is in the journal is skipped without contacting anything, so a second
``--apply`` changes nothing; a run that failed midway records what it did and the next run does
the rest. Every executor is itself idempotent (it reads the current state first), so a step that
succeeded but was not journaled (a crash between the two) is harmless when run again.

One apply of a journal at a time: the run holds an exclusive ``flock`` on ``<journal>.lock`` while it
lives; a second run of the same journal is refused at once (two runs would each rewrite the journal from
what they read at their start, and one would lose the other's steps).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vmferry.errors import PlanError, VmferryError
from vmferry.plans.model import Site
from vmferry.plans.plan import Plan, Step
from vmferry.tools.files import replace_file


@dataclass
class StepResult:
    id: str
    status: str                     # applied, skipped (journal), failed, pending (not reached)
    detail: str = ""
    seconds: float = 0.0            # the step's own time: executor and journal record


@dataclass
class ApplyReport:
    journal: str
    results: list[StepResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(r.status == "failed" for r in self.results)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


class Journal:
    def __init__(self, path: str | os.PathLike, plan: Plan) -> None:
        self.path = Path(path)
        self.key = {"app": plan.app, "from": plan.source, "to": plan.target}
        self.done: dict[str, dict] = {}
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PlanError(f"cannot read the apply journal: {exc}", path=self.path) from exc
        if not isinstance(data, dict) or not isinstance(data.get("done"), dict):
            raise PlanError("the apply journal is not a vmferry journal", path=self.path)
        if {k: data.get(k) for k in self.key} != self.key:
            raise PlanError(f"the apply journal belongs to {data.get('app')} {data.get('from')}->{data.get('to')}, "
                            "not to this plan (give another --state)", path=self.path)
        self.done = data["done"]

    def is_done(self, step: Step) -> bool:
        return self.done.get(step.id, {}).get("digest") == step.digest

    def record(self, step: Step, detail: str) -> None:
        self.done[step.id] = {"digest": step.digest, "at": time.time(), "detail": detail}
        doc = json.dumps({**self.key, "done": self.done}, indent=1, sort_keys=True)
        try:
            replace_file(self.path, doc + "\n", mode=0o600)
        except OSError as exc:
            raise PlanError(f"cannot write the apply journal: {exc.strerror}", path=self.path) from exc


def _dns(step: Step, site: Site) -> str:
    from vmferry.plans.dnsupdate import ensure_rrset

    p = step.params
    return ensure_rrset(site.dns, p["zone"], p["name"], p["type"], p["values"], p["ttl"])


def _locator(step: Step, site: Site) -> str:
    from vmferry.locator.client import LocatorClient
    from vmferry.locator.model import Locator

    cfg, p = site.locator, step.params
    with LocatorClient(cfg.url, key_id=cfg.key_id, secret=cfg.secret) as client:
        now = client.resolve(p["eid"], instance_id=p["instance_id"])
        if now.mapping and now.mapping.eid.text == p["eid"] and [loc.address for loc in now.mapping.locators] == [
                p["locator"]] and now.mapping.ttl == p["ttl"]:
            return "already in place"
        client.register(p["eid"], [Locator(p["locator"])], ttl=p["ttl"], expires_in=p["expires_in"],
                        instance_id=p["instance_id"])
    return "registered"


def _lb(step: Step, site: Site) -> str:
    from vmferry.plans.haproxy import RuntimeApi

    p = step.params
    return RuntimeApi(site.lb.runtime).ensure_member(p["backend"], p["server"], p["address"], p["port"],
                                                     check=p["check"])


def _firewall(step: Step, site: Site) -> str:
    from vmferry.plans.nft import write_ruleset

    return "written" if write_ruleset(step.params["path"], step.params["text"]) else "already in place"


EXECUTORS: dict[str, Callable[[Step, Site], str]] = {"dns": _dns, "locator": _locator, "lb": _lb,
                                                      "firewall": _firewall}


def default_journal(manifest: str | os.PathLike, plan: Plan) -> Path:
    path = Path(manifest)
    return path.with_name(f"{path.stem}.{plan.source}-to-{plan.target}.state.json")


@contextlib.contextmanager
def journal_lock(journal_path: str | os.PathLike) -> Iterator[None]:
    """Hold the journal's run lock, or refuse: another apply of it is running."""
    path = Path(f"{os.fspath(journal_path)}.lock")
    try:
        fh = open(path, "a")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise PlanError(f"cannot lock the apply journal: {exc.strerror}", path=path) from exc
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise PlanError("another apply of this plan is running (its journal is locked); let it end first",
                            path=os.fspath(journal_path)) from exc
        yield


def apply_plan(plan: Plan, site: Site, journal_path: str | os.PathLike,
               progress: Callable[[StepResult], None] | None = None) -> ApplyReport:
    """Run the plan's steps in order; stop at the first failure (the rest stay pending)."""
    with journal_lock(journal_path):
        return _apply(plan, site, journal_path, progress)


def _apply(plan: Plan, site: Site, journal_path: str | os.PathLike,
           progress: Callable[[StepResult], None] | None) -> ApplyReport:
    journal = Journal(journal_path, plan)
    report = ApplyReport(str(journal_path))
    failed = False
    for step in plan.steps:
        if failed:
            result = StepResult(step.id, "pending", step.summary)
        elif journal.is_done(step):
            result = StepResult(step.id, "skipped", "already applied (journal)")
        else:
            start = time.monotonic()
            try:
                detail = EXECUTORS[step.kind](step, site)
            except VmferryError as exc:
                failed = True
                result = StepResult(step.id, "failed", str(exc), time.monotonic() - start)
            else:
                journal.record(step, detail)
                result = StepResult(step.id, "applied", detail, time.monotonic() - start)
        report.results.append(result)
        if progress:
            progress(result)
    return report
