"""Launching a recovery point without changing it (test launches now, the recoveries of the next issue),
and the record of the last test of each replica."""

from __future__ import annotations

import os
from dataclasses import replace

from lxml import etree

from vmferry.replication import points
from vmferry.replication.store import ProtectionGroup, Store, TestResult


def launch_xml(group: ProtectionGroup, vm_name: str, point_id: str, workdir: str, *,
               network: str | None = None) -> str:
    """A domain definition that runs ``vm_name`` as of ``point_id`` without changing the point: each disk
    is a new qcow2 layer in ``workdir`` over the point's layer. ``network``: every NIC joins it (the
    target's isolated test network for a test; ``user`` for user-mode networking)."""
    vm = group.vm(vm_name)
    point = group.point(point_id)
    root = etree.parse(os.path.join(group.replica_dir, vm.domain_xml)).getroot()
    vm_dir = os.path.join(group.replica_dir, "vms", vm.vm) + os.sep
    os.makedirs(workdir, exist_ok=True)
    for ref in vm.disks:
        layer = os.path.join(points.point_dir(group, point.point_id), point.disk(ref.key).file)
        overlay = os.path.join(workdir, f"{ref.key}.launch.qcow2")
        points.create_overlay(overlay, layer, ref.size)
    for el in root.iter("source", "log"):
        for attr in ("file", "path"):
            value = el.get(attr)
            if value and value.startswith(vm_dir):
                rest = value[len(vm_dir):]
                if rest.endswith(".launch.qcow2") or rest == "console.log":
                    el.set(attr, os.path.join(workdir, rest))
    if network is not None:
        for iface in root.iter("interface"):
            for child in list(iface):
                if child.tag == "source":
                    iface.remove(child)
            if network == "user":
                iface.set("type", "user")
            else:
                iface.set("type", "network")
                etree.SubElement(iface, "source", network=network)
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def record_test(app: str, vm_name: str, point_id: str, ok: bool, detail: str = "", *,
                store: Store | None = None, rto_seconds: float | None = None, run: str = "") -> None:
    store = store or Store()
    with store.locked(app):
        group = store.load(app)
        vm = group.vm(vm_name)
        result = TestResult(point_id, points.now_iso(), ok, detail, rto_seconds, run)
        vms = tuple(replace(v, last_test=result) if v.vm == vm.vm else v for v in group.vms)
        store.save(replace(group, vms=vms))
