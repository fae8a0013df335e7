"""gce, hyperv and proxmox on small real packages (disks made with sfdisk/sgdisk and qemu-img, not vmferry),
outputs checked with tools that are not vmferry: qemu-img info/compare, GNU tar, COT (Proxmox's OVF),
sh -n, and the published field and parameter lists in tests/data/providers."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import COT, DATA, run_vmferry
from tests.portability.test_convert import cot  # noqa: F401 - the COT fixture (its own venv)
from vmferry.tools.proc import run, run_json

PROVIDERS = DATA / "providers"
OVF_NS = "http://schemas.dmtf.org/ovf/envelope/1"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"


def make_disk(path: Path, size: int, table: str | None) -> Path:
    """A raw disk with a partition table written by sfdisk (MBR, first partition active) or sgdisk (GPT
    with an EFI system partition), or none; some bytes in it, the rest a hole."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    if table == "mbr":
        run(["sfdisk", "-q", str(path)], input="label: dos\nstart=2048, type=83, bootable\n")
    elif table == "gpt":
        run(["sgdisk", "-o", "-n", "1:2048:+16M", "-t", "1:ef00", "-n", "2:0:0", "-t", "2:8300", str(path)])
    with open(path, "r+b") as fh:
        fh.seek(4 << 20)
        fh.write(b"vmferry test data " * 1000)
    return path


SYSTEM = """<VirtualSystem ovf:id="{name}"><Info>s</Info><Name>{name}</Name>
  <OperatingSystemSection ovf:id="96" vmw:osType="debian11_64Guest"><Info>os</Info></OperatingSystemSection>
  <VirtualHardwareSection><Info>hw</Info>
   <System><vssd:ElementName>h</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID>
    <vssd:VirtualSystemType>vmx-14</vssd:VirtualSystemType></System>
   <Item><rasd:ElementName>cpu</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>
    <rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
   <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>mem</rasd:ElementName>
    <rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType>
    <rasd:VirtualQuantity>512</rasd:VirtualQuantity></Item>
   <Item><rasd:Address>0</rasd:Address><rasd:ElementName>scsi</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID>
    <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
   {items}
   <Item><rasd:Address>00:50:56:aa:bb:{mac}</rasd:Address><rasd:Connection>VM Network</rasd:Connection>
    <rasd:ElementName>nic</rasd:ElementName><rasd:InstanceID>9</rasd:InstanceID>
    <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
   {config}
  </VirtualHardwareSection>
 </VirtualSystem>"""


def make_package(folder: Path, disks: list[tuple[int, str | None]], *, efi: bool = False, secure: bool = False,
                 systems: int = 1) -> Path:
    """An OVF folder as VMware exports it (streamOptimized VMDKs made by qemu-img, LSI Logic, VMXNET3)."""
    folder.mkdir(parents=True)
    refs, disk_section, items = [], [], []
    for i, (size, table) in enumerate(disks):
        raw = make_disk(folder / f".raw{i}", size, table)
        run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", str(raw),
             str(folder / f"disk{i}.vmdk")])
        raw.rename(folder.parent / f"{folder.name}-disk{i}.raw")   # kept beside, for comparisons
        refs.append(f'<File ovf:href="disk{i}.vmdk" ovf:id="f{i}"/>')
        disk_section.append(f'<Disk ovf:capacity="{size}" ovf:capacityAllocationUnits="byte" ovf:diskId="d{i}" '
                            f'ovf:fileRef="f{i}" ovf:format="http://www.vmware.com/interfaces/specifications/'
                            'vmdk.html#streamOptimized"/>')
        items.append(f"<Item><rasd:AddressOnParent>{i}</rasd:AddressOnParent><rasd:ElementName>disk{i}"
                     f"</rasd:ElementName><rasd:HostResource>ovf:/disk/d{i}</rasd:HostResource><rasd:InstanceID>"
                     f"{4 + i}</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17"
                     "</rasd:ResourceType></Item>")
    config = ""
    if efi:
        config += '<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>'
    if secure:
        config += '<vmw:Config ovf:required="false" vmw:key="uefi.secureBoot.enabled" vmw:value="true"/>'
    body = "".join(SYSTEM.format(name=f"vm{n}", items="".join(items), config=config, mac=f"{n:02x}")
                   for n in range(systems))
    if systems > 1:
        body = f'<VirtualSystemCollection ovf:id="pair"><Info>c</Info>{body}</VirtualSystemCollection>'
    (folder / "vm.ovf").write_text(f"""<?xml version="1.0"?>
<Envelope xmlns="{OVF_NS}" xmlns:ovf="{OVF_NS}" xmlns:rasd="{RASD}" xmlns:vmw="http://www.vmware.com/schema/ovf"
 xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
 <References>{''.join(refs)}</References>
 <DiskSection><Info>d</Info>{''.join(disk_section)}</DiskSection>
 <NetworkSection><Info>n</Info><Network ovf:name="VM Network"><Description>n</Description></Network></NetworkSection>
 {body}
</Envelope>
""")
    return folder


