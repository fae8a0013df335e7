"""Boot a disk image in QEMU (TCG) with the disk bus and NIC model a cloud's documents name, the way
the cloud's hypervisor attaches them (Nova's libvirt driver for Glance's properties, Compute Engine's
virtio-scsi and virtio-net), and read the serial console until a marker appears or the guest stops."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# Glance's hw_disk_bus -> QEMU devices for drive d0 (what Nova's libvirt driver gives the guest)
DISK_BUS = {
    "virtio": ["-device", "virtio-blk-pci,drive=d0,bootindex=0"],
    "scsi": ["-device", "virtio-scsi-pci,id=s0", "-device", "scsi-hd,bus=s0.0,drive=d0,bootindex=0"],
    "sata": ["-device", "ahci,id=a0", "-device", "ide-hd,bus=a0.0,drive=d0,bootindex=0"],
    "ide": ["-device", "ide-hd,bus=ide.0,drive=d0,bootindex=0"],
}
# Glance's hw_vif_model / Compute Engine's nicType -> QEMU NIC device
NIC_MODEL = {"virtio": "virtio-net-pci", "VIRTIO_NET": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e",
             "rtl8139": "rtl8139"}


@dataclass
class Boot:
    text: str
    found: str | None
    exited: bool
    argv: list[str]


def boot(image: Path, fmt: str, *, bus: str, nic: str, machine: str = "q35", until: list[str],
         log: Path, timeout: float = 240, memory: int = 384) -> Boot:
    argv = ["qemu-system-x86_64", "-machine", f"{machine},accel=tcg", "-m", str(memory), "-smp", "1",
            "-display", "none", "-no-reboot", "-nodefaults", "-serial", f"file:{log}",
            "-drive", f"file={image},format={fmt},if=none,id=d0,snapshot=on", *DISK_BUS[bus],
            "-netdev", "user,id=n0", "-device", f"{NIC_MODEL[nic]},netdev=n0"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    text, found = "", None
    try:
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            found = next((m for m in until if m in text), None)
            if found or proc.poll() is not None:
                break
            time.sleep(1)
        text = log.read_text(errors="replace") if log.exists() else ""
        found = found or next((m for m in until if m in text), None)
        return Boot(text, found, proc.poll() is not None, argv)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
