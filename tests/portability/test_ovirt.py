"""oVirt / RHV descriptors (virt-v2v -o rhv / -o vdsm, the engine's OVA and export domain) keep their CPUs,
memory, disks and OS through `inspect` and `convert --to dmtf|kvm`. Each expected value is read from
the XML here with plain XPath, independently of vmferry's OVF model."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import OVIRT, run_vmferry
from vmferry.dialects import read_package
from vmferry.ovf import Envelope
from vmferry.summary import summarize
from vmferry.tables.os_ovirt import from_ovirt
from vmferry.validate import validate_package

SAMPLES = sorted(OVIRT.glob("*.ovf"))
UNITS = {None: 1, "byte * 2^30": 1 << 30}


def _local(tree, name: str) -> list:
    return tree.xpath(f"//*[local-name()='{name}']")


def _ovf(el, name: str) -> str | None:
    return next((v for k, v in el.attrib.items() if k.rsplit("}", 1)[-1] == name), None)


def xml_facts(path: Path) -> dict:
    """CPUs, memory, disk capacities and count, OS name and NIC MACs as the XML states them."""
    tree = etree.parse(str(path))
    cpu = next(i for i in _local(tree, "Item") if i.xpath("string(*[local-name()='ResourceType'])") == "3")
    value = lambda el, n: el.xpath(f"string(*[local-name()='{n}'])")  # noqa: E731
    sockets, cores = int(value(cpu, "num_of_sockets")), int(value(cpu, "cpu_per_socket"))
    threads = int(value(cpu, "threads_per_cpu") or 1)
    memory = next(i for i in _local(tree, "Item") if value(i, "ResourceType") == "4")
    assert value(memory, "AllocationUnits") == "MegaBytes"
    disks = _local(tree, "Disk")
    capacities = [int(_ovf(d, "capacity")) * UNITS[_ovf(d, "capacityAllocationUnits")] for d in disks]
    os_section = next(el for el in tree.iter() if isinstance(el.tag, str) and (
        el.tag.endswith("OperatingSystemSection") or (_ovf(el, "type") or "").endswith("OperatingSystemSection_Type")))
    os_text = os_section.xpath("string(*[local-name()='Description'])")
    disk_items = [i for i in _local(tree, "Item") if value(i, "ResourceType") == "17"]
    macs = [value(i, "MACAddress") for i in _local(tree, "Item") if value(i, "ResourceType") == "10"]
    return {"cpus": sockets * cores * threads, "topology": (sockets, cores, threads),
            "memory_mib": int(value(memory, "VirtualQuantity")), "capacities": capacities,
            "disk_items": len(disk_items), "os": os_text, "macs": macs,
            "interfaces": [_ovf(d, "disk-interface") for d in disks]}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_inspect_reads_what_the_xml_says(path):
    want = xml_facts(path)
    got = json.loads(run_vmferry("inspect", "--json", path).stdout)
    system = got["systems"][0]
    assert got["dialect"]["name"] == "ovirt"
    assert system["cpus"] == want["cpus"]
    assert system["memory_mib"] == want["memory_mib"]
    assert [d["capacity_bytes"] for d in got["disks"]] == want["capacities"]
    assert len(system["disks"]) == want["disk_items"] == len(want["capacities"])
    assert all(d["disk_id"] for d in system["disks"])                  # every image path resolved to its Disk
    assert [d["controller_model"] for d in system["disks"]] == want["interfaces"]
    assert [n["mac"] for n in system["nics"]] == want["macs"]
    row = from_ovirt(system["os"]["vendor_type"])
    assert row is not None and row == from_ovirt(want["os"])           # the oVirt name, or its display name


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_portable_profile_keeps_topology_os_and_files(path):
    want = xml_facts(path)
    pkg = read_package(Envelope.from_file(path))
    vm = pkg.systems[0]
    cpu = vm.cpu_for(None)
    sockets, cores, threads = want["topology"]
    assert (cpu.count, cpu.sockets, cpu.cores_per_socket, cpu.threads_per_core or 1) == \
        (want["cpus"], sockets, cores, threads)
    row = from_ovirt(want["os"])
    assert (vm.os.family, vm.os.libosinfo, vm.os.version) == (row.family, row.libosinfo, row.version)
    files = {f.id for f in pkg.files}
    assert [d.file_id in files for d in vm.disks] == [True] * want["disk_items"]    # none written blank
    assert {d.format for d in vm.disks} <= {"qcow2", "raw"}


def test_virt_v2v_ovirt_flavour_name_wins_over_its_generic_ovirt_id():
    """virt-v2v writes ovirt:id 5 (other Linux) with Description rhel_8x64 for a RHEL 8 guest."""
    vm = read_package(Envelope.from_file(OVIRT / "v2v-vdsm-ovirt-rhel8.ovf")).systems[0]
    assert (vm.os.ovirt, vm.os.distro, vm.os.version, vm.os.bits) == ("rhel_8x64", "rhel", "8", 64)
    assert [n.model for n in vm.nics] == ["virtio", "e1000"]
    assert {d.kind for d in vm.devices} >= {"video", "sound"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_oVirt_descriptors_validate_by_default_and_fail_strict(path):
    assert validate_package(path, descriptor_only=True).ok
    strict = validate_package(path, descriptor_only=True, strict=True)
    assert not strict.ok and {f.rule for f in strict.findings if f.severity == "error"} == {"VMF-XSD-001"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_convert_to_dmtf_keeps_cpus_memory_disks_and_os(tmp_path, path):
    want = xml_facts(path)
    out = tmp_path / "out.ovf"
    result = run_vmferry("convert", path, "--to", "dmtf", "-o", out, "--descriptor-only")
    assert result.returncode == 0, result.stderr
    summary = summarize(out)
    system = summary.systems[0]
    assert system.cpus == want["cpus"] and system.memory_mib == want["memory_mib"]
    assert [d.capacity_bytes for d in summary.disks] == want["capacities"]
    assert len(system.disks) == want["disk_items"]
    assert system.os.cim_id == from_ovirt(want["os"]).cim
    assert validate_package(out, descriptor_only=True, strict=True).ok


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_convert_to_kvm_keeps_cpus_topology_memory_disks_and_os(tmp_path, path):
    want = xml_facts(path)
    out = tmp_path / "vm"
    result = run_vmferry("convert", path, "--to", "kvm", "-o", out, "--descriptor-only", "--no-guest")
    assert result.returncode == 0, result.stderr
    domain = etree.parse(str(next(out.glob("*.xml"))))
    assert int(domain.findtext("vcpu")) == want["cpus"]
    topo = domain.find("cpu/topology")
    assert (int(topo.get("sockets")), int(topo.get("cores")), int(topo.get("threads"))) == want["topology"]
    assert int(domain.findtext("memory")) == want["memory_mib"] and domain.find("memory").get("unit") == "MiB"
    assert len(domain.findall("devices/disk[@device='disk']")) == want["disk_items"]
    os_id = domain.xpath("//*[local-name()='os'][@id]/@id")
    assert os_id == [f"http://libosinfo.org/os/{from_ovirt(want['os']).libosinfo}"]
    assert [m.get("address") for m in domain.findall("devices/interface/mac")] == want["macs"]
    # not inspected: the disk bus follows the source's ovf:disk-interface (virtio there, virtio here)
    buses = {t.get("bus") for t in domain.findall("devices/disk[@device='disk']/target")}
    assert buses == ({"virtio"} if want["interfaces"][0].startswith("VirtIO") else {"ide"})


def _package(tmp_path: Path, path: Path) -> Path:
    """A real package: the descriptor and, at each File's href, an image of the Disk's capacity and format."""
    env = Envelope.from_file(path)
    root = tmp_path / "pkg"
    root.mkdir()
    shutil.copy(path, root / path.name)
    for disk in env.disks:
        backing = env.file_for_ref(disk.file_ref)
        target = root / backing.href
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", disk.format_name, str(target), str(disk.capacity_bytes)],
                       check=True)
    return root / path.name


@pytest.mark.parametrize("name", ["v2v-vdsm-ovirt-rhel8.ovf", "v2v-rhv-windows.ovf"])
def test_convert_to_kvm_with_the_images_writes_every_disk(tmp_path, name):
    """With its images present (IMAGEGROUP/IMAGE paths of an export domain too), every disk is converted
    to a qcow2 of the Disk's capacity."""
    want = xml_facts(OVIRT / name)
    descriptor = _package(tmp_path, OVIRT / name)
    out = tmp_path / "vm"
    result = run_vmferry("convert", descriptor, "--to", "kvm", "-o", out, "--no-guest")
    assert result.returncode == 0, result.stderr
    domain = etree.parse(str(next(out.glob("*.xml"))))
    sources = [Path(d.get("file")) for d in domain.findall("devices/disk[@device='disk']/source")]
    assert len(sources) == want["disk_items"]
    for source, capacity in zip(sources, want["capacities"], strict=True):
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-f", "qcow2", str(source)],
                                         capture_output=True, text=True, check=True).stdout)
        assert info["virtual-size"] == capacity


