"""Benchmark of issue 13: how long the three-component application takes to come up at the other site,
with and without its surroundings, and how much of that time is vmferry's own.

The world is the failover end-to-end test's (``tests/recovery/test_failover_app_e2e.app_world``, reused, on
its own subnets and bridge so it can run beside that test): the application ``shop`` (db <- app <- web,
web behind HAProxy, DNS names, a firewall rule, locator EIDs; each the project's serving test guest)
running at dc1 on a private session libvirtd, protected with ``vmferry protect`` to dr, a privileged
private libvirtd (QEMU under TCG), whose surroundings are real servers on 127.0.0.1: BIND 9 (RFC 2136 +
TSIG), HAProxy (runtime API), the locator service, an nftables ruleset checked with ``nft -c``. Then:

* **baseline** — the same three replicas booted by hand in boot order with nothing of vmferry: per VM a
  qcow2 overlay, the replica's domain on a plain libvirt network, ``virDomainCreate``, then the next
  group as soon as the guest printed ``VMFERRY-SVC-SERVING`` on its serial console;
* **test failover** — ``run_test`` (``vmferry recover shop --to dr --test``): RTO and its parts per boot
  group (launch, boot to proof);
* **planned failover with surroundings** — ``failover_steps.failover`` (``vmferry recover shop --to dr
  --failover --planned``): source shutdown, final sync, launch and proof per boot group on dr's
  production network, then DNS/HAProxy/locator/nftables applied and each read back, then the
  application check through the pool. RTO = from the failover's start to its last check. Both runs
  are in this process, as a running ``vmferry worker`` runs them; what a cold ``vmferry recover`` adds
  (interpreter start-up, first imports) is measured apart and printed.

**vmferry's own share** of an RTO is the time vmferry does NOT spend waiting for a guest, over the RTO
measured in the same run. Waiting for a guest is, as seen by this script's own watchers (every 50 ms,
outside vmferry): per boot group, from the group's launch (its last VM started) to its last guest
printing SERVING on its console (its services are up: nothing vmferry could do would prove it sooner);
for a planned failover also the source guests' shutdown, from vmferry's first request to the last source
domain being off (a request a guest's agent missed — its port closed — is asked again through the agent
every second: that wait, at most ~1 s, is counted as the guest's). Everything else in the RTO is vmferry's own: step and process overhead, libvirt
definitions, overlays, OVF environment ISOs, networks, the final sync's copy, the proof loop's lag after
a guest served, the surroundings (apply and read back against BIND/HAProxy/locator/nft), the
application checks, record writes. Goal: under 10% of the RTO.

Printed: each time, the ratio against the baseline measured in the same run, the parts, the share. Run
as root (a privileged libvirtd makes bridges) through ``/work/heavy``: ``python bench/recover.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# bench/ holds inspect.py, which must not hide the standard library's inspect module from this script
sys.path = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from tests.recovery import test_failover_app_e2e as world_of  # noqa: E402

SERVING = "VMFERRY-SVC-SERVING"
BASE_NET = ("<network><name>bench-base</name><bridge name='vmfbench1' stp='off'/><dns enable='no'/>"
            "<ip address='10.77.0.1' prefix='24'/></network>")
# the e2e world on subnets and a bridge of its own (inside the locator's 10.91.0.0/16 EID prefix), so the bench
# and the e2e test can run at once on the host's network
world_of.SRC, world_of.DR = "10.91.7", "10.92.7"
world_of.PROD = (f"<network><name>fo-dr-lan</name><bridge name='vmfbench0' stp='off'/><dns enable='no'/>"
                 f"<ip address='{world_of.DR}.1' prefix='24'/></network>")


class ConsoleWatch:
    """Timestamps (time.monotonic) of the first SERVING line in each console log under ``root``."""

    def __init__(self, root: Path, pattern: str = "*.console.log", clock=time.monotonic) -> None:
        self.root, self.pattern, self.clock = root, pattern, clock
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for log in self.root.glob(f"**/{self.pattern}"):
                vm = log.name.split(".console.log")[0]
                if vm in self.seen:
                    continue
                try:
                    if SERVING.encode() in log.read_bytes():
                        self.seen[vm] = self.clock()
                except OSError:
                    pass

    def __enter__(self) -> ConsoleWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def baseline(plan, work: Path) -> tuple[float, list[float]]:
    """Boot the plan's replicas by hand, in its boot order, each after the previous group served."""
    import libvirt

    from vmferry.recovery.domain import isolated_domain_xml
    from vmferry.tools.proc import run

    work.mkdir()
    os.chown(work, *_owner(plan.storage))
    conn = libvirt.open(plan.uri)
    per_group: list[float] = []
    names = []
    try:
        conn.networkCreateXML(BASE_NET)
        t0 = time.monotonic()
        with ConsoleWatch(work) as watch:
            for group in plan.groups:
                g0 = time.monotonic()
                vms = plan.vms_of(group)
                for vm in vms:
                    overlays = {}
                    for disk in vm.disks:
                        ov = work / f"{vm.name}.{disk.target}.qcow2"
                        run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", disk.path, ov])
                        os.chown(ov, *_owner(plan.storage))
                        overlays[disk.target] = str(ov)
                    xml = isolated_domain_xml(vm.domain_xml, name=f"bench-{vm.name}", overlays=overlays,
                                              networks=["bench-base"], console_log=str(work / f"{vm.name}.console.log"),
                                              env_iso=None, what=vm.name, agent_socket=None)
                    xml = re.sub(r"<domain type=\"[a-z]+\"", '<domain type="qemu"', xml, count=1)
                    dom = conn.defineXML(xml)
                    names.append(dom.name())
                    dom.create()
                while not all(vm.name in watch.seen for vm in vms):
                    if time.monotonic() - g0 > 600:
                        raise RuntimeError(f"baseline: {group} did not serve within 600 s")
                    time.sleep(0.05)
                per_group.append(max(watch.seen[vm.name] for vm in vms) - g0)
        return time.monotonic() - t0, per_group
    finally:
        for name in names:
            dom = conn.lookupByName(name)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        net = conn.networkLookupByName("bench-base")
        net.destroy()
        conn.close()
        shutil.rmtree(work, ignore_errors=True)


