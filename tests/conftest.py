"""Shared fixtures: paths to the real sample packages and a runner for the vmferry command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
COT = DATA / "cot"
V2V = DATA / "virt-v2v"
OVIRT = DATA / "ovirt"
ALL_SAMPLES = sorted(p for p in DATA.glob("*/*.ovf") if p.name != "ersatz_ovf_3.0.ovf")


def run_vmferry(*args, cwd=None, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run the real ``vmferry`` command in a child process."""
    full_env = dict(os.environ)
    full_env.pop("VMFERRY_DEBUG", None)
    full_env.update(env or {})
    result = subprocess.run([sys.executable, "-m", "vmferry", *map(str, args)], capture_output=True, text=True,
                            cwd=cwd, env=full_env, timeout=timeout)
    TRIGGERED.update(RULE_ID.findall(result.stdout + result.stderr))
    return result


@pytest.fixture
def vmferry():
    return run_vmferry


# --- pytest-xdist (`make test` runs two workers, --dist loadgroup) ----------------------------------
# Tests that use the privileged private libvirtd (host bridges, the host's iptables chains) run on one
# worker, one after the other: two such daemons would fight over the same LIBVIRT_* chains. They are
# collected first, so that this long group starts at once and the other worker takes everything else.
HOST_NETWORK_FIXTURES = {"netlibvirtd"}


@pytest.fixture(scope="session")
def netlibvirtd():
    """One privileged private libvirtd per pytest process (tests/guest/libvirtd.py ``start_system``): it can
    create libvirt networks (recovery, burst, console tests). Each test removes what it defined in it."""
    if os.geteuid() != 0:
        pytest.skip("libvirt networks need a privileged libvirtd (root)")
    from tests.guest import libvirtd as _libvirtd

    daemon, proc = _libvirtd.start_system()
    try:
        yield daemon
    finally:
        _libvirtd.stop(proc, daemon.workdir.parent)


@pytest.fixture(autouse=True)
def _test_runs_do_not_outlive_their_test(request):
    """On the shared privileged daemon, a test recovery's domains and isolated networks
    (``vmferry-test-*``) never outlive the test that made them: a test that failed half-way (a run left
    paused, a worker stopped under it) would otherwise hold its subnet's host bridge and fail every later
    test on that subnet ("Network is already in use by interface vmft…"). What is removed is printed;
    the tests themselves assert that a run leaves nothing."""
    yield
    if "netlibvirtd" not in request.fixturenames:
        return
    from vmferry.tools import libvirt as lv

    daemon = request.getfixturevalue("netlibvirtd")
    removed = []
    with lv.connect(daemon.uri) as conn:
        for name in conn.names():
            if name.startswith("vmferry-test-"):
                conn.undefine(name)
                removed.append(f"domain {name}")
        for name in conn.networks():
            if name.startswith("vmferry-test-") and conn.remove_network(name):
                removed.append(f"network {name}")
    if removed:
        print(f"\n{request.node.nodeid} left on the shared libvirtd, removed: {', '.join(removed)}")


def pytest_collection_modifyitems(config, items):
    hostnet = []
    for item in items:
        if HOST_NETWORK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("hostnet"))
            hostnet.append(item)
    if hostnet:
        first = set(map(id, hostnet))
        items[:] = hostnet + [i for i in items if id(i) not in first]
    if getattr(config.option, "loadgroup", False):      # set on xdist workers only
        _group_by_xdist_group(items)


def _group_by_xdist_group(items) -> None:
    """pytest-xdist's ``--dist loadgroup`` schedules by a ``@group`` suffix of each test's node id, which it
    sets through ``item._nodeid``; pytest 9 keeps the id in ``item._id`` and ignores that, so every test
    was its own group: a module's tests ran on both workers, each setting up the module's world (two
    privileged daemons, the same bridges and subnets: clean-clone CI failed on it). The suffix is set here."""
    from _pytest.nodeid import coerce_node_id

    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and "@" not in item.nodeid and hasattr(item, "_id"):
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")


# --- every documented rule must be produced by some test ------------------------------------------
# Rule ids produced in this process (Finding objects) or printed by a vmferry child process run through
# run_vmferry are recorded. With VMFERRY_CHECK_RULES=1 (set by `make test`, which runs the whole suite)
# the session fails when a rule of docs/rules.md was produced by no test.

RULE_ID = re.compile(r"VMF-[A-Z]+-\d{3}")
TRIGGERED: set[str] = set()


def _record_findings() -> None:
    from vmferry.findings import Finding

    original = Finding.__post_init__

    def post_init(self) -> None:
        original(self)
        TRIGGERED.add(self.rule)

    Finding.__post_init__ = post_init


_record_findings()


def documented_rules() -> set[str]:
    text = (Path(__file__).parent.parent / "docs" / "rules.md").read_text()
    return set(re.findall(r"^\| (VMF-[A-Z]+-\d{3}) \|", text, re.M))


def _seen_path() -> str | None:
    return os.environ.get("VMFERRY_RULES_SEEN")


def pytest_testnodedown(node, error):
    """Controller side of pytest-xdist: each worker sends the rule ids its tests produced."""
    TRIGGERED.update(getattr(node, "workeroutput", {}).get("vmferry_rules", ()))


def pytest_sessionfinish(session, exitstatus):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:                  # an xdist worker: hand the ids to the controller
        workeroutput["vmferry_rules"] = sorted(TRIGGERED)
        return
    if _seen_path():                              # VMFERRY_RULES_SEEN=FILE: the ids produced, for a partial run
        Path(_seen_path()).write_text("\n".join(sorted(TRIGGERED)) + "\n")
    if os.environ.get("VMFERRY_CHECK_RULES") != "1" or exitstatus != 0:
        return
    missing = sorted(documented_rules() - TRIGGERED)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if missing:
        if reporter:
            reporter.write_line(f"rules documented in docs/rules.md but produced by no test: {', '.join(missing)}",
                                red=True)
        session.exitstatus = 1
    elif reporter:
        reporter.write_line(f"every one of the {len(documented_rules())} documented rules was produced by a test")