def test_template_placeholder_instance_ids_lose_no_item(tmp_path):
    """virt-v2v's test expectations carry ``#UUID#`` for every generated InstanceId: Items repeating a
    general InstanceID are all kept (the NIC after the video, RNG and balloon Items is not dropped)."""
    import re

    text = (OVIRT / "v2v-vdsm-ovirt-rhel8.ovf").read_text()
    uuid_ids = re.compile(r"<rasd:InstanceId>[0-9a-f]{8}-[0-9a-f-]{27}</rasd:InstanceId>")
    templated = uuid_ids.sub("<rasd:InstanceId>#UUID#</rasd:InstanceId>", text)
    assert templated.count("#UUID#") >= 5
    path = tmp_path / "templated.ovf"
    path.write_text(templated)
    want = xml_facts(OVIRT / "v2v-vdsm-ovirt-rhel8.ovf")
    system = summarize(path).systems[0]
    assert [n.mac for n in system.nics] == want["macs"]
    vm = read_package(Envelope.from_file(path)).systems[0]
    assert [n.model for n in vm.nics] == ["virtio", "e1000"]
    assert {d.kind for d in vm.devices} >= {"video", "sound"}
    assert len(vm.disks) == want["disk_items"]


def test_ovirt_os_numbers_and_display_names():
    assert from_ovirt("37").key == from_ovirt("windows_2022").key == from_ovirt("Windows 2022").key == "win2022-64"
    assert from_ovirt("31").key == "win2019-64" and from_ovirt("24").key == "rhel7-64"
    assert from_ovirt("RHEL6x64").key == "rhel6-64" and from_ovirt("OtherLinux").family == "linux"
    assert from_ovirt("rhel_8x64").version == "8" and from_ovirt("12345") is None and from_ovirt("") is None


def test_kvm_machine_is_q35_for_new_windows_and_pc_for_old():
    """libosinfo ids are matched whole: win2k22/win2k19/win2k8 are not Windows 2000 (win2k)."""
    from vmferry.portable import OsSpec, PortableVM
    from vmferry.targets.kvm import choose_machine

    def machine(osinfo: str) -> str:
        return choose_machine(PortableVM(id="vm", os=OsSpec(libosinfo=osinfo)), None)

    assert [machine(i) for i in ("win2k22", "win2k19", "win2k8r2", "win10", "rhel8.0")] == ["q35"] * 5
    assert [machine(i) for i in ("win2k", "winxp", "win2k3")] == ["pc"] * 3
