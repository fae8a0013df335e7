"""Run a command as a child subreaper: the processes it orphans (libvirtd's daemonized QEMU) become this
process's children and are reaped at once.

Why: on this host PID 1 reaps orphans about 1.4 s late, and libvirt waits for the reaping each time a
domain stops (``virProcessKillPainfully`` polls until the pid is gone): every ``destroy`` of the tests'
private daemons took ~1.5 s (measured by bench/recover.py; QEMU itself exits in ~10 ms). A host whose
init reaps at once (systemd) does not have that delay; the daemons run under this so the tests and
benches see such a host.

    python tests/guest/reaper.py COMMAND [ARGS...]

Exits with the command's status (after reaping what it left, for up to GRACE seconds); SIGTERM, SIGINT
and SIGHUP are passed on to it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
GRACE = 3.0              # seconds the processes the command left get to end (then PID 1 has them)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: reaper.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        os.execvp(argv[0], argv)                  # no subreaper here: just the command
    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: os.kill(child, signum))
    code = 0
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return code
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code   # killed by a signal: 128 + its number, as a shell says
            break
    deadline = time.monotonic() + GRACE          # what the command left: reaped as it ends, a little while
    while time.monotonic() < deadline:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
