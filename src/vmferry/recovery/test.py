"""Test recovery: boot a recovery point's replicas in isolation, prove each VM, clean everything up.

    report = run_test(plan, state_dir)

1. Leftovers of runs that died are cleaned first (:func:`vmferry.recovery.journal.cleanup_pending`).
2. Every file of the point's disks (each layer of its backing chain) is hashed; the hashes are
   compared again at the end (``replicas_unchanged``): the replicas are only ever backing files of the
   run's throwaway qcow2 overlays.
3. One isolated libvirt network per target network (:mod:`vmferry.sites.libvirt_net`): no
   ``<forward>``, the host on the bridge at the network's gateway address. Read back and refused
   unless isolated.
4. Boot groups in order: for each VM of the group, an overlay per disk, an OVF environment ISO with its
   target addresses (``vmferry.net.N.*``), the replica's domain rewritten for the run
   (:mod:`vmferry.recovery.domain`), fitted to the host and started; then every VM of the group is
   proved (:mod:`vmferry.recovery.proofs`). A group starts only when the whole previous group proved
   itself; a VM that does not fails the run, with its console tail. While a group proves itself, the
   next one is made ready beside it — files, definitions, QEMU started **paused** (no instruction of the
   guest runs) — so starting it is a resume (without this, ~0.6 s of libvirt and QEMU start per VM were
   in the RTO, bench/recover.py). Runs with gates or hooks make each group ready at its turn.
5. The application checks, last.
6. Whatever happens (failure, exception, interrupt), everything recorded in the run's cleanup journal
   is removed: domains, overlays, ISOs, console logs, networks, the run directory.

The RTO is measured from the start of the run to the end of the last application check (to the last
proof when there are none).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path

from vmferry.errors import RecoveryError, VmferryError
from vmferry.ovfenv.document import Environment
from vmferry.ovfenv.iso import write_iso
from vmferry.recovery.control import Control, resolve, run_hook
from vmferry.recovery.domain import isolated_domain_xml
from vmferry.recovery.journal import Journal, cleanup_pending
from vmferry.recovery.model import RecoveryPlan, RecoveryVm
from vmferry.recovery.proofs import Proving, console_tail, prove, run_app_checks
from vmferry.recovery.report import GroupResult, RecoveryReport, VmResult
from vmferry.sites import libvirt_host, libvirt_net
from vmferry.tools import libvirt as lv
from vmferry.tools import proc

Say = Callable[[str], None]
SOCKET_MAX = 100                      # sun_path holds 108 bytes with its NUL; keep a margin
# seconds between proof attempts; the wait after a guest served is vmferry's own share of the RTO (a guest was
# seen ~1.5 s after it served at a 1 s poll, bench/recover.py). While a guest boots a round is two libvirt calls
# (state, agent ping: refused at once until the guest opens its agent port), a few ms.
PROOF_POLL = 0.1


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{os.urandom(3).hex()}"


def chain_files(path: str) -> list[str]:
    """Every file of a qcow2's backing chain (the file first), as qemu-img resolves them."""
    info = proc.run_json(["qemu-img", "info", "-U", "--backing-chain", "--output=json", "-f", "qcow2", path],
                         timeout=60)
    layers = info if isinstance(info, list) else [info]
    out = []
    for layer in layers:
        name = layer.get("filename") if isinstance(layer, dict) else None
        if not name or name.startswith(("json:", "nbd:", "http:", "https:")) or not os.path.isfile(name):
            raise RecoveryError(f"the replica's backing chain names {name!r}, not a local file", path=path)
        out.append(os.path.abspath(name))
    return out


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def replica_digests(plan: RecoveryPlan) -> dict[str, str]:
    out: dict[str, str] = {}
    for vm in plan.vms:
        for disk in vm.disks:
            if not os.path.isfile(disk.path):
                raise RecoveryError(f"{vm.name}: the replica disk {disk.target} is missing", path=disk.path)
            for f in chain_files(disk.path):
                out.setdefault(f, file_digest(f))
    return out


