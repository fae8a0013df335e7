"""An output has its final name only once it is on the disk: the command's own system calls (strace) show
the temporary file fsynced before it is renamed into place, and the directory fsynced after."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def traced(tmp_path: Path, *argv: str) -> list[str]:
    log = tmp_path / "strace.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat,fsync,fdatasync,rename,renameat,renameat2,close",
                    "-o", str(log), sys.executable, "-m", "vmferry", *argv], check=True, env=env, cwd=tmp_path,
                   capture_output=True)
    return log.read_text().splitlines()


def events(lines: list[str]) -> list[tuple[str, str]]:
    """(call, path) in order: openat gives an fd its path, fsync/close/rename name the paths."""
    fds: dict[tuple[str, str], str] = {}
    out = []
    for line in lines:
        pid = line.split()[0]
        if m := re.search(r'openat\(AT_FDCWD, "([^"]+)", [^)]*\) = (\d+)', line):
            fds[(pid, m.group(2))] = m.group(1)
        elif m := re.search(r"(fsync|fdatasync)\((\d+)\) += 0", line):
            out.append(("fsync", fds.get((pid, m.group(2)), "?")))
        elif m := re.search(r'rename(?:at2?)?\((?:AT_FDCWD, )?"([^"]+)", (?:AT_FDCWD, )?"([^"]+)"', line):
            out.append(("rename", f"{m.group(1)} -> {m.group(2)}"))
    return out


@pytest.mark.parametrize("fmt", ["qcow2", "raw", "vhd"])
def test_a_converted_disk_is_flushed_before_it_takes_its_name(tmp_path, fmt):
    src = tmp_path / "src.raw"
    with open(src, "wb") as f:
        f.write(os.urandom(1 << 20))
        f.truncate(8 << 20)
    out = tmp_path / f"out.{fmt}"
    seen = events(traced(tmp_path, "disk", "convert", str(src), "-O", fmt, "-o", str(out)))
    renames = [i for i, (call, what) in enumerate(seen) if call == "rename" and what.endswith(f"-> {out}")]
    assert len(renames) == 1, seen
    at = renames[0]
    temp = seen[at][1].split(" -> ")[0]
    assert ".vmferry-tmp-" in temp
    assert ("fsync", temp) in seen[:at], seen                      # the data, before the name
    assert ("fsync", str(tmp_path)) in seen[at:], seen            # the name, after the rename
    assert out.exists() and not list(tmp_path.glob(".*vmferry-tmp*"))