def convert(src: Path, target: str, out: Path, *extra) -> dict:
    res = run_vmferry("convert", src, "--to", target, "-o", out, "--no-guest", "--json", *extra, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


# ---- gce ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_gce_archive_of_a_package_read_by_gnu_tar(tmp_path, table):
    pkg = make_package(tmp_path / "pkg", [((300 << 20) + 512 * 3, table)])
    doc = convert(pkg, "gce", tmp_path / "gce")
    assert any(f["rule"] == "VMF-CLOUD-003" for f in doc["findings"])   # not a whole GiB: grown
    (archive,) = (tmp_path / "gce").glob("*.tar.gz")
    out = run(["tar", "--list", "--verbose", "--gzip", "--file", str(archive)]).stdout.split()
    assert out[-1] == "disk.raw" and int(out[2]) == 1 << 30
    run(["tar", "--extract", "--sparse", "--gzip", "--file", str(archive), "-C", str(tmp_path)])
    run(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(tmp_path / "pkg-disk0.raw"), str(tmp_path / "disk.raw")])
    report = json.loads(next((tmp_path / "gce").glob("*.report.json")).read_text())
    assert any(c["what"].endswith("partition table") and c["detail"].startswith(table) for c in report["changes"])


def test_gce_refuses_a_boot_disk_without_a_bootable_partition(tmp_path):
    for name, table in (("none", None), ("sample", "cot")):
        src = make_package(tmp_path / name, [(64 << 20, None)]) if table is None else COT / "input.ovf"
        res = run_vmferry("convert", src, "--to", "gce", "-o", tmp_path / f"{name}-gce", "--no-guest", timeout=300)
        assert res.returncode == 2 and "VMF-GCE-001" in res.stderr and res.stderr.count("\n") == 1, res.stderr
        assert not (tmp_path / f"{name}-gce").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary left


def test_gce_check_rules(tmp_path):
    from tests.targets.test_cloud_framework import _ovf_with_disks

    huge = _ovf_with_disks(tmp_path / "huge.ovf", [3 << 40, (5 << 30) + 512])
    res = run_vmferry("check", huge, "--target", "gce", "--descriptor-only", "--json")
    doc = json.loads(res.stdout)
    rules = {f["rule"]: f for f in doc["findings"]}
    assert res.returncode == 1 and doc["verdict"] == "not-ready"
    assert rules["VMF-CLOUD-005"]["severity"] == "error"          # a 3 TiB boot disk: 2 TiB at most
    assert rules["VMF-CLOUD-003"]["fixed_by"] == "convert"         # 5 GiB + 512 bytes: grown to 6 GiB
    secure = make_package(tmp_path / "sb", [(64 << 20, "gpt")], efi=True, secure=True)
    res = run_vmferry("check", secure / "vm.ovf", "--target", "gce", "--descriptor-only", "--json")
    assert any(f["rule"] == "VMF-GCE-002" for f in json.loads(res.stdout)["findings"])


