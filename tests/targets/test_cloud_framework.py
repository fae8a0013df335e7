"""The cloud targets' framework (vmferry.targets.clouds) on the samples: disks converted from inside the
OVA without extracting it, checked by qemu-img (not vmferry); the documents checked against the
providers' published field lists (tests/data/providers); atomic output; check rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import COT, DATA, run_vmferry
from tests.package.helpers import files_of, make_ova
from vmferry.tables.targets import names
from vmferry.tools.proc import run, run_json

PROVIDERS = DATA / "providers"
ENV = {"LIBGUESTFS_BACKEND_SETTINGS": "force_tcg"}


def glance_fields() -> dict:
    return json.loads((PROVIDERS / "glance-image.json").read_text())


def assert_glance_document(doc: dict) -> None:
    """Every field and property is one Glance publishes, and every enumerated value one it lists."""
    spec = glance_fields()
    assert set(doc) - {"properties", "file"} <= set(spec["image_fields"]), doc
    assert doc["disk_format"] in spec["disk_format"] and doc["container_format"] in spec["container_format"]
    assert doc["visibility"] in spec["visibility"]
    for key, value in doc["properties"].items():
        allowed = spec["properties"][key]          # KeyError: a property Glance does not document
        assert isinstance(value, str), (key, value)   # Glance properties are strings
        if isinstance(allowed, list):
            assert value in allowed, (key, value)
        elif allowed == "integer":
            assert value.isdigit() and int(value) > 0, (key, value)


def test_cloud_targets_are_converters_of_the_table():
    assert set(names(output="cloud")) >= {"openstack", "gce", "hyperv", "proxmox"}


def test_openstack_from_an_ova_without_extracting_it(tmp_path):
    ova = make_ova(tmp_path / "in.ova", files_of(COT, ["input.ovf", "input.mf", "input.vmdk", "input.iso",
                                                       "sample_cfg.txt"]))
    out = tmp_path / "osk"
    res = run_vmferry("convert", ova, "--to", "openstack", "-o", out, "--json", env=ENV, timeout=900)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    # the empty disk holds no OS: inspection fails, which is said, and the choice is the source's kind
    assert any(f["rule"] == "VMF-CLOUD-004" and "could not be inspected" in f["message"] for f in doc["findings"])
    assert doc["choices"][0]["disk_bus"] == "sata" and doc["choices"][0]["nic_model"] == "e1000"
    assert sorted(p.name for p in out.iterdir()) == ["input.glance.json", "input.qcow2", "test.report.json"]
    info = run_json(["qemu-img", "info", "--output=json", str(out / "input.qcow2")])
    assert info["format"] == "qcow2" and info["virtual-size"] == 1 << 30
    assert run(["qemu-img", "check", "-f", "qcow2", str(out / "input.qcow2")]).returncode == 0
    run(["qemu-img", "compare", "-f", "vmdk", "-F", "qcow2", str(COT / "input.vmdk"), str(out / "input.qcow2")])
    glance = json.loads((out / "input.glance.json").read_text())
    assert_glance_document(glance)
    assert glance["properties"]["hw_disk_bus"] == "sata" and glance["properties"]["hw_vif_model"] == "e1000"
    assert glance["min_ram"] == 4096 and glance["min_disk"] == 1
    report = json.loads((out / "test.report.json").read_text())
    assert any(c["kind"] == "dropped" and "cdrom" in c["what"] for c in report["changes"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ova", "osk"]   # nothing extracted, nothing left


def test_a_damaged_package_leaves_nothing(tmp_path):
    members = files_of(COT, ["input.ovf", "input.mf", "input.vmdk"])
    members = [(n, data[:-1] + bytes([data[-1] ^ 1]) if n == "input.vmdk" else data) for n, data in members]
    ova = make_ova(tmp_path / "bad.ova", members)
    for target in names(output="cloud"):
        res = run_vmferry("convert", ova, "--to", target, "-o", tmp_path / target, "--no-guest", timeout=300)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
        assert "bad.ova" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ova"]


def _ovf_with_disks(path: Path, capacities: list[int], nics: list[str] = ("VM Network",)) -> Path:
    disks = "".join(f'<Disk ovf:capacity="{c}" ovf:capacityAllocationUnits="byte" ovf:diskId="d{i}"/>'
                    for i, c in enumerate(capacities))
    items = "".join(f"<Item><rasd:AddressOnParent>{i}</rasd:AddressOnParent><rasd:ElementName>disk{i}"
                    f"</rasd:ElementName><rasd:HostResource>ovf:/disk/d{i}</rasd:HostResource><rasd:InstanceID>"
                    f"{100 + i}</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17"
                    "</rasd:ResourceType></Item>" for i in range(len(capacities)))
    nic_items = "".join(f"<Item><rasd:Connection>{n}</rasd:Connection><rasd:ElementName>nic{i}</rasd:ElementName>"
                        f"<rasd:InstanceID>{200 + i}</rasd:InstanceID><rasd:ResourceSubType>E1000"
                        "</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>"
                        for i, n in enumerate(nics))
    networks = "".join(f'<Network ovf:name="{n}"><Description>n</Description></Network>' for n in sorted(set(nics)))
    path.write_text(f"""<?xml version="1.0"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
 xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
 xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
 <References/>
 <DiskSection><Info>d</Info>{disks}</DiskSection>
 <NetworkSection><Info>n</Info>{networks}</NetworkSection>
 <VirtualSystem ovf:id="big"><Info>s</Info><Name>big</Name>
  <OperatingSystemSection ovf:id="96"><Info>os</Info></OperatingSystemSection>
  <VirtualHardwareSection><Info>hw</Info>
   <System><vssd:ElementName>h</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID>
    <vssd:VirtualSystemType>vmx-10</vssd:VirtualSystemType></System>
   <Item><rasd:ElementName>cpu</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>
    <rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
   <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>mem</rasd:ElementName>
    <rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType>
    <rasd:VirtualQuantity>1024</rasd:VirtualQuantity></Item>
   <Item><rasd:Address>0</rasd:Address><rasd:ElementName>scsi</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID>
    <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
   {items}{nic_items}
  </VirtualHardwareSection>
 </VirtualSystem>
