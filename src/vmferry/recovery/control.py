"""Run control of a recovery run: gates it pauses at, hooks it runs around boot groups, cancellation.

Steps of a run, in order: ``group-1`` … ``group-N`` (the boot groups) and ``checks`` (the application
checks). A step may be named by a component of its group (``db`` = the group that boots db).

* **Gates** (``pause_before``): before a gated step the run calls ``Control.wait_gate(step)``, which
  returns when someone released the gate (in a durable run: the workflow's ``resume`` signal) and raises
  :class:`RecoveryCancelled` when the run was cancelled meanwhile. Time spent paused is recorded and not
  counted in the RTO.
* **Hooks**: a host command run before or after a boot group (like SRM callouts or Forklift hooks), by
  ``sh -c`` in its own process group, killed (the whole group) at its timeout. Its environment says
  where the run is: ``VMFERRY_APP``, ``VMFERRY_SITE``, ``VMFERRY_RUN``, ``VMFERRY_STEP``,
  ``VMFERRY_WHEN`` (before/after), ``VMFERRY_COMPONENTS`` and ``VMFERRY_ADDRESSES`` (space separated).
  Each result (exit status, seconds, output tail) goes into the report; a hook that fails or times out
  fails the run, which then cleans up as any failed run does.
* **Cancellation**: ``Control.cancelled()`` is polled while the run waits (for guests, at gates);
  once true the run stops with :class:`RecoveryCancelled` and removes what it created.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vmferry.errors import RecoveryError

WHEN = ("before", "after")
OUTPUT_TAIL = 2000


class RecoveryCancelled(RecoveryError):
    """The run was cancelled; what it created has been (or is being) removed."""


@dataclass(frozen=True)
class Hook:
    """Run ``command`` (a shell command line) ``when`` (before/after) the boot group of ``step``."""

    when: str
    step: str                 # a component name or group-N
    command: str
    timeout: float = 300.0


@dataclass
class HookResult:
    when: str
    step: str
    command: str
    returncode: int | None
    seconds: float
    ok: bool
    output: str = ""
    detail: str = ""

    def to_dict(self) -> dict:
        return {"when": self.when, "step": self.step, "command": self.command, "returncode": self.returncode,
                "seconds": round(self.seconds, 3), "ok": self.ok, "output": self.output, "detail": self.detail}


@dataclass
class Control:
    """What steers one run: gated steps, hooks, and how to wait at a gate / learn of a cancellation.

    ``wait_gate(step)`` blocks until the gate opens (raises RecoveryCancelled when cancelled); the
    default opens at once. ``cancelled()`` is polled; the default never cancels."""

    pause_before: tuple[str, ...] = ()
    hooks: tuple[Hook, ...] = ()
    wait_gate: Callable[[str], None] = field(default=lambda _step: None)
    cancelled: Callable[[], bool] = field(default=lambda: False)

    def check(self) -> None:
        if self.cancelled():
            raise RecoveryCancelled("the run was cancelled")

    def sleep(self, seconds: float) -> None:
        """A sleep that ends early (raising RecoveryCancelled) when the run is cancelled."""
        end = time.monotonic() + seconds
        while True:
            self.check()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.25))


def step_names(groups: tuple[tuple[str, ...], ...]) -> list[str]:
    return [f"group-{i + 1}" for i in range(len(groups))] + ["checks"]


def resolve_step(name: str, groups: tuple[tuple[str, ...], ...], *, hook: bool = False) -> str:
    """The canonical step (``group-N`` or ``checks``) ``name`` means; RecoveryError when none."""
    steps = step_names(groups)
    if name in steps and not (hook and name == "checks"):
        return name
    for i, group in enumerate(groups):
        if name in group:
            return f"group-{i + 1}"
    allowed = [s for s in steps if not (hook and s == "checks")] + [c for g in groups for c in g]
    raise RecoveryError(f"the run has no step {name!r} (steps: {', '.join(allowed)})")


def resolve(control: Control, groups: tuple[tuple[str, ...], ...]) -> Control:
    """``control`` with every step name made canonical (checked against the plan's boot groups)."""
    for h in control.hooks:
        if h.when not in WHEN:
            raise RecoveryError(f"a hook runs before or after a boot group, not {h.when!r}")
        if not h.command.strip():
            raise RecoveryError(f"the hook {h.when} {h.step} has no command")
        if h.timeout <= 0:
            raise RecoveryError(f"the hook {h.when} {h.step} needs a positive timeout, not {h.timeout:g}")
    return Control(pause_before=tuple(resolve_step(s, groups) for s in control.pause_before),
                   hooks=tuple(Hook(h.when, resolve_step(h.step, groups, hook=True), h.command, h.timeout)
                               for h in control.hooks),
                   wait_gate=control.wait_gate, cancelled=control.cancelled)


def run_hook(hook: Hook, env: dict[str, str], *, cancelled: Callable[[], bool] = lambda: False) -> HookResult:
    """Run one hook to its end, its timeout or the run's cancellation (its process group killed)."""
    start = time.monotonic()
    full = dict(os.environ)
    full.update(env)
    with tempfile.TemporaryFile() as out:          # a file, not a pipe: a chatty hook never blocks
        try:
            proc = subprocess.Popen(["sh", "-c", hook.command], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=full, start_new_session=True)
        except OSError as exc:
            return HookResult(hook.when, hook.step, hook.command, None, 0.0, False, detail=f"not started: {exc}")
        stopped = ""
        deadline = start + hook.timeout
        while proc.poll() is None:
            if cancelled():
                stopped = "the run was cancelled"
            elif time.monotonic() >= deadline:
                stopped = f"timed out after {hook.timeout:g} s"
            if stopped:
                _kill_group(proc)
                break
            time.sleep(0.05)
        rc = proc.wait()
        _kill_group(proc)                           # what the hook left running in its group goes with it
        out.seek(max(0, out.seek(0, os.SEEK_END) - OUTPUT_TAIL))
        text = out.read().decode(errors="replace")
    if stopped:
        return HookResult(hook.when, hook.step, hook.command, None, time.monotonic() - start, False, text, stopped)
    return HookResult(hook.when, hook.step, hook.command, rc, time.monotonic() - start, rc == 0, text,
                      "" if rc == 0 else f"exit status {rc}")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