def _owner(storage) -> tuple[int, int]:
    st = os.stat(storage)
    return st.st_uid, st.st_gid


def split(report, watch: ConsoleWatch, t0: float) -> dict:
    """The RTO split into the guests' time (launch of a group to its last guest serving) and vmferry's."""
    guests = 0.0
    rows = []
    for g in report.groups:
        vms = [v for v in report.vms if v.group == g.index]
        served = [watch.seen.get(v.vm) for v in vms]
        if g.launched is None or any(s is None for s in served):
            rows.append((g, None, None))
            continue
        # launched -> the group's last guest serving; a proof seen before the watcher saw the line (the guest's
        # services answer before it prints it) ends the guests' time there: vmferry is never credited a lag < 0
        serving = min(max(served) - t0 - g.launched, g.proved - g.launched)
        lag = g.proved - g.launched - serving              # guest serving -> vmferry saw the proof
        guests += serving
        rows.append((g, serving, lag))
    own = (report.rto_seconds or 0.0) - guests
    return {"rows": rows, "guests": guests, "own": own}


def show(title: str, report, parts: dict, base_total: float) -> None:
    print(f"\n{title}: {'OK' if report.ok else 'FAILED: ' + report.error}")
    if report.rto_seconds is None:
        return
    rto = report.rto_seconds
    print(f"  RTO {rto:7.1f} s   ({rto / base_total:.2f}x the baseline's {base_total:.1f} s)")
    for g, serving, lag in parts["rows"]:
        d = g.to_dict()
        extra = "" if serving is None else f"  [guests boot to serving {serving:5.1f} s, proof seen {lag:4.1f} s later]"
        print(f"  group {d['group']} {'+'.join(g.components):<4} launch {d['launch_seconds']:5.2f} s, "
              f"boot to proof {d['boot_to_proof_seconds']:5.1f} s{extra}")
    t = report.timings
    print(f"  guests' time {parts['guests']:6.1f} s; vmferry's own {parts['own']:5.1f} s = "
          f"{100 * parts['own'] / rto:4.1f}% of the RTO (goal < 10%)")
    print(f"    in the RTO: launches {sum(g.launched - g.started for g in report.groups):.2f} s (overlays, ISOs, "
          f"define, start; a resume for a group made ready beside the one before), proof lag after serving {sum(r[2] for r in parts['rows'] if r[2] is not None):.2f} s, "
          f"application checks {t.get('checks', 0):.2f} s, before group 1 {report.groups[0].started:.2f} s")
    outside = [f"{k} {t[k]:.2f} s" for k in ("prepare", "cleanup") if k in t]
    if outside:
        print(f"    outside the RTO: {', '.join(outside)}; vmferry CPU {t.get('cpu', 0):.2f} s")


