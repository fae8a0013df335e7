"""Failover of a protected application to its target site, planned or after a disaster, as steps that
can each be run again without doing anything twice (the Temporal workflow runs one activity per step;
:func:`failover` runs them all in this process).

    report = failover(state, FailoverRequest("shop", "dr", "planned"))

Steps, in order (each recorded in the failover record, :mod:`vmferry.recovery.failover_record`):

1. :func:`begin` — the record; an unfinished failover of the application is resumed, a finished one
   refuses a new one (reprotect or fail back first). *Disaster*: the point (asked for, else the newest)
   is fixed here, and the source is never contacted.
2. *planned only* — :func:`stop_source_step` (clean shutdown, forced after a timeout) then
   :func:`final_sync_step` (the point nothing was written after: zero data loss).
3. :func:`launch_group` per boot group — each VM of the group under its replica's name, on the target
   site's production libvirt networks (``libvirt.networks`` of the site), on its own qcow2 layers over
   the point's (``<storage>/<app>.failover-<run>/<vm>.<disk>.qcow2``) with an OVF environment carrying
   its target addresses; then every VM of the group proves itself (guest agent, health checks). While
   it does, the next group is made ready beside it: layers, definitions, QEMU started **paused** with
   change tracking marked (no instruction of the guest runs: boot order holds), so the next launch is a
   resume — ~0.6 s of libvirt and QEMU start per VM less in the RTO (bench/recover.py). A VM made ready
   is recorded ``started`` (one start); its ``t_started`` is when it was let run. A group that fails
   leaves the next group's VMs paused; a resumed failover adopts them.
4. :func:`surroundings_step` — the move plan's DNS, HAProxy, nftables and locator steps applied and
   verified (:mod:`vmferry.recovery.surroundings`), then the application checks (pool health checks).
5. :func:`finish` — the report (``RecoveryReport``, kind ``failover-planned``/``failover-disaster``),
   kept in the record.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from vmferry.errors import RecoveryError, VmferryError
from vmferry.recovery import failover_record as rec
from vmferry.recovery.model import RecoveryPlan, RecoveryVm

Say = Callable[[str], None]


@dataclass(frozen=True)
class FailoverRequest:
    app: str
    site: str                        # the target site (the protection group's)
    mode: str                        # planned | disaster
    point_id: str | None = None      # disaster: the point to launch (None: the newest)
    timeout: float = 300.0           # per VM, from its start to its proof
    shutdown_timeout: float = 120.0  # planned: clean shutdown of the source, then forced
    domain_type: str | None = None   # kvm or qemu; None: the best the host offers


def _quiet(_msg: str) -> None:
    pass


def _load(state, app: str) -> dict:
    doc = rec.load(state, app)
    if doc is None:
        raise RecoveryError(f"application {app!r} has no failover in progress")
    return doc


def _group(state, app: str):
    from vmferry.replication.store import Store

    return Store(state).load(app)


def _app(group):
    from vmferry.plans.manifest import load_app

    return load_app(group.manifest)


def begin(state, request: FailoverRequest, *, run_id: str | None = None) -> dict:
    """Create (or resume) the application's failover record."""
    from vmferry.recovery.test import new_run_id

    if request.mode not in rec.MODES:
        raise RecoveryError(f"unknown failover mode {request.mode!r} (planned or disaster)")
    group = _group(state, request.app)
    if group.target_site != request.site:
        raise RecoveryError(f"application {request.app!r} is protected to site {group.target_site!r}, "
                            f"not {request.site!r}")
    with rec.locked(state, request.app):
        doc = rec.load(state, request.app)
        if doc is not None:
            if doc["status"] == "done":
                raise RecoveryError(f"application {request.app!r} already failed over to {doc['target_site']!r} "
                                    f"(run {doc['run']}): reprotect or fail back first")
            if (doc["mode"], doc["target_site"]) != (request.mode, request.site):
                raise RecoveryError(f"application {request.app!r} has an unfinished {doc['mode']} failover to "
                                    f"{doc['target_site']!r} (run {doc['run']}): finish it first")
            return doc
        app = _app(group)
        target = app.sites.get(group.target_site)
        if target is None or target.libvirt is None:
            raise RecoveryError(f"site {group.target_site!r} runs no VMs (no libvirt platform)", path=app.path)
        point_id, taken = None, None
        if request.mode == "disaster":
            point = group.newest if request.point_id is None else group.point(request.point_id)
            if point is None:
                have = ", ".join(p.point_id for p in group.points) or "none"
                raise RecoveryError(f"application {group.app!r} has no recovery point "
                                    f"{request.point_id or 'yet'} (points: {have})")
            point_id, taken = point.point_id, point.taken_at
        elif request.point_id is not None:
            raise RecoveryError("a planned failover launches from its own final point; a point is chosen only "
                                "for a disaster failover")
        from vmferry.replication.protect import storage_dir

        storage = storage_dir(target.libvirt)
        run = run_id or new_run_id()
        doc = {"version": rec.VERSION, "app": group.app, "run": run, "mode": request.mode,
               "source_site": group.source_site, "target_site": group.target_site,
               "source_uri": group.source_uri, "target_uri": group.target_uri, "storage": storage,
               "run_dir": os.path.join(storage, f"{group.app}.failover-{run}"),
               "requested_point": request.point_id, "point_id": point_id, "point_taken_at": taken,
               "started_at": rec.now_iso(), "t_started": time.time(), "status": "running", "error": "",
               "request": {"timeout": request.timeout, "shutdown_timeout": request.shutdown_timeout,
                           "domain_type": request.domain_type},
               "steps": {}, "vms": {},
               "apply_journal": str(rec.record_dir(state) / f"{group.app}.{run}.apply.json")}
        rec.save(state, doc)
        return doc