def run_test(plan: RecoveryPlan, state: str | os.PathLike, *, say: Say | None = None,
             clock: Callable[[], float] = time.monotonic, control: Control | None = None) -> RecoveryReport:
    """Run a test recovery of ``plan``; the report says what was proved, when, and what was removed.
    ``control``: gates, hooks, cancellation (:mod:`vmferry.recovery.control`)."""
    say = say or (lambda _msg: None)
    control = resolve(control or Control(), plan.groups)
    report = RecoveryReport(app=plan.app, site=plan.site, point_id=plan.point_id, point_taken_at=plan.taken_at,
                        run_id=new_run_id(), started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    prep = clock()
    previous = cleanup_pending(state)
    report.previous_cleanup = previous.removed + previous.left
    storage = Path(plan.storage)
    if not storage.is_dir():
        raise RecoveryError("the site's storage directory does not exist", path=str(storage))
    before = replica_digests(plan)
    t0 = clock()
    report.timings["prepare"] = t0 - prep
    cpu0 = time.process_time()
    journal = Journal.create(state, report.run_id)
    try:
        _run(plan, report, journal, storage, t0, clock, say, control=control)
    except VmferryError as exc:
        report.error = str(exc)
    finally:
        say("removing what the test created")
        t_clean = clock()
        report.cleanup = journal.clean()
        report.timings["cleanup"] = clock() - t_clean
        report.timings["cpu"] = time.process_time() - cpu0
        after = {f: file_digest(f) for f in before if os.path.isfile(f)}
        report.replicas_unchanged = after == before
        report.replica_files = len(before)
        report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    report.ok = (not report.error and all(v.proved for v in report.vms) and len(report.vms) == len(plan.vms)
                 and all(c.ok for c in report.checks) and len(report.checks) == len(plan.checks)
                 and report.cleanup.clean and report.replicas_unchanged)
    return report


def _owner(storage: Path) -> tuple[int, int] | None:
    st = storage.stat()
    if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
        return st.st_uid, st.st_gid             # QEMU runs as the storage directory's owner
    return None


def _give(path: Path, owner: tuple[int, int] | None) -> None:
    if owner:
        os.chown(path, *owner)


def _run(plan: RecoveryPlan, report: RecoveryReport, journal: Journal | None, storage: Path, t0: float, clock,
         say: Say, *, production: dict[str, str] | None = None, control: Control | None = None):
    """The boot groups of a test (``journal`` records everything, isolated networks) or, with
    ``production`` (target network -> libvirt network) and no journal, of a failover: the VMs keep their
    names, join the production networks and stay."""
    owner = _owner(storage)
    control = control or Control()
    rundir = storage / (f".vmferry-test-{report.run_id}" if production is None
                        else f"{plan.app}.failover-{report.run_id}")
    with lv.connect(plan.uri) as conn:
        nets = _networks(plan, report, journal, conn, say) if production is None else \
            _production(plan, report, conn, production)
        _note(journal, "dir", path=str(rundir))
        rundir.mkdir(mode=0o750)
        _give(rundir, owner)
        facts = libvirt_host.probe(conn)
        last_proof = clock()
        ahead = journal is not None and not control.pause_before and not control.hooks  # next group ready beside

        def ready(index: int):
            """Group ``index``'s VMs launched paused: [(vm, (domain, log, deployed))]."""
            return [(vm, _launch(plan, vm, report.run_id, rundir, owner, nets, journal, conn, facts, paused=True))
                    for vm in plan.vms_of(plan.groups[index])]

        with ThreadPoolExecutor(max_workers=1) as beside:          # left only when the preparation ended
            next_group = None
            for gi, group in enumerate(plan.groups):
                step = f"group-{gi + 1}"
                _gate(control, step, report, clock, say)
                if not _hooks(control, "before", step, plan, group, report, say):
                    return
                g = GroupResult(index=gi, components=list(group), started=clock() - t0)
                report.groups.append(g)
                say(f"group {gi + 1}: starting {', '.join(vm.name for vm in plan.vms_of(group))}")
                launched = next_group.result() if next_group is not None else ready(gi)
                next_group = None
                items: list[tuple[RecoveryVm, VmResult, Proving]] = []
                for vm, (domain, log, deployed) in launched:
                    _resume(conn, domain)
                    res = VmResult(component=vm.component, vm=vm.name, domain=domain, group=gi,
                                   address=vm.address, started=clock() - t0, domain_type=deployed.domain_type,
                                   warnings=list(deployed.warnings))
                    report.vms.append(res)
                    items.append((vm, res, Proving(vm.name, domain, vm.address, vm.probes, vm.agent, vm.timeout,
                                                   clock())))
                    res.console_log = log
                g.launched = clock() - t0
                if ahead and gi + 1 < len(plan.groups):
                    next_group = beside.submit(ready, gi + 1)
                t_wait = clock()
                try:
                    prove(conn, [p for _, _, p in items], poll=PROOF_POLL, clock=clock, sleep=control.sleep)
                finally:
                    if next_group is not None:
                        wait([next_group])
                _add(report, "guest_wait", clock() - t_wait)
                for vm, res, p in items:
                    res.checks = ([p.agent_result] if p.agent_result else []) + list(p.results.values())
                    if p.proven_at is not None:
                        res.proved = True
                        res.time_to_proof = p.proven_at - p.started
                        res.proved_at = p.proven_at - t0
                        last_proof = max(last_proof, p.proven_at)
                        say(f"{vm.name} proved itself in {res.time_to_proof:.1f} s")
                    else:
                        res.failure = p.failure
                        res.console_tail = console_tail(res.console_log)
                        say(f"{vm.name} failed: {p.failure}")
                g.proved = clock() - t0
                if not all(res.proved for _, res, _ in items):
                    report.error = f"boot group {gi + 1} ({', '.join(group)}) did not prove itself"
                    report.not_started = [vm.name for later in plan.groups[gi + 1:] for vm in plan.vms_of(later)]
                    return
                if not _hooks(control, "after", step, plan, group, report, say):
                    return
        _gate(control, "checks", report, clock, say)
        if plan.checks:
            say("application checks")
        t_checks = clock()
        report.checks = run_app_checks(plan.checks, clock=clock)
        _add(report, "checks", clock() - t_checks)
        if all(c.ok for c in report.checks):
            end = clock() if plan.checks else last_proof
            report.rto_seconds = end - t0 - sum(p["seconds"] for p in report.pauses)
        else:
            report.error = next(f"application check {c.what} failed: {c.detail}" for c in report.checks
                                if not c.ok)


def _add(report: RecoveryReport, what: str, seconds: float) -> None:
    report.timings[what] = report.timings.get(what, 0.0) + seconds


def _gate(control: Control, step: str, report: RecoveryReport, clock, say: Say) -> None:
    control.check()
    if step not in control.pause_before:
        return
    say(f"paused before {step}")
    start = clock()
    control.wait_gate(step)
    report.pauses.append({"step": step, "seconds": round(clock() - start, 3)})
    say(f"resumed: {step}")


def _hooks(control: Control, when: str, step: str, plan: RecoveryPlan, group, report: RecoveryReport,
           say: Say) -> bool:
    """Run the ``when`` hooks of ``step``; False (and the run's error set) when one failed."""
    env = {"VMFERRY_APP": plan.app, "VMFERRY_SITE": plan.site, "VMFERRY_RUN": report.run_id, "VMFERRY_STEP": step,
           "VMFERRY_WHEN": when, "VMFERRY_COMPONENTS": " ".join(group),
           "VMFERRY_ADDRESSES": " ".join(vm.address for vm in plan.vms_of(tuple(group)) if vm.address)}
    for hook in (h for h in control.hooks if h.when == when and h.step == step):
        say(f"hook {when} {step}: {hook.command}")
        result = run_hook(hook, env, cancelled=control.cancelled)
        _add(report, "hooks", result.seconds)
        report.hooks.append(result)
        control.check()
        if not result.ok:
            report.error = f"the hook {when} {step} failed ({result.detail}): {hook.command}"
            return False
    return True


def _note(journal: Journal | None, kind: str, **what: str) -> None:
    if journal is not None:
        journal.record(kind, **what)


def mapped_active_networks(plan: RecoveryPlan, conn, production: dict[str, str]) -> dict[str, str]:
    """Each target network of ``plan`` -> the active libvirt network ``production`` maps it to; refused
    when one maps to none or to a network that is not active."""
    have = conn.networks()
    for tn in plan.networks:
        name = production.get(tn.name)
        if not name or not have.get(name):
            raise RecoveryError(f"site {plan.site!r}: network {tn.name} maps to no active libvirt network "
                                f"({name or 'no mapping'})")
    return {tn.name: production[tn.name] for tn in plan.networks}


def _production(plan: RecoveryPlan, report: RecoveryReport, conn, production: dict[str, str]) -> dict[str, str]:
    mapped = mapped_active_networks(plan, conn, production)
    for tn in plan.networks:
        name = mapped[tn.name]
        report.networks.append({"name": name, "bridge": None, "target_network": tn.name, "subnet": tn.subnet,
                                "host_address": None, "isolated": False})
    taken = [vm.name for vm in plan.vms if vm.name in conn.names()]
    if taken:
        raise RecoveryError(f"site {plan.site!r} already has a domain {taken[0]!r}: the application runs there")
    return mapped


def _networks(plan: RecoveryPlan, report: RecoveryReport, journal: Journal, conn, say: Say) -> dict[str, str]:
    taken = {n.address for vm in plan.vms for n in vm.nics if n.address}
    out = {}
    for i, tn in enumerate(plan.networks):
        net = libvirt_net.plan_network(plan.app, report.run_id, i, tn.name, tn.subnet, tn.gateway, taken)
        _note(journal, "network", uri=plan.uri, name=net.name)
        say(f"isolated network {net.name} for {tn.name} ({net.subnet}, host {net.host_address})")
        conn.define_network(libvirt_net.network_xml(net))
        problems = libvirt_net.isolation_problems(conn.network_xml(net.name))
        if problems:
            raise RecoveryError(f"the test network is not isolated: {problems[0]}")
        report.networks.append({"name": net.name, "bridge": net.bridge, "target_network": tn.name,
                                "subnet": net.subnet, "host_address": net.host_address, "isolated": True})
        out[tn.name] = net.name
    return out


def _env_properties(vm: RecoveryVm, plan: RecoveryPlan) -> dict[str, str]:
    props = dict(vm.env)
    gateways = {n.name: n.gateway for n in plan.networks}
    for nic in vm.nics:
        base = f"vmferry.net.{nic.index}"
        if nic.address:
            props[f"{base}.address"] = nic.address + (f"/{nic.prefix}" if nic.prefix is not None else "")
            gw = nic.gateway or gateways.get(nic.network)
            if gw:
                props[f"{base}.gateway"] = gw
    props.setdefault("vmferry.hostname", vm.name)
    return props


def _declared_type(xml: str, facts) -> str | None:
    """``qemu`` when protect fitted the replica to TCG at this site (its QEMU could not use KVM then): no
    slow KVM attempt first. Otherwise None: the best type the host offers, with define_and_start's fallback."""
    from lxml import etree

    t = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False, no_network=True)).get("type")
    return t if t == "qemu" and t in facts.types else None