class SourceWatch:
    """Wall time (time.time) each source domain was first seen shut off, every 50 ms from the moment
    ``arm`` is called (vmferry's shutdown request), through a libvirt connection of this script's own."""

    def __init__(self, uri: str, names: list[str]) -> None:
        self.uri, self.names = uri, names
        self.off: dict[str, float] = {}
        self.asked: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def arm(self) -> None:
        self.asked = time.time()

    def _run(self) -> None:
        from vmferry.tools import libvirt as lv

        with lv.connect(self.uri) as conn:
            while not self._stop.wait(0.05):
                if self.asked is None:
                    continue
                for name in self.names:
                    if name not in self.off and not conn.info(name).active:
                        self.off[name] = time.time()
                if len(self.off) == len(self.names):
                    return

    def __enter__(self) -> SourceWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def show_failover(doc: dict, fo, watch: ConsoleWatch, source: SourceWatch, base_total: float) -> None:
    """The planned failover's RTO, its parts, and the split into the guests' time and vmferry's own."""
    print(f"\nplanned failover with surroundings (vmferry recover --failover --planned): "
          f"{'OK' if fo.ok else 'FAILED: ' + fo.error}")
    if fo.rto_seconds is None:
        return
    record = doc["_record"]
    t0, steps, rto = record["t_started"], record["steps"], fo.rto_seconds
    print(f"  RTO {rto:7.1f} s   ({rto / base_total:.2f}x the baseline's {base_total:.1f} s), data loss "
          f"{fo.data_loss_seconds:g} s")
    t_stop, t_sync = steps["stop-source"]["t"], steps["final-sync"]["t"]
    shutdown = (max(source.off.values()) - source.asked) if source.asked and len(source.off) == len(source.names) \
        else 0.0
    print(f"  stop source {t_stop - t0:6.2f} s  [guests shutting down {shutdown:5.2f} s after the request; "
          f"{', '.join(f'{k} {v}' for k, v in fo.source.items())}]")
    print(f"  final sync  {t_sync - t_stop:6.2f} s  ({steps['final-sync'].get('bytes_written', 0)} bytes written, "
          f"point {steps['final-sync']['point_id']})")
    parts = split(fo, watch, t0)
    launches = 0.0
    for g, serving, lag in parts["rows"]:
        d = g.to_dict()
        # from the step before (final sync, previous group proved) to the group's VMs running: its layers,
        # definitions and QEMU starts, unless they were made ready beside the group before (then a resume)
        prev = t_sync if g.index == 0 else steps[f"launch-{g.index}"]["t"]
        launch = steps[f"launch-{g.index + 1}"]["t_launched"] - prev
        launches += launch
        extra = "" if serving is None else f"  [guests boot to serving {serving:5.1f} s, proof seen {lag:4.2f} s later]"
        print(f"  group {d['group']} {'+'.join(g.components):<4} launch {launch:5.2f} s, "
              f"boot to proof {d['boot_to_proof_seconds']:5.1f} s{extra}")
    t_last = steps[f"launch-{len(fo.groups)}"]["t"]
    t_surr = steps["surroundings"]["t"]
    surr = record.get("surroundings", [])
    apply_s = sum(x.get("apply_seconds", 0.0) for x in surr)
    verify_s = sum(x.get("verify_seconds", 0.0) for x in surr)
    checks_s = sum(c.get("seconds", 0.0) for c in record.get("checks", []))
    print(f"  surroundings step {t_surr - t_last:5.2f} s: {len(surr)} changes applied {apply_s:.3f} s + read back "
          f"{verify_s:.3f} s, application checks {checks_s:.3f} s")
    for x in surr:
        print(f"    {x['kind']:<8} {x['id']:<28} apply {x.get('apply_seconds', 0.0):6.3f} s  read-back "
              f"{x.get('verify_seconds', 0.0):6.3f} s  {x['status']}{'' if x['verified'] else ' NOT VERIFIED'}")
    guests = parts["guests"] + shutdown
    own = rto - guests
    print(f"  guests' time {guests:6.1f} s (shutdown {shutdown:.1f} s + boots {parts['guests']:.1f} s); vmferry's own "
          f"{own:5.1f} s = {100 * own / rto:4.1f}% of the RTO (goal < 10%)")
    lags = sum(r[2] for r in parts["rows"] if r[2] is not None)
    named = (t_stop - t0 - shutdown) + (t_sync - t_stop) + launches + lags + (t_surr - t_last)
    print(f"    own, in parts: stop-source beyond the guests {t_stop - t0 - shutdown:.2f} s, final sync "
          f"{t_sync - t_stop:.2f} s, launches {launches:.2f} s, proof lag {lags:.2f} s, surroundings "
          f"{t_surr - t_last:.2f} s, the rest (records, step changes) {own - named:.2f} s")