# ---- hyperv ---------------------------------------------------------------------------------------

def ps_segments(line: str) -> list[list[str]]:
    """The commands of one PowerShell line as word lists: single-quoted strings ('' is a quote),
    double-quoted strings, and ``|``, ``(``, ``)`` outside quotes separating commands."""
    segments, words, word, i, quoted = [], [], "", 0, False
    while i < len(line):
        ch = line[i]
        if ch == "'":
            end = i + 1
            while True:
                end = line.index("'", end)
                if line[end + 1:end + 2] == "'":
                    end += 2
                    continue
                break
            word += line[i + 1:end].replace("''", "'")
            quoted, i = True, end + 1
            continue
        if ch == '"':
            end = line.index('"', i + 1)
            word += line[i + 1:end]
            quoted, i = True, end + 1
            continue
        if ch in " \t|()":
            if word or quoted:
                words.append(word)
            word, quoted = "", False
            if ch in "|()":
                segments.append(words)
                words = []
        else:
            word += ch
        i += 1
    if word or quoted:
        words.append(word)
    segments.append(words)
    return [w for w in segments if w]


def cmdlet_calls(script: str) -> list[tuple[str, dict[str, str | None]]]:
    """(cmdlet, {parameter: value}) of every command of the script, pipelines and sub-expressions split."""
    calls = []
    for line in script.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("[") or line.startswith("param(") or \
                re.match(r"^\$\w+ = '[^']*'$", line) or line.startswith("$ErrorActionPreference"):
            continue
        line = re.sub(r"^\$\w+ = ", "", line)
        for words in ps_segments(line):
            if not re.fullmatch(r"[A-Z][a-z]+-[A-Za-z]+", words[0]):
                continue   # an argument in parentheses (a variable), not a command
            params, i = {}, 1
            while i < len(words):
                if words[i].startswith("-") and len(words[i]) > 1:
                    value = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("-") else None
                    params[words[i][1:]] = value
                    i += 2 if value is not None else 1
                else:
                    i += 1
            calls.append((words[0], params))
    return calls


def assert_hyperv_script(script: str) -> list[tuple[str, dict]]:
    spec = json.loads((PROVIDERS / "hyperv-cmdlets.json").read_text())
    calls = cmdlet_calls(script)
    for cmdlet, params in calls:
        assert cmdlet in spec["cmdlets"], cmdlet
        assert set(params) <= set(spec["cmdlets"][cmdlet]), (cmdlet, params)
        for key, value in params.items():
            if key in spec["values"]:
                assert value in spec["values"][key], (cmdlet, key, value)
    return calls


def test_hyperv_generation_1_from_a_bios_vm(tmp_path):
    pkg = make_package(tmp_path / "pkg", [(64 << 20, "mbr"), (32 << 20, None)])
    doc = convert(pkg, "hyperv", tmp_path / "hv", "--switch", "LAN 'A'")
    out = tmp_path / "hv"
    for i, d in enumerate(("disk0.vhdx", "disk1.vhdx")):
        info = run_json(["qemu-img", "info", "--output=json", str(out / d)])
        assert info["format"] == "vhdx" and info["virtual-size"] == (64 << 20 if i == 0 else 32 << 20)
        run(["qemu-img", "compare", "-f", "raw", "-F", "vhdx", str(tmp_path / f"pkg-disk{i}.raw"), str(out / d)])
    script = next(out.glob("*.create-vm.ps1")).read_text()
    calls = assert_hyperv_script(script)
    new_vm = dict(calls)["New-VM"]
    assert new_vm["Generation"] == "1" and new_vm["MemoryStartupBytes"] == "512MB"
    assert ("Add-VMHardDiskDrive", {"VMName": "$Name", "ControllerType": "IDE", "ControllerNumber": "0",
                                    "ControllerLocation": "1", "Path": None}) in calls   # Path: ( Join-Path ... )
    assert ("Join-Path", {}) in calls and "(Join-Path $VhdFolder 'disk1.vhdx')" in script
    assert "param([string]$SwitchName = 'LAN ''A''', [string]$VhdFolder = $PSScriptRoot)" in script
    assert "-StaticMacAddress '005056AABB00'" in script
    assert doc["choices"][0]["disk_bus_value"] == "IDE" and "Set-VMFirmware" not in script


