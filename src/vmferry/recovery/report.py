"""The report of a recovery run: text for a terminal, JSON (docs/json.md style), a self-contained HTML page.

Times are seconds: ``started``/``proved_at`` from the start of the run, ``time_to_proof`` from the VM's
own start. The RTO is the run's start to its last application check (or last proof), given only when
the whole application came up.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from vmferry.recovery.control import HookResult
from vmferry.recovery.journal import Cleanup
from vmferry.recovery.proofs import CheckResult


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class VmResult:
    component: str
    vm: str
    domain: str
    group: int
    address: str | None
    started: float
    proved: bool = False
    time_to_proof: float | None = None
    proved_at: float | None = None
    checks: list[CheckResult] = field(default_factory=list)
    failure: str = ""
    console_tail: str = ""
    console_log: str = ""
    domain_type: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"component": self.component, "vm": self.vm, "domain": self.domain, "group": self.group + 1,
                "domain_type": self.domain_type, "warnings": self.warnings,
                "address": self.address, "started": _r(self.started), "proved": self.proved,
                "time_to_proof": _r(self.time_to_proof), "proved_at": _r(self.proved_at),
                "checks": [c.to_dict() for c in self.checks], "failure": self.failure or None,
                "console_tail": self.console_tail or None}


@dataclass
class GroupResult:
    index: int
    components: list[str]
    started: float
    launched: float | None = None        # every VM of the group defined and started
    proved: float | None = None          # every VM proved (or the group gave up)

    def to_dict(self) -> dict:
        launch = None if self.launched is None else self.launched - self.started
        boot = None if self.proved is None or self.launched is None else self.proved - self.launched
        return {"group": self.index + 1, "components": self.components, "started": _r(self.started),
                "launch_seconds": _r(launch), "boot_to_proof_seconds": _r(boot)}


@dataclass
class RecoveryReport:
    app: str
    site: str
    point_id: str
    point_taken_at: str
    run_id: str
    started_at: str
    finished_at: str = ""
    ok: bool = False
    rto_seconds: float | None = None
    error: str = ""
    networks: list[dict] = field(default_factory=list)
    groups: list[GroupResult] = field(default_factory=list)
    vms: list[VmResult] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    cleanup: Cleanup = field(default_factory=Cleanup)
    previous_cleanup: list[str] = field(default_factory=list)
    replicas_unchanged: bool = False
    replica_files: int = 0
    kind: str = "test"
    data_loss_seconds: float | None = None     # failover from a point: writes after the point are lost
    hooks: list[HookResult] = field(default_factory=list)
    pauses: list[dict] = field(default_factory=list)   # {"step", "seconds"}: time paused at gates (not in the RTO)
    # where the time went (seconds): prepare (before the RTO's start: earlier runs' leftovers, replica hashes),
    # guest_wait (proving: polling guests that boot), checks, hooks, cleanup (after the RTO's end),
    # cpu (this process's CPU time from the RTO's start to the end of cleanup)
    timings: dict[str, float] = field(default_factory=dict)
    surroundings: list[dict] = field(default_factory=list)   # failover: DNS/LB/firewall/locator steps, verified
    source: dict[str, str] = field(default_factory=dict)     # planned failover: source domain -> how it stopped

    def to_dict(self) -> dict:
        return {"kind": self.kind, "app": self.app, "site": self.site, "point": self.point_id,
                "point_taken_at": self.point_taken_at, "run": self.run_id, "started_at": self.started_at,
                "finished_at": self.finished_at, "ok": self.ok, "rto_seconds": _r(self.rto_seconds),
                "error": self.error or None, "networks": self.networks,
                "groups": [g.to_dict() for g in self.groups], "vms": [v.to_dict() for v in self.vms],
                "not_started": self.not_started, "checks": [c.to_dict() for c in self.checks],
                "cleanup": self.cleanup.to_dict(), "previous_cleanup": self.previous_cleanup,
                "replicas_unchanged": self.replicas_unchanged, "replica_files": self.replica_files,
                "data_loss_seconds": _r(self.data_loss_seconds), "hooks": [h.to_dict() for h in self.hooks],
                "pauses": self.pauses, "timings": {k: _r(v) for k, v in self.timings.items()},
                "surroundings": self.surroundings, "source_stopped": self.source}


def report_from_dict(doc: dict) -> RecoveryReport:
    """A report back from its JSON document (:meth:`RecoveryReport.to_dict`), e.g. a durable run's result."""
    from vmferry.recovery.journal import Cleanup

    def check(c: dict) -> CheckResult:
        return CheckResult(c["what"], c["ok"], c.get("detail", ""), c.get("seconds") or 0.0)

    groups = []
    for g in doc.get("groups", []):
        launched = None if g.get("launch_seconds") is None else g["started"] + g["launch_seconds"]
        proved = None if launched is None or g.get("boot_to_proof_seconds") is None else \
            launched + g["boot_to_proof_seconds"]
        groups.append(GroupResult(g["group"] - 1, list(g["components"]), g["started"], launched, proved))
    vms = [VmResult(v["component"], v["vm"], v["domain"], v["group"] - 1, v.get("address"), v["started"],
                    v["proved"], v.get("time_to_proof"), v.get("proved_at"), [check(c) for c in v.get("checks", [])],
                    v.get("failure") or "", v.get("console_tail") or "", "", v.get("domain_type", ""),
                    list(v.get("warnings", []))) for v in doc.get("vms", [])]
    cleanup = doc.get("cleanup") or {}
    return RecoveryReport(
        app=doc["app"], site=doc["site"], point_id=doc["point"], point_taken_at=doc["point_taken_at"],
        run_id=doc["run"], started_at=doc["started_at"], finished_at=doc.get("finished_at", ""), ok=doc["ok"],
        rto_seconds=doc.get("rto_seconds"), error=doc.get("error") or "", networks=list(doc.get("networks", [])),
        groups=groups, vms=vms, not_started=list(doc.get("not_started", [])),
        checks=[check(c) for c in doc.get("checks", [])],
        cleanup=Cleanup(list(cleanup.get("removed", [])), list(cleanup.get("left", []))),
        previous_cleanup=list(doc.get("previous_cleanup", [])), replicas_unchanged=doc.get("replicas_unchanged", False),
        replica_files=doc.get("replica_files", 0), kind=doc.get("kind", "test"),
        data_loss_seconds=doc.get("data_loss_seconds"),
        hooks=[HookResult(h["when"], h["step"], h["command"], h.get("returncode"), h["seconds"], h["ok"],
                          h.get("output", ""), h.get("detail", "")) for h in doc.get("hooks", [])],
        pauses=list(doc.get("pauses", [])), timings=dict(doc.get("timings", {})),
        surroundings=list(doc.get("surroundings", [])), source=dict(doc.get("source_stopped", {})))


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def render_text(report: RecoveryReport) -> str:
    what = "test recovery" if report.kind == "test" else f"{report.kind} recovery"
    lines = [f"{what} of {report.app} at {report.site} from point {report.point_id} "
             f"(taken {report.point_taken_at}): {'OK' if report.ok else 'FAILED'}"]
    if report.rto_seconds is not None:
        lines.append(f"RTO: {report.rto_seconds:.1f} s")
    if report.data_loss_seconds is not None:
        lines.append(f"data-loss window: {report.data_loss_seconds:.0f} s of writes (since the point was taken)")
    if report.error:
        lines.append(f"error: {report.error}")
    for n in report.networks:
        lines.append(f"network {n['target_network']}: isolated {n['name']} ({n['subnet']}, host "
                     f"{n['host_address']}, no forwarding)" if n["isolated"] else
                     f"network {n['target_network']}: production network {n['name']} ({n['subnet']})")
    for g in report.groups:
        d = g.to_dict()
        lines.append(f"group {d['group']} ({', '.join(g.components)}): launch {_s(d['launch_seconds'])}, "
                     f"boot to proof {_s(d['boot_to_proof_seconds'])}")
        for v in (v for v in report.vms if v.group == g.index):
            state = f"proved in {v.time_to_proof:.1f} s" if v.proved else f"FAILED: {v.failure}"
            lines.append(f"  {v.vm} ({v.component}, {v.address or 'no address'}, {v.domain_type}): {state}")
            lines += [f"    warning: {w}" for w in v.warnings]
            for c in v.checks:
                lines.append(f"    {'ok ' if c.ok else 'no '} {c.what}: {c.detail}")
            if v.console_tail:
                lines.append("    console (last lines):")
                lines += [f"      | {ln}" for ln in v.console_tail.splitlines()]
    for p in report.pauses:
        lines.append(f"paused before {p['step']} for {p['seconds']:.1f} s (not counted in the RTO)")
    for h in report.hooks:
        lines.append(f"hook {h.when} {h.step}: {'ok' if h.ok else 'FAILED (' + h.detail + ')'} in {h.seconds:.1f} s:"
                     f" {h.command}")
    if report.not_started:
        lines.append(f"not started: {', '.join(report.not_started)}")
    for name, how in report.source.items():
        lines.append(f"source {name}: stopped ({how})")
    for s in report.surroundings:
        lines.append(f"{s['kind']} {s['id']}: {s['status']}, "
                     + (f"verified ({s['verify_detail']})" if s["verified"] else f"NOT verified {s['verify_detail']}"))
    for c in report.checks:
        lines.append(f"application check {c.what}: {'ok' if c.ok else 'FAILED'} ({c.detail}, {c.seconds:.1f} s)")
    lines.append(f"replicas unchanged: {'yes' if report.replicas_unchanged else 'NO'} "
                 f"({report.replica_files} files hashed before and after)")
    lines.append(f"cleanup: {len(report.cleanup.removed)} removed, "
                 f"{'nothing left' if report.cleanup.clean else 'LEFT: ' + '; '.join(report.cleanup.left)}")
    if report.previous_cleanup:
        lines.append(f"cleaned first, left by earlier runs: {'; '.join(report.previous_cleanup)}")
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.ok{color:#176317;font-weight:bold}.bad{color:#a31515;font-weight:bold}pre{background:#f4f4f4;padding:.6em;
overflow:auto;max-height:30em}.bar{background:#4a7fb5;height:.8em;display:inline-block}"""


def _surroundings_html(report: RecoveryReport) -> str:
    if not report.surroundings:
        return ""
    e = html.escape
    rows = "".join(f"<tr><td>{e(s['kind'])}</td><td>{e(s['summary'])}</td><td>{e(s['status'])}</td>"
                   f"<td>{'ok' if s['verified'] else 'NOT verified'}: {e(s['verify_detail'])}</td></tr>"
                   for s in report.surroundings)
    return (f"<h2>Surroundings</h2><table><tr><th>kind</th><th>step</th><th>status</th><th>verified</th></tr>"
            f"{rows}</table>")


def render_html(report: RecoveryReport) -> str:
    """One self-contained page (inline CSS, no script, no external resource); every value escaped."""
    e = html.escape
    verdict = '<span class="ok">OK</span>' if report.ok else '<span class="bad">FAILED</span>'
    rto = f"{report.rto_seconds:.1f} s" if report.rto_seconds is not None else "not reached"
    total = max([v.proved_at or v.started for v in report.vms] + [report.rto_seconds or 0, 1e-9])
    rows = []
    for v in report.vms:
        width = int(300 * (v.time_to_proof or 0) / total)
        offset = int(300 * v.started / total)
        state = (f'<span class="ok">proved</span> in {v.time_to_proof:.1f} s' if v.proved
                 else f'<span class="bad">failed</span>: {e(v.failure)}')
        checks = "<br>".join(f"{'&#10003;' if c.ok else '&#10007;'} {e(c.what)}: {e(c.detail)}" for c in v.checks)
        rows.append(f"<tr><td>{v.group + 1}</td><td>{e(v.vm)}</td><td>{e(v.component)}</td>"
                    f"<td>{e(v.address or '')}</td><td>{v.started:.1f} s</td><td>{state}</td>"
                    f'<td><span style="margin-left:{offset}px" class="bar" title="time to proof">'
                    f'</span><span class="bar" style="width:{width}px"></span></td><td>{checks}</td></tr>')
    tails = "".join(f"<h3>Console of {e(v.vm)} (last lines)</h3><pre>{e(v.console_tail)}</pre>"
                    for v in report.vms if v.console_tail)
    groups = "".join(f"<tr><td>{d['group']}</td><td>{e(', '.join(g.components))}</td>"
                     f"<td>{_s(d['launch_seconds'])}</td><td>{_s(d['boot_to_proof_seconds'])}</td></tr>"
                     for g in report.groups for d in [g.to_dict()])
    nets = "".join(f"<li>{e(n['target_network'])}: {e(n['name'])} ({e(n['subnet'])}"
                   + (f", host {e(n['host_address'])}), no forwarding</li>" if n["isolated"] else "), production</li>")
                   for n in report.networks)
    checks = "".join(f"<tr><td>{e(c.what)}</td><td>{'ok' if c.ok else 'FAILED'}</td><td>{e(c.detail)}</td>"
                     f"<td>{c.seconds:.1f} s</td></tr>" for c in report.checks)
    left = "nothing left" if report.cleanup.clean else "LEFT: " + "; ".join(report.cleanup.left)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vmferry {e(report.kind)} recovery {e(report.app)}</title>
<style>{_CSS}</style></head><body>
<h1>{e(report.kind.capitalize())} recovery of {e(report.app)} at {e(report.site)}: {verdict}</h1>
<p>Recovery point {e(report.point_id)} (taken {e(report.point_taken_at)}); run {e(report.run_id)},
{e(report.started_at)} to {e(report.finished_at)}.</p>
<p><strong>Measured RTO: {e(rto)}</strong></p>
{f'<p>Data-loss window: {report.data_loss_seconds:.0f} s of writes</p>' if report.data_loss_seconds is not None else ''}
{f'<p class="bad">{e(report.error)}</p>' if report.error else ''}
<h2>Networks</h2><ul>{nets}</ul>
<h2>Boot groups</h2><table><tr><th>group</th><th>components</th><th>launch</th><th>boot to proof</th></tr>
{groups}</table>
<h2>VMs</h2><table><tr><th>group</th><th>VM</th><th>component</th><th>address</th><th>started</th>
<th>proof</th><th>timeline</th><th>checks</th></tr>{''.join(rows)}</table>
{f'<p>Not started: {e(", ".join(report.not_started))}</p>' if report.not_started else ''}
<h2>Application checks</h2><table><tr><th>check</th><th>result</th><th>detail</th><th>time</th></tr>{checks}
</table>
{_surroundings_html(report)}
<h2>Afterwards</h2><p>Replicas unchanged: {'yes' if report.replicas_unchanged else 'NO'}
({report.replica_files} files hashed before and after). Cleanup: {len(report.cleanup.removed)} removed,
{e(left)}.</p>
{tails}
</body></html>
"""