</Envelope>
""")
    return path


def _check(path: Path, target: str) -> tuple[int, dict]:
    res = run_vmferry("check", path, "--target", target, "--descriptor-only", "--json")
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def test_check_rules_of_the_framework(tmp_path):
    many = _ovf_with_disks(tmp_path / "many.ovf", [1 << 30] * 32, nics=["a", "b"])
    code, doc = _check(many, "openstack")
    assert code == 0 and doc["verdict"] == "ready-after-convert"
    assert any(f["rule"] == "VMF-OSK-002" for f in doc["findings"])                    # two networks
    code, doc = _check(COT / "input.ovf", "openstack")
    rules = {f["rule"] for f in doc["findings"]}
    assert {"VMF-CLOUD-001", "VMF-CLOUD-006"} <= rules                  # properties; CD-ROMs and serial port


@pytest.mark.parametrize("target", ["openstack"])
def test_upload_is_refused_without_a_cloud_and_for_ovf_targets(tmp_path, target):
    res = run_vmferry("convert", COT / "input.ovf", "--to", "vmware", "-o", tmp_path / "v", "--upload")
    assert res.returncode == 2 and "cloud targets" in res.stderr
    res = run_vmferry("convert", COT / "input.ovf", "--to", target, "-o", tmp_path / "o", "--upload", "--no-guest")
    assert res.returncode == 2 and "clouds.yaml" in res.stderr


WITH_DISKS = [COT / "input.ovf", COT / "ubuntu.2.0.ovf", COT / "vmware.ovf"]


@pytest.mark.parametrize("target", ["openstack", "hyperv", "proxmox"])
@pytest.mark.parametrize("sample", WITH_DISKS, ids=lambda p: p.name)
def test_samples_with_disks_convert_with_identical_content(tmp_path, sample, target):
    """Every sample that carries its disks: the written disks hold the source's bytes (qemu-img compare
    against the source VMDK), in the target's format, and each written document is listed in the report."""
    from lxml import etree

    out = tmp_path / "out"
    res = run_vmferry("convert", sample, "--to", target, "-o", out, "--no-guest", "--json", timeout=300)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    root = etree.parse(str(sample)).getroot()
    hrefs = [v for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).localname == "File"
             for k, v in el.attrib.items() if k.endswith("}href")]
    fmt = {"openstack": "qcow2", "hyperv": "vhdx", "proxmox": "qcow2"}[target]
    assert doc["files"] and all(f["format"] == fmt for f in doc["files"])
    for f in doc["files"]:
        source = COT / f["source"]
        assert f["source"] in hrefs
        info = run_json(["qemu-img", "info", "--output=json", str(out / f["href"])])
        assert info["format"] == fmt and info["virtual-size"] == f["virtual_size"]
        run(["qemu-img", "compare", "-f", "vmdk", "-F", fmt, str(source), str(out / f["href"])])
    assert sorted(p.name for p in out.iterdir()) == sorted([f["href"] for f in doc["files"]] +
                                                           [d["href"] for d in doc["documents"]])


@pytest.mark.parametrize("target", names(output="cloud"))
def test_check_reads_every_sample_for_every_cloud_target(target):
    from tests.conftest import ALL_SAMPLES

    for sample in ALL_SAMPLES:
        res = run_vmferry("check", sample, "--target", target, "--descriptor-only", "--json")
        assert res.returncode in (0, 1) and res.stderr == "", (sample, res.stderr)
        doc = json.loads(res.stdout)
        assert doc["target"] == target and doc["verdict"] in ("ready", "ready-after-convert", "not-ready")
