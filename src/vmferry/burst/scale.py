"""Add copies of a component at its burst site, and take them away again.

    copies = add_copies(target, 2, state)      # launched, generalized, proved, registered
    removed = remove_copies(target, state, count=None)   # None: all of them

**Add**, per copy (the record is saved before each resource exists, so a failure or a kill leaves
nothing that :func:`remove_copy` cannot find): a name, hostname, machine-id, MAC and pool address; the
run directory ``<storage>/<app>.burst/<copy>/``; a qcow2 overlay per disk over the ready point's layer
(N copies cost N overlays, never N full disks); the system overlay generalized
(:mod:`vmferry.burst.identity`); an OVF environment ISO with ``vmferry.net.0.address``/``.gateway`` and
``vmferry.hostname``; the replica's domain rewritten for the copy (name, overlays, NIC on the site's
network with the copy's MAC, console log, agent channel) and started. All copies of a run boot together
and must prove themselves (guest agent + the component's health checks,
:func:`vmferry.recovery.proofs.prove`); only then are they registered: HAProxy, DNS, locator. A copy that
fails is removed with everything it had, and the run fails.

**Remove**: the newest serving copies are drained in HAProxy together, their sessions waited out (up to the
policy's drain timeout), then each leaves HAProxy, DNS and the locator, its domain is stopped and
undefined, its run directory (overlays, ISO, log) deleted; its address is free again once its record is gone.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from vmferry.burst import identity, register, store
from vmferry.burst.model import BurstCopy, BurstRecord
from vmferry.burst.target import BurstTarget, free_address
from vmferry.errors import BurstError, VmferryError
from vmferry.ovfenv.document import Environment
from vmferry.ovfenv.iso import write_iso
from vmferry.recovery.domain import isolated_domain_xml
from vmferry.recovery.proofs import Proving, console_tail, prove
from vmferry.sites import libvirt_host
from vmferry.tools import libvirt as lv
from vmferry.tools import proc

Say = Callable[[str], None]
SOCKET_MAX = 100


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def burst_root(target: BurstTarget) -> Path:
    return Path(target.storage) / f"{target.app.name}.burst"


def _owner(storage: str) -> tuple[int, int] | None:
    st = os.stat(storage)
    if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
        return st.st_uid, st.st_gid               # QEMU runs as the storage directory's owner
    return None


def _give(path, owner) -> None:
    if owner:
        os.chown(path, *owner)


def load_record(target: BurstTarget, state) -> BurstRecord:
    return store.load(state, target.app.name, target.component, target.site.name)


def _new_copy(target: BurstTarget, record: BurstRecord) -> BurstCopy:
    index = record.next_index
    record.next_index += 1
    hostname = identity.hostname_for(target.component, index)
    name = f"{target.app.name}-{hostname}"
    used_macs = {c.mac for c in record.copies}
    address = free_address(target, {c.address for c in record.copies})
    prefix = target.site_network.network.prefixlen
    return BurstCopy(name=name, index=index, hostname=hostname, machine_id=identity.new_machine_id(),
                     mac=identity.new_mac(used_macs), address=address, prefix=prefix, network=target.network,
                     rundir=str(burst_root(target) / name), point_id=target.point_id, created_at=_now())


def _env(target: BurstTarget, copy: BurstCopy) -> dict[str, str]:
    # the replica's own MAC settings would pin the original's MAC in the guest's configuration
    props = {k: v for k, v in target.vm.env if not (k.startswith("vmferry.net.") and k.endswith(".mac"))}
    props["vmferry.net.0.address"] = f"{copy.address}/{copy.prefix}"
    if target.site_network.gateway:
        props["vmferry.net.0.gateway"] = target.site_network.gateway
    props["vmferry.hostname"] = copy.hostname
    return props


def copy_domain_xml(target: BurstTarget, copy: BurstCopy, overlays: dict[str, str], iso: str) -> str:
    sock = Path(copy.rundir) / "agent"
    xml = isolated_domain_xml(target.vm.domain_xml, name=copy.name, overlays=overlays, networks=[copy.network],
                              console_log=str(Path(copy.rundir) / "console.log"), env_iso=iso, what=copy.name,
                              agent_socket=str(sock) if len(str(sock).encode()) <= SOCKET_MAX else None)
    root = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    nic = root.find("devices/interface")
    mac = nic.find("mac")
    if mac is None:
        mac = etree.Element("mac")
        nic.insert(0, mac)
    mac.set("address", copy.mac)
    return etree.tostring(root, encoding="unicode")


def _prepare(target: BurstTarget, copy: BurstCopy, owner, clock) -> str:
    """Run directory, overlays (the system one generalized), OVF environment ISO; returns the domain XML."""
    t = clock()
    rundir = Path(copy.rundir)
    rundir.mkdir(mode=0o750, exist_ok=True)
    _give(rundir, owner)
    overlays = {}
    for disk in target.vm.disks:
        overlay = rundir / f"{disk.target}.qcow2"
        proc.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", os.path.abspath(disk.path),
                  str(overlay)], timeout=60)
        overlays[disk.target] = str(overlay)
        copy.overlays.append(str(overlay))
    copy.timings["overlays"] = round(clock() - t, 3)
    t = clock()
    identity.generalize_overlay(overlays[target.vm.disks[0].target], copy)
    for path in overlays.values():
        _give(path, owner)
    copy.timings["generalize"] = round(clock() - t, 3)
    iso = rundir / "env.iso"
    write_iso(Environment(id=copy.name, properties=_env(target, copy)).to_xml(), iso)
    _give(iso, owner)
    return copy_domain_xml(target, copy, overlays, str(iso))


def add_copies(target: BurstTarget, count: int, state, *, say: Say | None = None,
               clock: Callable[[], float] = time.monotonic) -> list[BurstCopy]:
    """Launch ``count`` copies, prove them, register them. Returns the copies now serving."""
    say = say or (lambda _m: None)
    if count < 1:
        raise BurstError(f"the number of copies to add must be at least 1, not {count}")
    with store.locked(state, target.app.name, target.component):
        record = load_record(target, state)
        clean_unfinished(target, record, state, say)
        limit = target.policy.max if target.policy else None
        if limit is not None and len(record.copies) + count > limit:
            raise BurstError(f"{target.component} may have at most {limit} burst copies (policy max); it has "
                             f"{len(record.copies)}")
        return add_locked(target, record, count, state, say, clock)


def add_locked(target: BurstTarget, record: BurstRecord, count: int, state, say: Say, clock) -> list[BurstCopy]:
    """:func:`add_copies` for a caller that holds the component's lock and its loaded ``record``."""
    new = []
    for _ in range(count):
        copy = _new_copy(target, record)
        record.copies.append(copy)
        new.append(copy)
    store.save(state, record)
    owner = _owner(target.storage)
    try:
        with lv.connect(target.uri) as conn:
            facts = libvirt_host.probe(conn)
            root = burst_root(target)
            root.mkdir(mode=0o750, exist_ok=True)
            _give(root, owner)
            t0 = clock()
            for copy in new:
                say(f"preparing {copy.name} ({copy.hostname}, {copy.address}, {copy.mac})")
            identity.load_binding()
            with ThreadPoolExecutor(max_workers=len(new)) as pool:     # one libguestfs appliance per copy
                xmls = list(pool.map(lambda c: _prepare(target, c, owner, clock), new))
            store.save(state, record)
            started = {}
            for copy, xml in zip(new, xmls, strict=True):
                t = clock()
                libvirt_host.define_and_start(conn, xml, start=True, facts=facts, domain_type=target.domain_type)
                copy.timings["define_start"] = round(clock() - t, 3)
                copy.timings["launch"] = round(clock() - t0, 3)
                started[copy.name] = clock()
            items = [Proving(c.name, c.name, c.address, target.vm.probes, target.vm.agent, target.vm.timeout,
                             started[c.name]) for c in new]
            prove(conn, items, clock=clock)
            failed = [(c, p) for c, p in zip(new, items, strict=True) if p.proven_at is None]
            if failed:
                c, p = failed[0]
                tail = console_tail(Path(c.rundir) / "console.log", 8)
                raise BurstError(f"copy {c.name} did not prove itself: {p.failure}"
                                 + (f" (console: {tail[-300:]})" if tail else ""))
            for c, p in zip(new, items, strict=True):
                c.timings["boot_to_health"] = round(p.proven_at - started[c.name], 3)
                say(f"{c.name} proved itself in {c.timings['boot_to_health']:.1f} s")
        for copy in new:
            t = clock()
            _register(target, copy, record, state)
            copy.state, copy.serving_at = "serving", _now()
            copy.timings["registration"] = round(clock() - t, 3)
            record.last_change = time.time()
            store.save(state, record)
            say(f"{copy.name} serves ({target.backend or 'no pool'}: {copy.address})")
    except BaseException as exc:
        say(f"adding copies failed ({exc}); removing what this run made")
        for copy in reversed(new):
            try:
                remove_copy(target, copy)
            except VmferryError as again:
                say(f"cleanup of {copy.name} failed: {again}")
                continue
            record.copies.remove(copy)
        store.save(state, record)
        raise
    return new