def test_hyperv_generation_2_with_the_linux_secure_boot_template(tmp_path):
    pkg = make_package(tmp_path / "pkg", [(64 << 20, "gpt")], efi=True, secure=True)
    res = run_vmferry("check", pkg / "vm.ovf", "--target", "hyperv", "--descriptor-only", "--json")
    assert any(f["rule"] == "VMF-HYV-003" for f in json.loads(res.stdout)["findings"])
    doc = convert(pkg, "hyperv", tmp_path / "hv")
    calls = assert_hyperv_script(next((tmp_path / "hv").glob("*.create-vm.ps1")).read_text())
    assert dict(calls)["New-VM"]["Generation"] == "2" and doc["choices"][0]["disk_bus_value"] == "SCSI"
    assert ("Set-VMFirmware", {"VMName": "$Name", "EnableSecureBoot": "On",
                               "SecureBootTemplate": "MicrosoftUEFICertificateAuthority"}) in calls


# ---- proxmox --------------------------------------------------------------------------------------

def qm_reading(ovf: Path) -> dict:
    """What Proxmox's OVF import takes from ``ovf``, read the way its parser documents it (XPath on the
    OVF 1.x namespaces): name, cores, memory, ostype id, disks (address, file, capacity), NIC models."""
    ns = {"ovf": OVF_NS, "rasd": RASD}
    root = etree.parse(str(ovf))
    vs = "/ovf:Envelope/ovf:VirtualSystem"
    one = {rt: root.xpath(f"{vs}/ovf:VirtualHardwareSection/ovf:Item[rasd:ResourceType={rt}]/rasd:VirtualQuantity",
                          namespaces=ns) for rt in (3, 4)}
    assert len(one[3]) == 1 and len(one[4]) == 1   # findvalue would join several into one string
    disks = []
    for item in root.xpath(f"{vs}/ovf:VirtualHardwareSection/ovf:Item[rasd:ResourceType=17]", namespaces=ns):
        host = item.findtext(f"{{{RASD}}}HostResource")
        m = re.fullmatch(r"ovf:/([A-Za-z0-9._~-]+)/([A-Za-z0-9._~-]+)", host)
        assert m, host
        disk = root.xpath(f"/ovf:Envelope/ovf:DiskSection/ovf:Disk[@ovf:diskId='{m.group(2)}']", namespaces=ns)[0]
        fileref = disk.get(f"{{{OVF_NS}}}fileRef")
        assert re.fullmatch(r"[A-Za-z0-9._~/-]+", fileref)
        href = root.xpath(f"/ovf:Envelope/ovf:References/ovf:File[@ovf:id='{fileref}']/@ovf:href", namespaces=ns)[0]
        assert re.fullmatch(r"[A-Za-z0-9.+=_-]+", href) and (ovf.parent / href).exists()
        units = re.fullmatch(r"\s*byte\s*\*\s*(\d+)\s*\^\s*(\d+)\s*", disk.get(f"{{{OVF_NS}}}capacityAllocationUnits"))
        parent = item.findtext(f"{{{RASD}}}Parent")
        kind = root.xpath(f"{vs}/ovf:VirtualHardwareSection/ovf:Item[rasd:InstanceID='{parent}']/rasd:ResourceType",
                          namespaces=ns)[0].text
        disks.append({"address": {"5": "ide", "6": "scsi", "20": "sata"}[kind] + item.findtext(f"{{{RASD}}}AddressOnParent"),
                      "file": href, "capacity": int(disk.get(f"{{{OVF_NS}}}capacity")) *
                      int(units.group(1)) ** int(units.group(2))})
    nics = [i.findtext(f"{{{RASD}}}ResourceSubType").lower() for i in
            root.xpath(f"{vs}/ovf:VirtualHardwareSection/ovf:Item[rasd:ResourceType=10]", namespaces=ns)]
    return {"name": re.sub(r"[^a-zA-Z0-9.-]", "", root.xpath(f"{vs}/ovf:Name", namespaces=ns)[0].text),
            "cores": one[3][0].text, "memory": one[4][0].text, "disks": disks, "nics": nics,
            "ostype_id": root.xpath(f"{vs}/ovf:OperatingSystemSection/@ovf:id", namespaces=ns)[0]}


