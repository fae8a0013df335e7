"""Show what vmferry does with hostile cases: ``python -m tests.hostile.explain CASE-ID [COMMAND-ID...]``
builds each case and runs its commands (through a fresh ``python -m vmferry``), printing exit status,
time and output. A developer's tool for the matrix of test_matrix.py."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.hostile import cases  # noqa: F401
from tests.hostile.kit import CASES, Work, commands_for, expand
from tests.hostile.runner import run_limited


def explain(case_id: str, only: list[str]) -> None:
    case = next(c for c in CASES if c.id == case_id)
    with tempfile.TemporaryDirectory() as tmp:
        work = Work(Path(tmp) / "w")
        built = case.build(work)
        for cid, argv in commands_for(case, built):
            if only and cid not in only:
                continue
            out = Path(tmp) / "out" / cid
            out.mkdir(parents=True)
            o = run_limited(expand(argv, built, out), cwd=str(out))
            print(f"== {case_id}::{cid} exit={o.returncode} {o.seconds:.1f}s wrote={[p.name for p in out.iterdir()]}")
            print("   stderr:", o.stderr_text.strip()[:600])
            print("   stdout:", o.stdout.decode(errors="replace").strip()[:300])


def counts() -> None:
    """Cases per class and runs per command (``python -m tests.hostile.explain --counts``)."""
    from collections import Counter

    per_class: Counter = Counter()
    per_command: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for c in CASES:
            per_class[c.cls] += 1
            for cid, _argv in commands_for(c, c.build(Work(Path(tmp) / c.id))):
                per_command[cid] += 1
    print("cases per class:", dict(per_class), "total", sum(per_class.values()))
    print("runs per command:", dict(per_command), "total", sum(per_command.values()))


if __name__ == "__main__":
    if sys.argv[1:] == ["--counts"]:
        counts()
    else:
        explain(sys.argv[1], sys.argv[2:])