def _register(target: BurstTarget, copy: BurstCopy, record: BurstRecord, state) -> None:
    if target.pool is not None:
        copy.server = f"{target.backend}/{copy.name}"
        store.save(state, record)
        register.join_pool(target, copy)
    for rrset in register.dns_names(target, copy):
        copy.dns.append(rrset)
        store.save(state, record)
        register.dns_add(target, copy, rrset)
    if target.site.locator is not None:
        copy.eid = target.instance_name(copy.hostname)
        store.save(state, record)
        register.locator_add(target, copy, copy.eid)


def remove_copy(target: BurstTarget, copy: BurstCopy, *, forced: bool = False) -> list[str]:
    """Remove everything of ``copy`` (idempotent): pool, DNS, locator, domain, run directory."""
    done = []
    if copy.server and target.pool is not None and register.leave_pool(target, copy, forced=forced):
        done.append(f"server {copy.server}")
    for rrset in copy.dns:
        if register.dns_remove(target, copy, rrset):
            done.append(f"dns {rrset[0]} {rrset[1]} {copy.address}")
    if copy.eid and target.site.locator is not None and register.locator_remove(target, copy.eid):
        done.append(f"locator {copy.eid}")
    with lv.connect(target.uri) as conn:
        if copy.name in conn.names():
            conn.undefine(copy.name)
            done.append(f"domain {copy.name}")
    rundir = Path(copy.rundir)
    if rundir.is_dir() and not rundir.is_symlink():
        shutil.rmtree(rundir)
        done.append(f"dir {rundir}")
    root = rundir.parent
    if root == burst_root(target) and root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    return done


