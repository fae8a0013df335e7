"""Benchmark of issue 13: how long the three-component application takes to come up at the other site,
and how much of that time is vmferry's own.

In one run, on a private privileged libvirtd (scripts/demo_libvirtd.py, QEMU under TCG), the demo's
application ``shop`` (scripts/demo_recover.py: db <- app <- web, each the project's serving test guest
from an OVA) is protected dc1 -> dr with ``vmferry protect``; then:

* **baseline** — the same three replicas booted by hand in boot order with nothing of vmferry: per VM a
  qcow2 overlay, the replica's domain on a plain libvirt network, ``virDomainCreate``, then the next VM
  as soon as the guest printed ``VMFERRY-SVC-SERVING`` on its serial console (its services are up);
* **test failover** — ``run_test`` (what ``vmferry recover shop --to dr --test`` runs), its report's RTO
  and parts (per boot group: launch, boot to proof), and an honest split of the RTO: each VM's console
  log is watched by this script (every 50 ms) for the moment the guest says it serves; from the launch
  of a group to its last guest serving is *the guests' time*; everything else in the RTO (isolated
  network, overlays, environment ISOs, domain definitions and starts, proof polling after the guest was
  up, application checks) is *vmferry's own*. Goal: under 10% of the RTO.
* **disaster failover** — fo13's ``failover_steps.failover`` (``vmferry recover --failover --disaster``)
  when this tree has it, else the library's ``failover_disaster``: VMs on dr's production libvirt network,
  left running, from the same point, with the same split. Its surroundings (DNS, HAProxy, nftables,
  locator) are not measured: the demo application declares none and no such servers are started here.

Printed: each time, the ratios against the baseline, vmferry's share. Run as root (the daemon makes
bridges): ``python bench/recover.py`` (``--keep-going`` reports a failed run instead of stopping).
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
sys.path[:0] = [str(REPO / "src"), str(REPO), str(REPO / "scripts")]

import demo_libvirtd  # noqa: E402
import demo_recover  # noqa: E402

NAMES = ["db", "app", "web"]
SERVING = "VMFERRY-SVC-SERVING"
PROD = ("<network><name>dr-lan</name><bridge name='vmfbench0' stp='off'/><dns enable='no'/>"
        "<ip address='10.77.0.1' prefix='24'/></network>")


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
        conn.networkCreateXML(PROD.replace("dr-lan", "bench-base").replace("vmfbench0", "vmfbench1"))
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
        serving = max(served) - t0 - g.launched           # launched -> the group's last guest serving
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
    print(f"    in the RTO: networks+overlays+ISOs+define/start {sum(g.launched - g.started for g in report.groups):.2f}"
          f" s, proof polling after serving {sum(r[2] for r in parts['rows'] if r[2] is not None):.2f} s, "
          f"application checks {t.get('checks', 0):.2f} s, before group 1 {report.groups[0].started:.2f} s")
    outside = [f"{k} {t[k]:.2f} s" for k in ("prepare", "cleanup") if k in t]
    if outside:
        print(f"    outside the RTO: {', '.join(outside)}; vmferry CPU {t.get('cpu', 0):.2f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="/tmp/vmferry-bench-recover", help="the private daemon's directory")
    args = ap.parse_args(argv)
    from vmferry.plans.manifest import load_app
    from vmferry.recovery import failover as failover_mod
    from vmferry.recovery.spec import plan_from_group
    from vmferry.recovery.test import run_test
    from vmferry.replication.store import Store
    from vmferry.tools import libvirt as lv

    base = Path(args.base)
    daemon = demo_libvirtd.start(base)
    try:
        work = daemon.workdir
        for site in ("dc1", "dr"):
            (work / site).mkdir()
            os.chown(work / site, daemon.uid, daemon.gid)
        state = base / "state"
        os.environ["VMFERRY_STATE"] = str(state)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
        ovas = demo_recover.packages(base, NAMES)
        import yaml

        app_file = base / "shop.yaml"
        app_file.write_text(yaml.safe_dump(demo_recover.manifest(NAMES, ovas, daemon.uri, work)))
        t = time.monotonic()
        demo_recover.vmferry(env, "protect", str(app_file), "--from", "dc1", "--to", "dr", "--domain-type", "qemu")
        print(f"protect (3 OVAs converted + repaired, first point): {time.monotonic() - t:.1f} s")
        group = Store(state).load("shop")
        plan = plan_from_group(load_app(group.manifest), group)
        print(f"boot groups: {' -> '.join('+'.join(g) for g in plan.groups)}; host {os.cpu_count()} cores, "
              f"QEMU under TCG")

        base_total, base_groups = baseline(plan, work / "dr" / "bench-baseline")
        print(f"\nbaseline (overlay + define + start by hand, next group when the guests serve): {base_total:.1f} s"
              f" ({', '.join(f'{s:.1f}' for s in base_groups)} s per group)")

        with ConsoleWatch(work / "dr") as watch:
            t0 = time.monotonic()
            report = run_test(plan, state)
        show("test failover (vmferry recover --test, isolated network)", report, split(report, watch, t0), base_total)

        with lv.connect(daemon.uri) as conn:
            conn.define_network(PROD)            # dr's production network (the manifest maps it as dr-lan)
        try:
            from vmferry.recovery import failover_steps
        except ImportError:
            failover_steps = None
        if failover_steps is None:
            with ConsoleWatch(work / "dr") as watch:
                t0 = time.monotonic()
                fo = failover_mod.failover_disaster(plan, state, production={n.name: "dr-lan" for n in plan.networks})
            title = "disaster failover (library failover_disaster: production network, no surroundings)"
        else:
            from vmferry.recovery import failover_record
            from vmferry.recovery.report import report_from_dict

            with ConsoleWatch(work / "dr", clock=time.time) as watch:   # the failover record's times are wall times
                doc = failover_steps.failover(str(state), failover_steps.FailoverRequest("shop", "dr", "disaster"))
            fo = report_from_dict(doc)
            t0 = failover_record.load(str(state), "shop")["t_started"]
            steps = doc.get("surroundings") or []
            title = (f"disaster failover (failover_steps.failover = vmferry recover --failover --disaster: production "
                     f"network, {len(steps)} surroundings step(s))")
        show(title, fo, split(fo, watch, t0), base_total)
        print("\nnot measured: the failover's surroundings (DNS by RFC 2136, HAProxy pools, nftables, locator) — the "
              "demo application declares none and this bench starts no BIND/HAProxy/locator; the planned failover "
              "(source shutdown + final sync) needs running source domains, the demo's sources are packages")
        return 0 if report.ok and fo.ok else 1
    finally:
        demo_libvirtd.stop(base)


if __name__ == "__main__":
    sys.exit(main())