def stop_source_step(state, app: str, *, say: Say = _quiet) -> dict:
    from vmferry.recovery.source import stop_source

    doc = _load(state, app)
    done = rec.step_done(doc, "stop-source")
    if done is not None:
        return done
    stopped = stop_source(_group(state, app), timeout=doc["request"]["shutdown_timeout"], say=say)
    with rec.locked(state, app):
        doc = _load(state, app)
        rec.mark_step(state, doc, "stop-source", domains=stopped, t=time.time())
    return doc["steps"]["stop-source"]


def final_sync_step(state, app: str, *, say: Say = _quiet, alive=None) -> dict:
    from vmferry.recovery.source import final_sync
    from vmferry.replication.store import Store

    doc = _load(state, app)
    done = rec.step_done(doc, "final-sync")
    if done is not None:
        return done
    if rec.step_done(doc, "stop-source") is None:
        raise RecoveryError("the final sync comes after the source stopped")
    point = final_sync(_group(state, app), store=Store(state), say=say, alive=alive)
    with rec.locked(state, app):
        doc = _load(state, app)
        doc["point_id"], doc["point_taken_at"] = point.point_id, point.taken_at
        rec.mark_step(state, doc, "final-sync", point_id=point.point_id, bytes_written=point.bytes_written,
                      t=time.time())
    return doc["steps"]["final-sync"]


def recovery_plan(state, doc: dict) -> RecoveryPlan:
    from vmferry.recovery.spec import plan_from_group

    if not doc.get("point_id"):
        raise RecoveryError("the failover has no recovery point yet (the final sync did not run)")
    group = _group(state, doc["app"])
    req = doc["request"]
    return plan_from_group(_app(group), group, point_id=doc["point_id"], timeout=req["timeout"],
                           domain_type=req["domain_type"])


def group_count(state, app: str) -> int:
    return len(recovery_plan(state, _load(state, app)).groups)


def production_networks(state, doc: dict) -> dict[str, str]:
    """Target network -> the target site's production libvirt network (``libvirt.networks`` maps the
    target network, else the source network it comes from, as protect mapped the replicas' NICs)."""
    from vmferry.recovery.reprotect import move_plan

    group = _group(state, doc["app"])
    app = _app(group)
    lib = app.sites[group.target_site].libvirt
    out: dict[str, str] = {}
    for nic in move_plan(app, group).nics:      # a failback: the return home
        tn = nic.target_network or nic.source_network
        name = lib.network(tn) or lib.network(nic.source_network)
        if name:
            out.setdefault(tn, name)
    return out


