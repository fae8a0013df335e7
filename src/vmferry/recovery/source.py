"""The source side of a planned failover: stop the application's VMs cleanly, then take the last point.

* :func:`stop_source` asks every running source domain to shut down (its guest agent, else the ACPI
  power button; again every :data:`ASK_AGAIN` seconds, and through the agent every :data:`AGENT_AGAIN`
  seconds while its agent has not taken a request — e.g. not connected at the first ask) and waits; a
  domain still running after ``timeout`` seconds is powered off. Domains already off are left as they
  are (a step run again does nothing).
* :func:`final_sync` takes the recovery point nothing was written after: each stopped source domain is
  started **paused** (its vCPUs never run, so its disks stay exactly as the shutdown left them; QEMU
  serves the pull backup of their changes since the last point), the application is synced
  (:func:`vmferry.replication.protect.sync_app`), and the paused domains are powered off again. The
  final point is the application's only sync while it is taken (its sync lease,
  :mod:`vmferry.replication.synclease`): a sync already running (a scheduled one, begun before the
  source stopped) is never abandoned nor overtaken; the final sync waits for it to end (sealed, or
  abandoned once its capture died with the shutdown), at most ``lease_wait`` seconds, then begins its
  own point, which is therefore the newest. A lease whose owner no longer runs (``alive``: a workflow
  run that ended, asked of Temporal by the durable step; a dead process of this host) is not waited for.

Package sources have nothing to stop: their package is what it is; the final sync reads it once more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from vmferry.errors import RecoveryError, TargetError, VmferryError

Say = Callable[[str], None]
POLL = 0.1                # seconds between two looks at the stopping domains (a lag here is in the RTO)
AGENT_TIMEOUT = 10        # seconds libvirt waits for the guest agent's answer
ASK_AGAIN = 10.0          # seconds between two shutdown requests to a domain still running
AGENT_AGAIN = 1.0         # seconds between two tries of the agent's shutdown while the agent did not take one
LEASE_WAIT = 300.0        # seconds the final sync waits for a running sync of the application to end
LEASE_POLL = 2.0


def source_domains(group) -> list[str]:
    return [vm.source for vm in group.vms if vm.source_kind == "domain" and vm.source]


def _connect(group):
    from vmferry.tools import libvirt as lv

    if not group.source_uri:
        raise RecoveryError(f"application {group.app!r}: the source site {group.source_site!r} has no libvirt "
                            "connection")
    try:
        return lv.connect(group.source_uri)
    except (VmferryError, TargetError) as exc:
        raise RecoveryError(f"cannot reach the source site {group.source_site!r}: {exc}") from exc


def stop_source(group, *, timeout: float = 120.0, say: Say | None = None,
                clock: Callable[[], float] = time.monotonic) -> dict[str, str]:
    """Shut the source domains down; domain -> how it stopped (``clean``, ``forced``, ``already off``)."""
    from vmferry.tools import libvirt as lv

    say = say or (lambda _m: None)
    names = source_domains(group)
    out: dict[str, str] = {}
    if not names:
        return out
    lib = lv.binding()
    with _connect(group) as conn:
        doms = {}
        for name in names:
            try:
                dom = conn.domain(name)
            except (VmferryError, TargetError) as exc:
                raise RecoveryError(f"source domain {name!r} at site {group.source_site!r}: {exc}") from exc
            if not dom.isActive():
                out[name] = "already off"
                continue
            doms[name] = dom
        heard: dict[str, bool] = {}                  # domain -> its guest agent took the shutdown
        if doms:
            say(f"shutting down {', '.join(doms)} at {group.source_site}")
            heard.update(_ask_all(doms, lib))
        deadline = clock() + timeout
        asked = agent_asked = clock()
        while doms:
            for name, dom in list(doms.items()):
                try:
                    active = dom.isActive()
                except lib.libvirtError:
                    active = False
                if not active:
                    out[name] = "clean"
                    del doms[name]
            if not doms or clock() >= deadline:
                break
            if clock() - asked >= ASK_AGAIN:          # an agent busy or reconnecting missed it: ask again
                heard.update(_ask_all(doms, lib))
                asked = agent_asked = clock()
            elif clock() - agent_asked >= AGENT_AGAIN:
                # an agent that was not connected (a guest reopening its port) is asked again as soon as it is:
                # waiting for ASK_AGAIN here was ~10 s of the failover's RTO (bench/recover.py)
                unheard = {n: d for n, d in doms.items() if not heard.get(n)}
                if unheard:
                    heard.update(_ask_all(unheard, lib, acpi=False))
                agent_asked = clock()
            time.sleep(POLL)
        for name, dom in doms.items():
            say(f"{name} did not shut down within {timeout:g} s: powering it off")
            try:
                dom.destroy()
            except lib.libvirtError as exc:
                if dom.isActive():
                    raise RecoveryError(f"cannot power off source domain {name!r}: {lv.message(exc)}") from exc
            out[name] = "forced"
    return out


def _ask_all(doms: dict, lib, *, acpi: bool = True) -> dict[str, bool]:
    """Ask every domain at once (libvirt's agent shutdown waits per VM); name -> its agent took it."""
    with ThreadPoolExecutor(max_workers=len(doms)) as pool:
        return dict(zip(doms, pool.map(lambda dom: _ask_shutdown(dom, lib, acpi=acpi), doms.values()),
                        strict=True))


def _ask_shutdown(dom, lib, *, acpi: bool = True) -> bool:
    """The guest agent's shutdown (answered within AGENT_TIMEOUT), else (with ``acpi``) the ACPI power
    button; True when the agent took it. A guest that hears neither is powered off when the timeout passes."""
    try:
        dom.agentSetResponseTimeout(AGENT_TIMEOUT, 0)
    except (lib.libvirtError, AttributeError):
        pass
    try:
        dom.shutdownFlags(lib.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT)
        return True
    except lib.libvirtError:
        pass
    if acpi:
        try:
            dom.shutdownFlags(lib.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
        except lib.libvirtError:
            pass
    return False


def final_sync(group, *, store=None, say: Say | None = None, lease_wait: float = LEASE_WAIT,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
               alive: Callable[[str], bool] | None = None):
    """The last recovery point of the stopped application (see the module text); the RecoveryPoint.
    ``alive`` asks whether the owner of a running sync's lease still runs (a durable run asks Temporal
    about a workflow owner): a dead owner's point is abandoned at once instead of waited for."""
    from vmferry.tools import libvirt as lv

    say = say or (lambda _m: None)
    names = source_domains(group)
    if not names:                         # packages only: nothing to start, the sync reads them once more
        say("taking the final recovery point")
        return _sync_alone(group.app, store, say, lease_wait, clock, sleep, alive)
    lib = lv.binding()
    with _connect(group) as conn:
        started = []
        try:
            to_start = []
            for name in names:
                dom = conn.domain(name)
                if dom.isActive():
                    state = dom.state()[0]
                    if state != lib.VIR_DOMAIN_PAUSED:
                        raise RecoveryError(f"source domain {name!r} runs again: stop it before the final sync")
                    started.append(dom)
                else:
                    to_start.append(dom)
            # all at once: libvirt takes ~0.3-0.6 s to start and ~0.2 s to stop each QEMU here (1.5 s where init
            # reaps QEMU late), in the failover's RTO (bench/recover.py)
            failures = _each(lambda dom: dom.createWithFlags(lib.VIR_DOMAIN_START_PAUSED), to_start)
            started += [dom for dom in to_start if dom not in failures]
            if failures:
                raise next(iter(failures.values()))
            say("taking the final recovery point")
            point = _sync_alone(group.app, store, say, lease_wait, clock, sleep, alive)
        except lib.libvirtError as exc:
            raise RecoveryError(f"cannot start the source domains paused for the final sync: {lv.message(exc)}") \
                from exc
        finally:
            _each(lambda dom: dom.isActive() and dom.destroy(), started)
    return point


def _sync_alone(app: str, store, say: Say, wait: float, clock: Callable[[], float],
                sleep: Callable[[float], None], alive: Callable[[str], bool] | None = None):
    """``sync_app`` once no other sync of ``app`` holds its open point (waited for, at most ``wait`` s)."""
    from vmferry.replication.protect import sync_app
    from vmferry.replication.synclease import SyncRunning

    deadline = clock() + wait
    told = False
    while True:
        try:
            return sync_app(app, store=store, alive=alive)
        except SyncRunning as exc:
            if clock() >= deadline:
                raise RecoveryError(f"the final recovery point of {app!r} cannot be taken: another sync of the "
                                    f"application still holds its open point after {wait:g} s ({exc})") from exc
            if not told:
                say(f"waiting for the running sync of {app} to end before the final point ({exc})")
                told = True
            sleep(LEASE_POLL)


def _each(action, doms: list) -> dict:
    """``action(dom)`` for every domain at once (libvirt serves calls on different domains in parallel);
    the libvirt errors by domain."""
    from vmferry.tools import libvirt as lv

    lib = lv.binding()

    def one(dom):
        try:
            action(dom)
        except lib.libvirtError as exc:
            return exc
        return None

    if not doms:
        return {}
    with ThreadPoolExecutor(max_workers=len(doms)) as pool:
        results = list(pool.map(one, doms))
    return {dom: exc for dom, exc in zip(doms, results, strict=True) if exc is not None}