def _resume(conn, domain: str) -> None:
    """Let a domain launched paused run (one that runs already is left alone)."""
    lib = lv.binding()
    dom = conn.domain(domain)
    try:
        if dom.state()[0] == lib.VIR_DOMAIN_PAUSED:
            dom.resume()
    except lib.libvirtError as exc:
        raise RecoveryError(f"{domain}: libvirt could not let it run: {lv.message(exc)}") from exc


def _launch(plan: RecoveryPlan, vm: RecoveryVm, run_id: str, rundir: Path, owner, nets: dict[str, str],
            journal: Journal | None, conn, facts, *, paused: bool = False) -> tuple[str, str, libvirt_host.Deployed]:
    overlays = {}
    for disk in vm.disks:
        overlay = rundir / f"{vm.name}.{disk.target}.qcow2"
        _note(journal, "file", path=str(overlay))
        proc.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", os.path.abspath(disk.path),
                  str(overlay)], timeout=60)
        _give(overlay, owner)
        overlays[disk.target] = str(overlay)
    iso = rundir / f"{vm.name}.env.iso"
    _note(journal, "file", path=str(iso))
    write_iso(Environment(id=vm.name, properties=_env_properties(vm, plan)).to_xml(), iso)
    _give(iso, owner)
    log = rundir / f"{vm.name}.console.log"
    nic_nets = []
    for nic in sorted(vm.nics, key=lambda n: n.index):
        if nic.network not in nets:
            raise RecoveryError(f"{vm.name}: NIC {nic.index} is on network {nic.network}, which the target "
                                "site does not have")
        nic_nets.append(nets[nic.network])
    name = f"vmferry-test-{vm.name}-{run_id}" if journal is not None else vm.name
    sock = rundir / f"{vm.name}.agent"
    xml = isolated_domain_xml(vm.domain_xml, name=name, overlays=overlays, networks=nic_nets, console_log=str(log),
                          env_iso=str(iso), what=vm.name,
                          agent_socket=str(sock) if len(str(sock).encode()) <= SOCKET_MAX else None)
    _note(journal, "domain", uri=plan.uri, name=name)
    deployed = libvirt_host.define_and_start(conn, xml, start=True, facts=facts, paused=paused,
                                             domain_type=plan.domain_type or _declared_type(vm.domain_xml, facts))
    return name, str(log), deployed