def launch_group(state, app: str, index: int, *, say: Say = _quiet) -> dict:
    """Launch boot group ``index`` (0-based) and prove it; VMs already started by this failover are only
    proved again, never started twice."""
    from vmferry.recovery.proofs import Proving, console_tail, prove
    from vmferry.recovery.test import PROOF_POLL, mapped_active_networks
    from vmferry.sites import libvirt_host
    from vmferry.tools import libvirt as lv

    doc = _load(state, app)
    step = f"launch-{index + 1}"
    done = rec.step_done(doc, step)
    if done is not None:
        return done
    plan = recovery_plan(state, doc)
    if not 0 <= index < len(plan.groups):
        raise RecoveryError(f"the application has {len(plan.groups)} boot groups, not {index + 1}")
    production = production_networks(state, doc)
    with lv.connect(plan.uri) as conn:
        nets = mapped_active_networks(plan, conn, production)
        names = conn.names()                        # a group made ready ahead needs no host facts (~0.1 s)
        facts = libvirt_host.probe(conn) if any(vm.name not in names for vm in plan.vms_of(plan.groups[index])) \
            else None
        items = []
        for vm in plan.vms_of(plan.groups[index]):
            _launch_vm(state, doc, plan, vm, nets, conn, facts, say)
            doc = _load(state, app)
            v = doc["vms"][vm.name]
            started = time.monotonic() - max(0.0, time.time() - v["t_started"])
            items.append((vm, Proving(vm.name, vm.name, vm.address, vm.probes, vm.agent, vm.timeout, started)))
        t_launched = time.time()
        ahead = None
        if index + 1 < len(plan.groups):            # the next group made ready beside (module text)
            ahead = threading.Thread(target=_ready_group, args=(state, doc, plan, index + 1, nets, conn, facts, say),
                                     daemon=True)
            ahead.start()
        try:
            prove(conn, [p for _, p in items], poll=PROOF_POLL)
        finally:
            if ahead is not None:
                ahead.join()
    failed = []
    with rec.locked(state, app):
        doc = _load(state, app)
        for vm, p in items:
            v = doc["vms"][vm.name]
            v["checks"] = [c.to_dict() for c in ([p.agent_result] if p.agent_result else [])] + \
                [c.to_dict() for c in p.results.values()]
            if p.proven_at is not None:
                v["proved"], v["time_to_proof"] = True, p.proven_at - p.started
                v["t_proved"] = time.time() - (time.monotonic() - p.proven_at)
                say(f"{vm.name} proved itself in {v['time_to_proof']:.1f} s")
            else:
                v["proved"], v["failure"] = False, p.failure
                v["console_tail"] = console_tail(os.path.join(doc["run_dir"], f"{vm.name}.console.log"))
                failed.append(vm.name)
        if failed:
            doc["status"], doc["error"] = "failed", (f"boot group {index + 1} ({', '.join(plan.groups[index])}) "
                                                     f"did not prove itself: {', '.join(failed)}")
            rec.save(state, doc)
            raise RecoveryError(doc["error"])
        rec.mark_step(state, doc, step, vms=[vm.name for vm, _ in items], t_launched=t_launched, t=time.time())
    return doc["steps"][step]


def _ready_group(state, doc: dict, plan: RecoveryPlan, index: int, nets: dict[str, str], conn, facts,
                 say: Say) -> None:
    """Group ``index``'s VMs launched paused; a failure is only said: the group's launch does it again."""
    from vmferry.sites import libvirt_host

    facts = facts or libvirt_host.probe(conn)
    for vm in plan.vms_of(plan.groups[index]):
        try:
            _launch_vm(state, doc, plan, vm, nets, conn, facts, say, let_run=False)
        except VmferryError as exc:
            say(f"{vm.name} not made ready ahead ({exc}); it is launched at its turn")
            return


