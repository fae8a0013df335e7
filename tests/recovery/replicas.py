"""Replicas for the recovery tests, prepared directly (until protect/sync make them): per VM a
recovery point whose layer is a qcow2 over the VM's first full copy, laid out as protect keeps them
(``<storage>/<app>/points/<point>/<vm>.<disk>.qcow2``, each layer backed by ``../<parent>/<same name>``),
and the domain definition written by the same writer ``convert --to kvm`` uses."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vmferry.plans.order import boot_order
from vmferry.recovery.model import AppCheck, Probe, RecoveryPlan, RecoveryVm, TargetNetwork, VmDisk, VmNic
from vmferry.targets.libvirt_xml import DiskPlan, DomainPlan, NicPlan, domain_xml
from vmferry.tools.proc import run

FIRST, POINT = "20261201T010000Z-1", "20261201T020000Z-2"
SUBNET, GATEWAY = "10.77.0.0/24", "10.77.0.1"


def make_replica(storage: Path, app: str, vm: str, image: Path) -> Path:
    first = storage / app / "points" / FIRST / f"{vm}.vda.qcow2"
    top = storage / app / "points" / POINT / f"{vm}.vda.qcow2"
    first.parent.mkdir(parents=True, exist_ok=True)
    top.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image, first)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", f"../{FIRST}/{first.name}", top],
        cwd=top.parent)
    for f in (first, top):
        os.chmod(f, 0o444)
    return top


def replica_domain(vm: str) -> str:
    """The domain convert --to kvm writes for the virtio test guest (pc machine, virtio disk and NIC)."""
    return domain_xml(DomainPlan(name=vm, domain_type="kvm", machine="pc", vcpus=1, sockets=1, cores=1,
                                 memory_mib=128, disks=[DiskPlan(f"/replica/{vm}.qcow2", "qcow2", "virtio", boot_order=1)],
                                 nics=[NicPlan("dr-app", "virtio", "52:54:00:77:00:%02x" % (sum(map(ord, vm)) % 256))]))


def vm_spec(storage: Path, app: str, component: str, image: Path, host: int, probes: tuple[Probe, ...],
            *, tcp: str = "", timeout: float = 400.0, agent: bool = True) -> RecoveryVm:
    top = make_replica(storage, app, component, image)
    env = (("vmferry.test.tcp", tcp),) if tcp else ()
    return RecoveryVm(component=component, name=component, domain_xml=replica_domain(component),
                      disks=(VmDisk("vda", str(top)),),
                      nics=(VmNic(0, "dr-app", f"10.77.0.{host}", 24),), env=env, probes=probes,
                      agent=agent, timeout=timeout)


def plan_for(app: str, uri: str, storage: Path, vms: list[RecoveryVm], depends: list[tuple[str, str]],
             checks: tuple[AppCheck, ...] = ()) -> RecoveryPlan:
    groups, cycles = boot_order([v.component for v in vms], depends)
    return RecoveryPlan(app=app, site="dr", uri=uri, storage=str(storage), point_id=POINT,
                        taken_at="2026-12-01T02:00:00+00:00", vms=tuple(vms),
                        groups=tuple(tuple(g) for g in groups), networks=(TargetNetwork("dr-app", SUBNET, GATEWAY),),
                        checks=checks, cycles=tuple(tuple(c) for c in cycles),
                        domain_type="qemu")   # the private daemon's QEMU (nobody) cannot open /dev/kvm here
