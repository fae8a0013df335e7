"""Drivers: the initramfs of every installed kernel holds the storage and network drivers of every
hypervisor the image is repaired for, and of the one it came from.

The guest's own configuration is changed (initramfs-tools: ``/etc/initramfs-tools/modules``, whatever
``MODULES=`` says; dracut: ``add_drivers+=`` in ``/etc/dracut.conf.d/vmferry.conf``), so the guest's
tool keeps the drivers whenever it runs again (a kernel update); then that tool regenerates the
initramfs inside the libguestfs appliance, and vmferry's own initramfs reader checks the result.
Only drivers whose module exists for a kernel are asked for; built-in ones need nothing.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vmferry.errors import GuestError
from vmferry.guest import bootrepair, kmod
from vmferry.guest import initramfs as initramfs_reader

if TYPE_CHECKING:
    from vmferry.guest.repair import Editor

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UPDATE_INITRAMFS = ("/usr/sbin/update-initramfs", "/sbin/update-initramfs")
DRACUT = ("/usr/bin/dracut", "/usr/sbin/dracut", "/sbin/dracut")


class KernelDrivers:
    def __init__(self, version: str, modules: set[str], builtin: set[str], initrd: str | None) -> None:
        self.version, self.modules, self.builtin, self.initrd = version, modules, builtin, initrd
        self.in_initrd: set[str] | None = None


def _kernels(ed: Editor) -> list[KernelDrivers]:
    s = ed.s
    base = "/lib/modules" if s.is_dir("/lib/modules") else "/usr/lib/modules"
    boot = set(s.ls("/boot"))
    out = []
    for v in s.ls(base):
        if f"vmlinuz-{v}" not in boot and not s.exists(f"{base}/{v}/vmlinuz"):
            continue
        modules = {n for p in s.find(f"{base}/{v}") if (n := kmod.module_name(p))}
        builtin = kmod.builtin_from_list(s.read_text(f"{base}/{v}/modules.builtin") or "")
        builtin |= kmod.builtin_from_config(s.read_text(f"/boot/config-{v}") or "")
        initrd = next((f"/boot/{n}" for n in (f"initrd.img-{v}", f"initramfs-{v}.img", f"initrd-{v}",
                                              f"initramfs-{v}") if n in boot), None)
        out.append(KernelDrivers(v, modules, builtin, initrd))
    return out


def _read_initrd(ed: Editor, path: str) -> set[str] | None:
    with tempfile.TemporaryDirectory(prefix="vmferry-initrd-") as tmp:
        local = Path(tmp) / "initrd"
        try:
            ed.s.download(path, local)
            return set(initramfs_reader.summarise(path, initramfs_reader.read_file(local)).modules)
        except GuestError as exc:
            ed.report.problems.append(f"{path}: cannot be read: {exc}")
            return None


def infer_source(kernels: list[KernelDrivers]) -> list[str]:
    """Hypervisors whose drivers the current initramfs images hold: where the image comes from."""
    found: list[str] = []
    for k in kernels:
        for driver, hv in bootrepair.SOURCE_EVIDENCE.items():
            if k.in_initrd and driver in k.in_initrd and hv not in found:
                found.append(hv)
    return found


def repair_drivers(ed: Editor, targets: list[str], source: list[str] | None, *, regenerate: bool = True,
                   host_splice: bool = True) -> None:
    s, report = ed.s, ed.report
    kernels = _kernels(ed)
    if not kernels:
        report.problems.append("no installed kernel found (/lib/modules with a /boot/vmlinuz): drivers not checked")
        return
    for k in kernels:
        if k.initrd:
            k.in_initrd = _read_initrd(ed, k.initrd)
    report.source = list(source) if source is not None else infer_source(kernels)
    wanted = bootrepair.wanted_drivers(list(dict.fromkeys([*targets, *report.source])))
    asked: dict[str, list[str]] = {}
    for k in kernels:
        asked[k.version] = [d for d in wanted if d in k.modules and d not in k.builtin]
        absent = [d for d in wanted if d not in k.modules and d not in k.builtin]
        if absent:
            report.notes.append(f"kernel {k.version} has no {', '.join(absent)} (neither a module nor built in)")
    union = [d for d in wanted if any(d in a for a in asked.values())]
    tool = "initramfs-tools" if any(s.exists(p) for p in UPDATE_INITRAMFS) else \
        "dracut" if any(s.exists(p) for p in DRACUT) else None
    if tool is None:
        lacking = [k.version for k in kernels if k.in_initrd is None or set(asked[k.version]) - k.in_initrd]
        if lacking:
            report.problems.append("the guest has neither initramfs-tools nor dracut: the initramfs of kernel "
                                   f"{', '.join(lacking)} cannot be regenerated with the drivers it lacks")
        _record(report, kernels, asked)
        return
    if tool == "initramfs-tools":
        new = bootrepair.initramfs_tools_modules(ed.text(bootrepair.INITRAMFS_TOOLS_MODULES), union)
        ed.write(bootrepair.INITRAMFS_TOOLS_MODULES, new, "initramfs-tools: the drivers of "
                 f"{', '.join(dict.fromkeys([*targets, *report.source]))} in every initramfs update-initramfs makes")
    else:
        new = bootrepair.dracut_conf(ed.text(bootrepair.DRACUT_CONF), union)
        ed.write(bootrepair.DRACUT_CONF, new, "dracut: the drivers of "
                 f"{', '.join(dict.fromkeys([*targets, *report.source]))} in every initramfs dracut makes")
    stale = [k for k in kernels if k.in_initrd is None or set(asked[k.version]) - k.in_initrd]
    if not stale or not regenerate:
        _record(report, kernels, asked)
        return
    if report.dry_run:
        report.notes.append(f"would regenerate the initramfs of kernel {', '.join(k.version for k in stale)} "
                            f"with {tool}")
        return
    for k in stale:
        started = time.monotonic()
        how = tool
        if tool == "initramfs-tools" and k.initrd and host_splice and _splice(ed, k, asked[k.version]):
            how = "vmferry (host-side, as update-initramfs would)"
        else:
            argv = ["update-initramfs", "-u" if k.initrd else "-c", "-k", k.version] if tool == "initramfs-tools" \
                else ["dracut", "-f", "--kver", k.version]
            s.command(["/bin/sh", "-c", f"{PATH} exec \"$0\" \"$@\"", *argv])
        report.timed("regenerate", started)
        report.regenerated.append(k.version)
        if not k.initrd:
            k.initrd = next((f"/boot/{n}" for n in (f"initrd.img-{k.version}", f"initramfs-{k.version}.img")
                             if s.exists(f"/boot/{n}")), None)
        k.in_initrd = _read_initrd(ed, k.initrd) if k.initrd else None
        if k.initrd:
            ed.report.changes.append(_initrd_change(k, how))
    _record(report, kernels, asked)


def _initrd_change(k: KernelDrivers, tool: str):
    from vmferry.guest.repair import Change

    held = sorted(d for d in (k.in_initrd or ()) if d in kmod.WATCHED or d in bootrepair.COMMON_DRIVERS)
    return Change(k.initrd or "", None, f"(regenerated by {tool}; drivers: {', '.join(held)})",
                  f"initramfs of kernel {k.version} regenerated with the drivers its configuration now lists")


def _splice(ed: Editor, k: KernelDrivers, wanted: list[str]) -> bool:
    """Add the drivers to the initramfs on the host (:mod:`vmferry.guest.initramfs_splice`); False (and a
    note) when this image needs the guest's own tool."""
    from vmferry.guest.initramfs_splice import SpliceUnsupported, splice

    s = ed.s
    base = "/lib/modules" if s.is_dir("/lib/modules") else "/usr/lib/modules"
    links = {n: (ed.text(f"/etc/systemd/network/{n}") or "").encode() for n in s.ls("/etc/systemd/network")
             if n.endswith(".link")}
    with tempfile.TemporaryDirectory(prefix="vmferry-splice-") as tmp:
        local = Path(tmp) / "initrd"
        s.download(k.initrd or "", local)

        def read_module(rel: str) -> bytes:
            dst = Path(tmp) / "module"
            s.download(f"{base}/{k.version}/{rel}", dst)
            return dst.read_bytes()

        try:
            new, _added = splice(local.read_bytes(), k.version, wanted, s.read_text(f"{base}/{k.version}/modules.dep") or "",
                                 s.read_text(f"{base}/{k.version}/modules.softdep") or "", read_module,
                                 k.initrd or "", links=links)
        except (SpliceUnsupported, GuestError) as exc:
            ed.report.notes.append(f"initramfs of kernel {k.version}: {exc}; regenerated by the guest's own tool")
            return False
        local.write_bytes(new)
        s.upload(local, k.initrd or "")
    return True


def _record(report, kernels: list[KernelDrivers], asked: dict[str, list[str]]) -> None:
    """Verification: what each initramfs holds, and a problem for every driver asked for and not in it."""
    for k in kernels:
        if k.in_initrd is None:
            if asked[k.version]:
                report.problems.append(f"kernel {k.version}: no readable initramfs to verify")
            continue
        report.drivers[k.version] = sorted(d for d in asked[k.version] if d in k.in_initrd)
        missing = [d for d in asked[k.version] if d not in k.in_initrd]
        if missing:
            report.problems.append(f"the initramfs of kernel {k.version} still lacks {', '.join(missing)}")