def _launch_vm(state, doc: dict, plan: RecoveryPlan, vm: RecoveryVm, nets: dict[str, str], conn, facts,
               say: Say, *, let_run: bool = True) -> None:
    """Launch ``vm`` (``let_run`` False: made ready, started paused and marked, not let run)."""
    from vmferry.ovfenv.document import Environment
    from vmferry.ovfenv.iso import write_iso
    from vmferry.recovery.domain import isolated_domain_xml
    from vmferry.recovery.test import SOCKET_MAX, _declared_type, _env_properties, _give, _owner
    from vmferry.sites import libvirt_host
    from vmferry.tools.proc import run

    app = doc["app"]
    mine = doc["vms"].get(vm.name)
    if vm.name in conn.names():
        if mine is None:
            raise RecoveryError(f"site {plan.site!r} already has a domain {vm.name!r}: the application runs there")
        if conn.info(vm.name).active:                     # started by this failover: adopted as it runs
            if mine["state"] != "started":                   # (interrupted between its start and the record)
                _started(state, app, vm.name, conn.domain(vm.name).ID())
            _mark_and_resume(state, doc, vm.name, conn.domain(vm.name), let_run=let_run)
            return
        if mine["state"] == "started":
            raise RecoveryError(f"{vm.name} was started by this failover and has stopped since; not starting it "
                                "twice")
        say(f"starting {vm.name} (defined before an interruption)")
        _start_paused_then_run(state, doc, vm.name, conn, let_run=let_run)
        return
    if mine is not None and mine["state"] == "started":
        raise RecoveryError(f"{vm.name} was started by this failover and its domain is gone")
    storage = Path(plan.storage)
    owner = _owner(storage)
    rundir = Path(doc["run_dir"])
    if not rundir.is_dir():
        rundir.mkdir(mode=0o750)
        _give(rundir, owner)
    disks = {d.target: str(rundir / f"{vm.name}.{d.target}.qcow2") for d in vm.disks}
    with rec.locked(state, app):
        current = rec.load(state, app)
        current["vms"][vm.name] = {"component": vm.component, "domain": vm.name, "state": "defining",
                                   "disks": disks, "address": vm.address, "starts": 0,
                                   "group": next(i for i, g in enumerate(plan.groups) if vm.component in g)}
        rec.save(state, current)
    say(f"starting {vm.name} at {plan.site}" if let_run else f"making {vm.name} ready at {plan.site} (paused)")
    for disk in vm.disks:
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", os.path.abspath(disk.path),
             disks[disk.target]], timeout=60)       # a layer left by an interrupted attempt is made anew
        _give(Path(disks[disk.target]), owner)
    iso = rundir / f"{vm.name}.env.iso"
    write_iso(Environment(id=vm.name, properties=_env_properties(vm, plan)).to_xml(), iso,
              force=True)                          # as the layers: one an interrupted attempt left is made anew
    _give(iso, owner)
    log = rundir / f"{vm.name}.console.log"
    nic_nets = [nets[n.network] for n in sorted(vm.nics, key=lambda n: n.index)]
    sock = rundir / f"{vm.name}.agent"
    xml = isolated_domain_xml(vm.domain_xml, name=vm.name, overlays=disks, networks=nic_nets,
                              console_log=str(log), env_iso=str(iso), what=vm.name,
                              agent_socket=str(sock) if len(str(sock).encode()) <= SOCKET_MAX else None)
    deployed = libvirt_host.define_and_start(conn, xml, start=False, facts=facts,
                                             domain_type=plan.domain_type or _declared_type(vm.domain_xml, facts))
    _start_paused_then_run(state, doc, vm.name, conn, let_run=let_run, domain_type=deployed.domain_type,
                           warnings=list(deployed.warnings))


def _start_paused_then_run(state, doc: dict, name: str, conn, *, let_run: bool = True, **extra) -> None:
    from vmferry.tools import libvirt as lv

    dom = conn.domain(name)
    lib = lv.binding()
    try:
        dom.createWithFlags(lib.VIR_DOMAIN_START_PAUSED)
    except lib.libvirtError as exc:
        raise RecoveryError(f"{name}: libvirt could not start it: {lv.message(exc)}") from exc
    _started(state, doc["app"], name, dom.ID(), **extra)
    _mark_and_resume(state, doc, name, dom, let_run=let_run)