def test_proxmox_ovf_is_read_by_cot_and_holds_what_qm_importovf_reads(tmp_path, cot):  # noqa: F811
    pkg = make_package(tmp_path / "pkg", [(64 << 20, "mbr"), (32 << 20, None)], efi=True)
    doc = convert(pkg, "proxmox", tmp_path / "pve", "--vmid", "123", "--bridge", "vmbr1")
    out = tmp_path / "pve"
    (ovf,) = out.glob("*.ovf")
    seen = qm_reading(ovf)
    assert (seen["cores"], seen["memory"], seen["ostype_id"]) == ("2", "512", "96")
    assert [d["address"] for d in seen["disks"]] == ["sata0", "sata1"]   # not inspected: SATA (the widest)
    for i, d in enumerate(seen["disks"]):
        info = run_json(["qemu-img", "info", "--output=json", str(out / d["file"])])
        assert info["format"] == "qcow2" and info["virtual-size"] == d["capacity"]
        run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(tmp_path / f"pkg-disk{i}.raw"),
             str(out / d["file"])])
    res = subprocess.run([str(cot), "--force", "info", "--verbose", str(ovf)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert re.search(r"disk0\.qcow2 .* 64 MiB harddisk @ SATA 0:0", res.stdout), res.stdout   # COT's reading
    assert re.search(r"disk1\.qcow2 .* 32 MiB harddisk @ SATA 0:1", res.stdout), res.stdout
    assert re.search(r"None \(default\)\s+2\s+512 MiB\s+1\s+0\s+2 /\s+96 MiB", res.stdout), res.stdout
    script = next(out.glob("*.qm.sh"))
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert 'VMID="${VMID:-123}"' in text and 'BRIDGE="${BRIDGE:-vmbr1}"' in text
    qm_set = next(line for line in text.splitlines() if line.startswith("qm set"))
    assert "--bios ovmf" in qm_set and "--machine q35" in qm_set and "--boot order=sata0" in qm_set
    assert '--net0 e1000,bridge="$BRIDGE",macaddr=00:50:56:AA:BB:00' in qm_set and "--ostype l26" in qm_set
    assert any(f["rule"] == "VMF-PVE-002" for f in doc["findings"])


def test_proxmox_check_rules(tmp_path):
    from tests.targets.test_cloud_framework import _ovf_with_disks

    many = _ovf_with_disks(tmp_path / "many.ovf", [1 << 30] * 32)
    res = run_vmferry("check", many, "--target", "proxmox", "--descriptor-only", "--json")
    assert res.returncode == 1 and any(f["rule"] == "VMF-CLOUD-002" for f in json.loads(res.stdout)["findings"])
    pair = make_package(tmp_path / "pair", [(64 << 20, "mbr")], systems=2)
    res = run_vmferry("check", pair / "vm.ovf", "--target", "proxmox", "--descriptor-only", "--json")
    assert any(f["rule"] == "VMF-PVE-001" for f in json.loads(res.stdout)["findings"])
    doc = convert(pair, "proxmox", tmp_path / "pve")        # one OVF and one qm script per system
    assert sorted(p.name for p in (tmp_path / "pve").glob("*.ovf")) == ["vm0.ovf", "vm1.ovf"]
    assert sorted(p.name for p in (tmp_path / "pve").glob("*.qm.sh")) == ["vm0.qm.sh", "vm1.qm.sh"]
    assert len(doc["choices"]) == 2
