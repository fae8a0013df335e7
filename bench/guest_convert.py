"""Benchmark of issue 11: vmferry's conversion with guest repair against virt-v2v, on the same OVA.

In one run, on the real Debian 12 VMware guest of the test suite (tests/guestimage/debian.py: built
with mmdebstrap, cached; PVSCSI disk, VMXNET3 NIC, initramfs with VMware's drivers only, static
address on ens192), in its GRUB variant (virt-v2v refuses the EXTLINUX one: "no bootloader detected"):

* ``vmferry convert OVA --to kvm`` (guest repair on, the default) and ``virt-v2v -i ova OVA -o local
  -of qcow2`` (Debian's virt-v2v 2.2), each timed from start to end of the command;
* both outputs booted on a private real libvirtd (QEMU under TCG, ``tests/guest/libvirtd.py``); the guest
  prints its root device, the drivers under it, its NICs and addresses on the serial console.

Printed: the conversion time of each and the ratio vmferry/virt-v2v, booted yes/no, address kept
yes/no (the static address on the NIC with the source MAC), disk bus and NIC model chosen.
Goal: ratio <= 0.5, vmferry's output booting on virtio with the address kept.

virt-v2v's domain XML is booted as written except what this private, unprivileged daemon needs: its
NIC becomes user-mode networking (model and MAC kept), a serial console logged to a file is added, its
vsock device and guest-agent channel are dropped (neither works in an unprivileged session daemon under
a long temporary path) and the domain type is what the host offers (vmferry deploy picks it). vmferry's XML is booted as written
(``--network-map "VM Network=user"``).

virt-v2v is a bench-only dependency, installed by hand (Debian 12's package does not pull in nbdkit
and libnbd-bin, which it needs)::

    apt-get install --no-install-recommends virt-v2v nbdkit libnbd-bin

Without it the bench measures and boots vmferry's side and says virt-v2v was skipped.
Run as root (the guest build needs it): ``PYTHONPATH=src .venv/bin/python bench/guest_convert.py
[--no-boot]``. Not part of ``make test``. One run each (a conversion takes minutes).
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# bench/ holds a module named "inspect": keep it from shadowing the standard library's (dataclasses
# imports it, so this comes first)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import argparse  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from lxml import etree  # noqa: E402

from tests.guest import libvirtd as private_libvirtd  # noqa: E402
from tests.guestimage import debian  # noqa: E402
from vmferry.tools.guestfs import guestfs_env  # noqa: E402

BOOT_TIMEOUT = 600


@dataclass
class Side:
    tool: str
    seconds: float | None = None
    xml: Path | None = None
    disk_bus: str = "?"
    nic_model: str = "?"
    booted: bool | None = None
    address_kept: bool | None = None
    detail: str = ""


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return elapsed, proc


def read_choices(side: Side) -> None:
    doc = etree.parse(str(side.xml))
    boot_disk = doc.find("devices/disk[@device='disk']")
    side.disk_bus = boot_disk.find("target").get("bus")
    side.nic_model = doc.find("devices/interface/model").get("type")


def run_vmferry(ova: Path, out: Path) -> Side:
    side = Side("vmferry")
    side.seconds, _ = timed([sys.executable, "-m", "vmferry", "convert", str(ova), "--to", "kvm", "-o", str(out),
                             "--domain-type", "qemu", "--network-map", "VM Network=user"])
    (side.xml,) = out.glob("*.xml")
    read_choices(side)
    return side


def run_virt_v2v(ova: Path, out: Path) -> Side:
    side = Side("virt-v2v")
    if not shutil.which("virt-v2v"):
        side.detail = ("skipped: virt-v2v is not installed "
                       "(apt-get install --no-install-recommends virt-v2v nbdkit libnbd-bin)")
        return side
    out.mkdir()
    side.seconds, _ = timed(["virt-v2v", "-i", "ova", str(ova), "-o", "local", "-os", str(out), "-of", "qcow2"],
                            env=guestfs_env())
    (side.xml,) = out.glob("*.xml")
    read_choices(side)
    return side


def bootable_here(xml: Path, log: Path) -> None:
    """Make virt-v2v's XML bootable on the private daemon: user-mode NIC (model and MAC kept) and a
    serial console logged to ``log``."""
    doc = etree.parse(str(xml))
    devices = doc.getroot().find("devices")
    for nic in devices.findall("interface"):
        nic.set("type", "user")
        for child in list(nic):
            if child.tag not in ("mac", "model"):
                nic.remove(child)
    # vsock needs /dev/vhost-vsock, which an unprivileged session daemon cannot open; the guest-agent
    # channel's socket path under the private daemon's directory exceeds the UNIX socket path limit
    for old in (devices.findall("serial") + devices.findall("console") + devices.findall("vsock")
                + devices.findall("channel")):
        devices.remove(old)
    serial = etree.SubElement(devices, "serial", type="pty")
    etree.SubElement(serial, "log", file=str(log), append="off")
    etree.SubElement(serial, "target", port="0")
    doc.write(str(xml))


def boot(daemon, side: Side, mac: str) -> None:
    if side.tool == "virt-v2v":
        bootable_here(side.xml, side.xml.parent / "console.log")
    log_el = etree.parse(str(side.xml)).find("devices/serial/log")
    log = Path(log_el.get("file"))
    for root, _dirs, files in os.walk(side.xml.parent):
        daemon.own(Path(root))
        for f in files:
            daemon.own(Path(root) / f)
    try:
        result = private_libvirtd.deploy_and_wait(daemon, side.xml, log, [debian.MARK_DONE, *debian.MARKS_STUCK],
                                                  BOOT_TIMEOUT)
    except AssertionError as exc:       # deploy refused the domain
        side.booted, side.address_kept, side.detail = False, False, f"not started: {str(exc).strip()[-300:]}"
        return
    report = debian.parse_report(result.text)
    side.booted = report.booted
    name = report.interface_with(debian.ADDRESS)
    side.address_kept = name is not None and report.nics.get(name, ("",))[0] == mac
    if report.booted:
        side.detail = (f"root={report.root} via {','.join(report.via)}; NICs "
                       + ", ".join(f"{n} {d} {' '.join(report.addresses.get(n, [])) or 'no address'}"
                                   for n, (_m, d) in report.nics.items()))
    else:
        side.detail = report.stuck or f"no report within {result.seconds:.0f} s"


def yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-boot", action="store_true", help="convert only")
    args = parser.parse_args(argv)
    os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
    os.environ["PYTHONPATH"] = os.pathsep.join([os.path.join(HERE, "..", "src"), os.environ.get("PYTHONPATH", "")])

    started = time.perf_counter()
    guest = debian.build(bootloader="grub")     # virt-v2v converts only guests with GRUB
    ova = debian.vmware_ova(guest)
    print(f"guest      {ova} ({os.path.getsize(ova) / (1 << 20):.0f} MiB OVA, kernel {guest.kernel_version}; "
          f"ready in {time.perf_counter() - started:.0f} s, cold build {guest.build_seconds:.0f} s)", flush=True)
    daemon, proc = private_libvirtd.start()
    work = daemon.workdir          # removed with the daemon
    try:
        sides = [run_vmferry(ova, work / "vmferry")]
        print(f"vmferry    converted in {sides[0].seconds:.1f} s", flush=True)
        sides.append(run_virt_v2v(ova, work / "virt-v2v"))
        if sides[1].seconds is not None:
            print(f"virt-v2v   converted in {sides[1].seconds:.1f} s", flush=True)
        if not args.no_boot:
            for side in sides:
                if side.xml is not None:
                    boot(daemon, side, guest.mac)
    finally:
        private_libvirtd.stop(proc, daemon.workdir.parent)

    print()
    print(f"{'':10} {'convert s':>10} {'booted':>7} {'address kept':>13} {'disk bus':>9} {'NIC':>8}  detail")
    for s in sides:
        secs = f"{s.seconds:.1f}" if s.seconds is not None else "-"
        print(f"{s.tool:10} {secs:>10} {yes(s.booted):>7} {yes(s.address_kept):>13} {s.disk_bus:>9} "
              f"{s.nic_model:>8}  {s.detail}")
    ours, theirs = sides
    if theirs.seconds:
        ratio = ours.seconds / theirs.seconds
        print(f"\nratio vmferry/virt-v2v conversion time: {ratio:.2f} (goal <= 0.5: {'met' if ratio <= 0.5 else 'NOT met'})")
    else:
        print(f"\nvirt-v2v {theirs.detail}")
    if not args.no_boot:
        ok = ours.booted and ours.address_kept and ours.disk_bus == "virtio" and ours.nic_model == "virtio"
        print(f"vmferry boots on virtio with the address kept: {'yes' if ok else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