def _mark_and_resume(state, doc: dict, name: str, dom, *, let_run: bool = True) -> None:
    """A domain started paused: change tracking starts (rp13's checkpoint for a later reprotect: only
    the blocks written at the target from now on go back) before its first instruction runs, then (with
    ``let_run``) it runs; its ``t_started`` is that moment."""
    from vmferry.recovery.reprotect import mark_failover
    from vmferry.tools import libvirt as lv

    lib = lv.binding()
    if dom.state()[0] != lib.VIR_DOMAIN_PAUSED:
        return
    app = doc["app"]
    warning = None
    if not (rec.load(state, app) or {}).get("vms", {}).get(name, {}).get("marked"):
        try:                                  # (a checkpoint already there is kept)
            mark_failover(_group(state, app), doc["point_id"], domains=[name])
        except VmferryError as exc:           # a reprotect then hashes the disks instead: slower, still exact
            warning = f"change tracking not started: {exc}"
    if let_run:
        try:
            dom.resume()
        except lib.libvirtError as exc:
            raise RecoveryError(f"{name}: libvirt could not resume it: {lv.message(exc)}") from exc
    with rec.locked(state, app):
        current = rec.load(state, app)
        v = current["vms"][name]
        v["marked"] = True
        if warning:
            v.setdefault("warnings", []).append(warning)
        if let_run:
            v["t_started"] = time.time()
        rec.save(state, current)


def _started(state, app: str, name: str, domain_id, **extra) -> None:
    with rec.locked(state, app):
        doc = rec.load(state, app)
        v = doc["vms"][name]
        v.update(state="started", domain_id=domain_id, t_started=time.time(), started_at=rec.now_iso(),
                 starts=v.get("starts", 0) + 1, **extra)
        rec.save(state, doc)


def surroundings_step(state, app: str, *, say: Say = _quiet) -> dict:
    """Apply and verify the surroundings, then run the application checks."""
    from vmferry.recovery.proofs import run_app_checks
    from vmferry.recovery.reprotect import move_plan
    from vmferry.recovery.surroundings import apply_surroundings

    doc = _load(state, app)
    done = rec.step_done(doc, "surroundings")
    if done is not None:
        return done
    plan = recovery_plan(state, doc)
    group = _group(state, app)
    application = _app(group)
    move = move_plan(application, group)          # a failback: surroundings back to the home addresses
    steps = apply_surroundings(move, application.sites[group.target_site], doc["apply_journal"], say=say)
    checks = run_app_checks(plan.checks) if all(s.verified for s in steps) else []
    error = next((f"{s.id}: {s.status} {s.detail} {s.verify_detail}".strip() for s in steps if not s.verified),
                 "") or next((f"application check {c.what} failed: {c.detail}" for c in checks if not c.ok), "")
    with rec.locked(state, app):
        doc = _load(state, app)
        doc["surroundings"] = [s.to_dict() for s in steps]
        doc["checks"] = [c.to_dict() for c in checks]
        if error:
            doc["status"], doc["error"] = "failed", error
            rec.save(state, doc)
            raise RecoveryError(f"the surroundings of {app!r} did not follow: {error}")
        rec.mark_step(state, doc, "surroundings", steps=len(steps), t=time.time())
    return doc["steps"]["surroundings"]


def finish(state, app: str) -> dict:
    """The report of the failover (a JSON document), kept in the record; the record says ``done``."""
    with rec.locked(state, app):
        doc = _load(state, app)
        if doc.get("report") and doc["status"] == "done":
            return doc["report"]
        report = build_report(state, doc)
        doc["report"] = report.to_dict()
        doc["status"] = "done" if report.ok else "failed"
        doc["finished_at"] = report.finished_at
        rec.save(state, doc)
        return doc["report"]