COLD = """import time
t = time.monotonic()
import vmferry.recovery.failover_steps, vmferry.recovery.reprotect, vmferry.recovery.source, vmferry.recovery.test
import vmferry.recovery.surroundings, vmferry.plans.apply, vmferry.locator.client, vmferry.replication.protect, libvirt
print(time.monotonic() - t)
"""


def cold_start() -> tuple[float, float]:
    """Seconds of a cold ``python -m vmferry`` start (to its exit on bad input) and of importing the
    failover's modules in a fresh interpreter: what a CLI run pays and a running worker does not."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "vmferry", "recover", "no-such-app", "--to", "dr", "--failover",
                    "--planned"], capture_output=True, env=env, timeout=60)
    start = time.monotonic() - t
    out = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, env=env, timeout=60)
    return start, float(out.stdout.strip() or "nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    import signal
    import tempfile

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # a stopped bench still stops what it started

    from tests.guest import libvirtd as _libvirtd
    from vmferry.plans.manifest import load_app
    from vmferry.recovery import failover_record, failover_steps
    from vmferry.recovery.report import report_from_dict
    from vmferry.recovery.spec import plan_from_group
    from vmferry.recovery.test import run_test
    from vmferry.replication.store import Store
    from vmferry.tools import libvirt as lv

    daemon, proc = _libvirtd.start_system()
    base = Path(tempfile.mkdtemp(prefix="vmferry-bench-recover-"))
    ok = False
    try:
        with world_of.app_world(daemon, base) as world:
            state = world["state"]
            os.environ["VMFERRY_STATE"] = str(state)
            print(f"setup: 3 source guests booted at dc1 {world['boot_seconds']:.1f} s, vmferry protect dc1 -> dr "
                  f"{world['protect_seconds']:.1f} s; host {os.cpu_count()} cores, QEMU under TCG")
            group = Store(state).load("shop")
            plan = plan_from_group(load_app(group.manifest), group, domain_type="qemu")
            print(f"boot groups: {' -> '.join('+'.join(g) for g in plan.groups)}")
            with lv.connect(daemon.uri) as conn:        # the test run's isolated network takes dr's subnet
                conn.remove_network("fo-dr-lan")

            base_total, base_groups = baseline(plan, daemon.workdir / "fo-dr" / "bench-baseline")
            print(f"\nbaseline (overlay + define + start by hand, next group when the guests serve): "
                  f"{base_total:.1f} s ({', '.join(f'{s:.1f}' for s in base_groups)} s per group)")

            with ConsoleWatch(daemon.workdir / "fo-dr") as watch:
                t0 = time.monotonic()
                report = run_test(plan, state)
            show("test failover (vmferry recover --test, isolated network)", report, split(report, watch, t0),
                 base_total)

            with lv.connect(daemon.uri) as conn:
                conn.define_network(world_of.PROD)
            sources = [f"fo-{c}" for c in world_of.HOSTS]
            request = failover_steps.FailoverRequest("shop", "dr", "planned", timeout=240, shutdown_timeout=90,
                                                     domain_type="qemu")
            with ConsoleWatch(daemon.workdir / "fo-dr", clock=time.time) as watch, \
                    SourceWatch(world["src"].uri, sources) as source:
                def say(msg: str) -> None:
                    if msg.startswith("shutting down"):
                        source.arm()
                doc = failover_steps.failover(str(state), request, say=say)
            fo = report_from_dict(doc)
            doc["_record"] = failover_record.load(str(state), "shop")
            show_failover(doc, fo, watch, source, base_total)
            start, imports = cold_start()
            print(f"\nmeasured in process (as a running vmferry worker runs the steps); a cold `vmferry recover` adds "
                  f"its start-up {start:.2f} s (before the run's clock) and first imports {imports:.2f} s (in it)")
            ok = report.ok and fo.ok
    finally:
        _libvirtd.stop(proc, daemon.workdir.parent)
        shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