def clean_unfinished(target: BurstTarget, record: BurstRecord, state, say: Say) -> None:
    """Copies a run that died left launching or draining: removed before anything else happens."""
    for copy in [c for c in record.copies if c.state != "serving"]:
        say(f"removing {copy.name}, left {copy.state} by an earlier run")
        remove_copy(target, copy, forced=True)
        record.copies.remove(copy)
        store.save(state, record)


def remove_copies(target: BurstTarget, state, *, count: int | None = None, drain_timeout: float | None = None,
                  say: Say | None = None, clock: Callable[[], float] = time.monotonic,
                  sleep=time.sleep) -> list[str]:
    """Drain and remove the ``count`` newest copies (all when None). Returns the names removed."""
    say = say or (lambda _m: None)
    with store.locked(state, target.app.name, target.component):
        record = load_record(target, state)
        clean_unfinished(target, record, state, say)
        return remove_locked(target, record, state, count, drain_timeout, say, clock, sleep)


def remove_locked(target: BurstTarget, record: BurstRecord, state, count: int | None, drain_timeout: float | None,
            say: Say, clock, sleep) -> list[str]:
    """:func:`remove_copies` for a caller that holds the component's lock and its loaded ``record``."""
    serving = sorted(record.serving(), key=lambda c: c.index)
    if count is not None and count < 1:
        raise BurstError(f"the number of copies to remove must be at least 1, not {count}")
    chosen = serving if count is None else serving[-count:]
    if drain_timeout is None:
        drain_timeout = target.policy.drain_timeout if target.policy else 60.0
    for copy in chosen:
        copy.state = "draining"
    store.save(state, record)
    forced = False
    if target.pool is not None and chosen:
        drained = [c.name for c in chosen if register.drain(target, c)]
        say(f"draining {', '.join(drained) or 'nothing'} in {target.backend}")
        end = clock() + drain_timeout
        while drained:
            left = {n: s for n, s in register.current_sessions(target, drained).items() if s > 0}
            if not left:
                break
            if clock() >= end:
                say(f"drain timeout: {left} sessions cut")
                forced = True
                break
            sleep(0.2)
    out = []
    for copy in reversed(chosen):
        for item in remove_copy(target, copy, forced=forced):
            say(f"removed {item}")
        record.copies.remove(copy)
        record.last_change = time.time()
        store.save(state, record)
        out.append(copy.name)
    return out