def build_report(state, doc: dict):
    """The RecoveryReport of the record as it stands (finished or failed)."""
    from vmferry.recovery.proofs import CheckResult
    from vmferry.recovery.report import GroupResult, RecoveryReport, VmResult

    t0 = doc["t_started"]
    report = RecoveryReport(app=doc["app"], site=doc["target_site"], point_id=doc.get("point_id") or "",
                            point_taken_at=doc.get("point_taken_at") or "", run_id=doc["run"],
                            started_at=doc["started_at"], kind=f"failover-{doc['mode']}")
    report.finished_at = rec.now_iso()
    if doc.get("point_taken_at"):
        taken = datetime.fromisoformat(doc["point_taken_at"].replace("Z", "+00:00"))
        taken = taken if taken.tzinfo else taken.replace(tzinfo=UTC)
        if doc["mode"] == "planned":
            report.data_loss_seconds = 0.0        # the point was taken after the source stopped
        else:
            start = datetime.fromtimestamp(t0, UTC)
            report.data_loss_seconds = max(0.0, (start - taken).total_seconds())
    try:
        plan = recovery_plan(state, doc) if doc.get("point_id") else None
    except VmferryError:
        plan = None
    production = {}
    if plan is not None:
        try:
            production = production_networks(state, doc)
        except VmferryError:
            production = {}
        for tn in plan.networks:
            report.networks.append({"name": production.get(tn.name), "bridge": None, "target_network": tn.name,
                                    "subnet": tn.subnet, "host_address": None, "isolated": False})
        for gi, comps in enumerate(plan.groups):
            step = doc["steps"].get(f"launch-{gi + 1}")
            vms = [doc["vms"][vm.name] for vm in plan.vms_of(comps) if vm.name in doc["vms"]]
            if not vms:
                continue
            first = min(v.get("t_started", t0) for v in vms)
            g = GroupResult(gi, list(comps), first - t0)
            g.launched = (step["t_launched"] - t0) if step else None
            proofs = [v["t_proved"] for v in vms if v.get("t_proved")]
            g.proved = (max(proofs) - t0) if step and proofs else None
            report.groups.append(g)
        for vm in plan.vms:
            v = doc["vms"].get(vm.name)
            if v is None:
                report.not_started.append(vm.name)
                continue
            res = VmResult(component=vm.component, vm=vm.name, domain=v["domain"], group=v["group"],
                           address=v.get("address"), started=v.get("t_started", t0) - t0,
                           proved=bool(v.get("proved")), time_to_proof=v.get("time_to_proof"),
                           proved_at=(v["t_proved"] - t0) if v.get("t_proved") else None,
                           failure=v.get("failure", ""), console_tail=v.get("console_tail", ""),
                           console_log=os.path.join(doc["run_dir"], f"{vm.name}.console.log"),
                           domain_type=v.get("domain_type", ""), warnings=v.get("warnings", []))
            res.checks = [CheckResult(**c) for c in v.get("checks", [])]
            report.vms.append(res)
    report.checks = [CheckResult(**c) for c in doc.get("checks", [])]
    report.surroundings = doc.get("surroundings", [])
    report.source = doc["steps"].get("stop-source", {}).get("domains", {})
    report.error = doc.get("error", "")
    end = doc["steps"].get("surroundings", {}).get("t")
    report.replicas_unchanged = True          # the point's layers are only ever backing files
    report.ok = bool(plan) and not report.error and end is not None and all(v.proved for v in report.vms) \
        and len(report.vms) == len(plan.vms) and all(s.get("verified") for s in report.surroundings)
    if report.ok:
        report.rto_seconds = end - t0
    return report


def failover(state, request: FailoverRequest, *, say: Say = _quiet):
    """The whole failover in this process (begin, source, boot groups, surroundings); its report."""
    doc = begin(state, request)
    app = request.app
    try:
        if doc["mode"] == "planned":
            stop_source_step(state, app, say=say)
            final_sync_step(state, app, say=say)
        for i in range(group_count(state, app)):
            launch_group(state, app, i, say=say)
        surroundings_step(state, app, say=say)
    except VmferryError as exc:
        with rec.locked(state, app):
            doc = _load(state, app)
            doc["status"], doc["error"] = "failed", doc.get("error") or str(exc)
            rec.save(state, doc)
    return finish(state, app)
