"""Every hostile or damaged case, run against every command that reads that kind of input, by the real
command-line entry point in a child process limited to 20 s and 1 GiB of address space: exit 2,
exactly one line on standard error naming the file, no "internal error", no traceback, nothing
written (no output, no temp file, no change to the input), no byte of a host file the case points
at in any output, and the input never handed to guest inspection. The diagnostic commands
(validate, check, disk check) are no exception: damaged or hostile input is bad input for every command
(README: exit 1 is for findings of severity error in a package that can be read; 2 for input that
cannot be read safely, is incomplete, damaged or altered).

The children are forked from a fork server that has imported vmferry once (see forkserver.py); a
sample of the cases also runs through a fresh ``python -m vmferry`` (test_real_interpreter). The
commands of one case run concurrently, a few at a time, the first time one of its tests asks.
"""

from __future__ import annotations

import atexit
import queue
import shutil
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.hostile import cases  # noqa: F401  (registers the cases)
from tests.hostile.kit import CASES, CLASSES, Built, Case, Work, commands_for, expand
from tests.hostile.runner import MEMORY_BYTES, TIMEOUT_S, ForkServer, Outcome, run_limited

WORKERS = 3

# --- every case is built once, at collection, in its own folder ----------------------------------
_ROOT = Path(tempfile.mkdtemp(prefix="vmferry-hostile-"))
atexit.register(shutil.rmtree, _ROOT, True)
BUILT: dict[str, tuple[Work, Built]] = {}
for _c in CASES:
    _work = Work(_ROOT / _c.id)
    BUILT[_c.id] = (_work, _c.build(_work))

MATRIX = []
for _c in CASES:
    for _cid, _argv in commands_for(_c, BUILT[_c.id][1]):
        _key = f"{_c.id}::{_cid}"
        MATRIX.append(pytest.param(_c, _cid, id=_key))


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_mode, p.lstat().st_size) for p in sorted(root.rglob("*"))}


class _Ran:
    def __init__(self, built: Built, outcomes: dict[str, tuple[Outcome, Path, Path]], changed: list[str],
                 marker: bytes) -> None:
        self.built, self.outcomes, self.changed, self.marker = built, outcomes, changed, marker


_RESULTS: dict[str, _Ran] = {}
_LOCK = threading.Lock()
_SERVERS: queue.Queue = queue.Queue()


def _tool_log(cwd: Path) -> Path:
    return cwd.parent.parent / "tools" / f"{cwd.name}.log"


def _server_run(argv: list[str], cwd: str) -> Outcome:
    server = _SERVERS.get()
    try:
        return server.run(argv, cwd=cwd, env={"VMFERRY_HOSTILE_GUESTFISH_LOG": str(_tool_log(Path(cwd)))})
    finally:
        _SERVERS.put(server)


@pytest.fixture(scope="module")
def fork_servers():
    servers = [ForkServer() for _ in range(WORKERS)]
    for s in servers:
        _SERVERS.put(s)
    yield
    for s in servers:
        s.close()
    while not _SERVERS.empty():
        _SERVERS.get()


def _run_case(c: Case) -> _Ran:
    work, built = BUILT[c.id]
    root = work.root
    jobs = []
    (root / "tools").mkdir()
    for cid, argv in commands_for(c, built):
        out, cwd = root / "out" / cid, root / "cwd" / cid
        out.mkdir(parents=True)
        cwd.mkdir(parents=True)
        jobs.append((cid, expand(argv, built, out), out, cwd))
    before = _snapshot(root)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {cid: pool.submit(_server_run, argv, str(cwd)) for cid, argv, out, cwd in jobs}
        outcomes = {cid: (futures[cid].result(), out, cwd) for cid, argv, out, cwd in jobs}
    after = _snapshot(root)
    changed = sorted(k for k in before.keys() | after.keys()
                     if before.get(k) != after.get(k) and not k.startswith(("out/", "cwd/", "tools/")))
    return _Ran(built, outcomes, changed, work.marker)


def _ran(c: Case) -> _Ran:
    with _LOCK:
        if c.id not in _RESULTS:
            for old in list(_RESULTS):  # one case at a time stays in memory and on disk
                shutil.rmtree(_ROOT / old, ignore_errors=True)
                del _RESULTS[old]
            _RESULTS[c.id] = _run_case(c)
        return _RESULTS[c.id]


def check_outcome(ran_built: Built, outcome: Outcome, out: Path, cwd: Path, changed: list[str],
                  marker: bytes) -> None:
    err = outcome.stderr_text
    where = (f"argv={outcome.argv}\nexit={outcome.returncode} after {outcome.seconds:.1f}s\n"
             f"stderr={err[-2000:]!r}\nstdout={outcome.stdout[-1000:]!r}")
    assert outcome.returncode is not None, f"still running after {TIMEOUT_S:.0f} s\n{where}"
    log = _tool_log(cwd)
    assert not log.exists(), f"the input reached guest inspection: {log.read_text()[:300]}\n{where}"
    assert "MemoryError" not in err, f"went past {MEMORY_BYTES >> 20} MiB\n{where}"
    assert "Traceback" not in err and "internal error" not in err, where
    names = (ran_built.target.name, *ran_built.names)
    assert outcome.returncode == 2, where
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), f"not exactly one line on stderr\n{where}"
    assert lines[0].startswith("vmferry: error: "), where
    assert any(n in lines[0] for n in names), f"the line names none of {names}\n{where}"
    assert list(out.iterdir()) == [], f"wrote {sorted(p.name for p in out.iterdir())}\n{where}"
    assert list(cwd.iterdir()) == [], f"wrote into the working directory {list(cwd.iterdir())}\n{where}"
    assert changed == [], f"the input changed (temp files?): {changed}\n{where}"
    if ran_built.host:
        for stream in (outcome.stdout, outcome.stderr):
            assert marker not in stream, f"host file bytes in the output\n{where}"
        for p in out.rglob("*"):
            if p.is_file() and not p.is_symlink():
                assert marker not in p.read_bytes(), f"host file bytes in {p}"


@pytest.mark.usefixtures("fork_servers")
@pytest.mark.parametrize(("case", "command"), MATRIX)
def test_hostile_input_refused_in_one_line(case: Case, command: str):
    ran = _ran(case)
    outcome, out, cwd = ran.outcomes[command]
    check_outcome(ran.built, outcome, out, cwd, ran.changed, ran.marker)


# A sample through a fresh interpreter (``python -m vmferry``), first command of every 10th case.
REAL = [pytest.param(c, id=c.id) for i, c in enumerate(CASES) if i % 10 == 0]


@pytest.mark.parametrize("case", REAL)
def test_real_interpreter(case: Case, tmp_path):
    work = Work(tmp_path / "w")
    built = case.build(work)
    cid, argv = commands_for(case, built)[0]
    out, cwd = tmp_path / "out", tmp_path / "cwd" / "run"
    out.mkdir()
    cwd.mkdir(parents=True)
    before = _snapshot(work.root)
    (tmp_path / "tools").mkdir()
    outcome = run_limited(expand(argv, built, out), cwd=str(cwd),
                          env={"VMFERRY_HOSTILE_GUESTFISH_LOG": str(_tool_log(cwd))})
    after = _snapshot(work.root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    check_outcome(built, outcome, out, cwd, changed, work.marker)


def test_at_least_150_cases_in_every_class():
    per_class = Counter(c.cls for c in CASES)
    assert sum(per_class.values()) >= 150, per_class
    assert set(per_class) == set(CLASSES), per_class
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
