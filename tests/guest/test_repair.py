"""``vmferry guest repair`` on a real guest file system (libguestfs) holding one interface in each network
convention: ifupdown, systemd-networkd, netplan, NetworkManager keyfile and RHEL ifcfg. The repaired
copy is read back through libguestfs and every convention is checked in its own file.

The guest is the busybox test guest (tests/guestimage/build.py, "legacy": /dev/sda1 in fstab,
open-vm-tools files) with the convention files written into a qcow2 overlay, cached by recipe.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_vmferry
from tests.guestimage import build
from vmferry.tools.guestfs import Session
from vmferry.tools.proc import run

pytestmark = pytest.mark.slow

MACS = {name: f"00:50:56:00:00:{i:02x}" for i, name in enumerate(["ens161", "ens192", "ens193", "ens224", "ens256"])}
RECIPE: dict[str, tuple[str, int]] = {
    "/etc/network/interfaces": ("auto lo\niface lo inet loopback\n\nauto ens192\niface ens192 inet static\n"
                                "    address 10.0.0.5/24\n    gateway 10.0.0.1\n    dns-nameservers 10.0.0.2\n", 0o644),
    "/etc/systemd/network/20-ens224.network": ("[Match]\nName=ens224\n\n[Network]\nAddress=10.0.1.5/24\n"
                                               "Gateway=10.0.1.1\nDNS=10.0.1.2\n\n[Route]\nDestination=10.9.0.0/16\n"
                                               "Gateway=10.0.1.9\n", 0o644),
    "/etc/netplan/01-ens256.yaml": ("network:\n  version: 2\n  ethernets:\n    ens256:\n      addresses: [10.0.2.5/24]\n"
                                    "      routes:\n        - to: default\n          via: 10.0.2.1\n", 0o600),
    "/etc/NetworkManager/system-connections/ens161.nmconnection": (
        "[connection]\nid=ens161\nuuid=3c3f4a4e-5d1e-4f43-9a8e-6b1f1c2d3e41\ntype=ethernet\ninterface-name=ens161\n\n"
        "[ipv4]\nmethod=manual\naddress1=10.0.3.5/24,10.0.3.1\ndns=10.0.3.2;\n", 0o600),
    "/etc/sysconfig/network-scripts/ifcfg-ens193": ("DEVICE=ens193\nONBOOT=yes\nBOOTPROTO=none\nIPADDR=10.0.4.5\n"
                                                    "PREFIX=24\nGATEWAY=10.0.4.1\n", 0o644),
}
# what --generalize resets (the legacy guest already has /etc/hostname and a 70-persistent-net.rules)
GENERAL: dict[str, tuple[str, int]] = {
    "/etc/machine-id": ("4f1b2c3d4e5f40718293a4b5c6d7e8f9\n", 0o444),
    "/etc/ssh/ssh_host_ed25519_key": ("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-of-the-source\n", 0o600),
    "/etc/ssh/ssh_host_ed25519_key.pub": ("ssh-ed25519 AAAAC3Nz source\n", 0o644),
    "/usr/bin/ssh-keygen": ("#!/bin/sh\n", 0o755),
    "/var/lib/dhcp/dhclient.ens192.leases": ("lease { fixed-address 10.0.0.5; }\n", 0o644),
}
REMOVED: list[str] = []
# NIC order is the names' slot order: ens161, ens192, ens193, ens224, ens256; NIC 4 (netplan) is readdressed
SETTINGS = [f"vmferry.net.{i}.mac={mac}" for i, mac in enumerate(MACS.values())] + [
    "vmferry.net.4.address=192.0.2.10/24", "vmferry.net.4.gateway=192.0.2.1", "vmferry.net.4.dns=192.0.2.53"]


def _prepared(tmp_root: Path) -> Path:
    """The legacy guest with the convention files, as a cached qcow2 keyed by the recipe."""
    base = build.build("legacy")
    key = hashlib.sha256(json.dumps(["standalone qcow2", base.image, sorted(RECIPE.items()), sorted(GENERAL.items()),
                                     REMOVED]).encode()).hexdigest()[:16]
    image = build.cache_dir() / f"repair-conventions-{key}.qcow2"
    if not image.exists():
        tmp = image.with_suffix(".tmp")
        run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", base.image, str(tmp)])
        with Session(tmp, "qcow2") as s:
            for path, (text, mode) in {**RECIPE, **GENERAL}.items():
                s.write(path, text, mode=mode)
            for path in REMOVED:
                s.remove(path)
        os.replace(tmp, image)
    work = tmp_root / "guest.qcow2"      # a copy: vmferry opens no image whose backing file lies elsewhere
    shutil.copyfile(image, work)
    return work


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def repaired(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("repair")
    source = _prepared(tmp)
    before = _digest(source)
    dry = run_vmferry("guest", "repair", source, "--for", "kvm", "--dry-run", "--json", "--generalize",
                      *[a for s in SETTINGS for a in ("--set", s)], timeout=900)
    assert dry.returncode == 0, dry.stderr
    out = tmp / "repaired.qcow2"
    real = run_vmferry("guest", "repair", source, "--for", "kvm", "-o", out, "--json", "--generalize",
                       *[a for s in SETTINGS for a in ("--set", s)], timeout=900)
    assert real.returncode == 0, real.stderr
    assert _digest(source) == before            # the source image is never modified
    files = {}
    with Session(out, "qcow2", readonly=True) as s:
        for path in [*RECIPE, *(f"/etc/systemd/network/10-vmferry-{n}.link" for n in MACS), "/etc/fstab"]:
            files[path] = s.read_text(path)
        general = {p: s.read_text(p) if s.is_file(p) else None for p in
                   [*GENERAL, "/etc/hostname", "/etc/udev/rules.d/70-persistent-net.rules",
                    "/etc/systemd/system/vmferry-ssh-keygen.service"]}
        general["wants"] = s.readlink("/etc/systemd/system/multi-user.target.wants/vmferry-ssh-keygen.service")
        masks = {u: s.readlink(f"/etc/systemd/system/{u}") if s.is_symlink(f"/etc/systemd/system/{u}") else None
                 for u in ("open-vm-tools.service", "vgauth.service")}
        modes = {p: s.mode(p) for p in RECIPE}
    return {"dry": json.loads(dry.stdout), "report": json.loads(real.stdout), "files": files, "masks": masks,
            "modes": modes, "general": general}


def _ini(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.optionxform = str
    cp.read_string(text)
    return cp


def _link(repaired, name):
    text = repaired["files"][f"/etc/systemd/network/10-vmferry-{name}.link"]
    assert text is not None, f"no .link file pinning {name}"
    cp = _ini(text)
    return cp["Match"]["MACAddress"], cp["Link"]["Name"]


def test_ifupdown_name_pinned_to_the_mac_and_address_kept(repaired):
    assert repaired["files"]["/etc/network/interfaces"] == RECIPE["/etc/network/interfaces"][0]
    assert _link(repaired, "ens192") == (MACS["ens192"], "ens192")


def test_networkd_name_kept_pinned_to_the_mac_and_static_config_kept(repaired):
    assert repaired["files"]["/etc/systemd/network/20-ens224.network"] == \
        RECIPE["/etc/systemd/network/20-ens224.network"][0]
    assert _link(repaired, "ens224") == (MACS["ens224"], "ens224")
    cp = _ini(repaired["files"]["/etc/systemd/network/20-ens224.network"])
    assert dict(cp["Match"]) == {"Name": "ens224"}
    assert cp["Network"]["Address"] == "10.0.1.5/24" and cp["Network"]["DNS"] == "10.0.1.2"
    assert cp["Route"]["Destination"] == "10.9.0.0/16" and cp["Route"]["Gateway"] == "10.0.1.9"


def test_netplan_match_set_name_and_new_address(repaired):
    doc = yaml.safe_load(repaired["files"]["/etc/netplan/01-ens256.yaml"])
    eth = doc["network"]["ethernets"]["ens256"]
    assert eth["match"] == {"macaddress": MACS["ens256"]} and eth["set-name"] == "ens256"
    assert eth["addresses"] == ["192.0.2.10/24"] and eth["routes"] == [{"to": "default", "via": "192.0.2.1"}]
    assert eth["nameservers"] == {"addresses": ["192.0.2.53"]} and eth["dhcp4"] is False
    assert repaired["modes"]["/etc/netplan/01-ens256.yaml"] == 0o600          # netplan wants 0600: kept


def test_nm_keyfile_follows_the_mac_and_keeps_its_address(repaired):
    path = "/etc/NetworkManager/system-connections/ens161.nmconnection"
    cp = _ini(repaired["files"][path])
    assert "interface-name" not in cp["connection"] and cp["connection"]["uuid"].startswith("3c3f4a4e")
    assert cp["ethernet"]["mac-address"] == MACS["ens161"].upper()
    assert _link(repaired, "ens161") == (MACS["ens161"], "ens161")            # the name is kept too
    assert cp["ipv4"]["address1"] == "10.0.3.5/24,10.0.3.1" and cp["ipv4"]["dns"] == "10.0.3.2;"
    assert repaired["modes"][path] == 0o600                                   # NetworkManager ignores others


def test_ifcfg_hwaddr_and_name_pinned(repaired):
    text = repaired["files"]["/etc/sysconfig/network-scripts/ifcfg-ens193"]
    assert f"HWADDR={MACS['ens193'].upper()}\n" in text and "DEVICE=ens193\n" in text
    assert "IPADDR=10.0.4.5\n" in text and "GATEWAY=10.0.4.1\n" in text
    assert _link(repaired, "ens193") == (MACS["ens193"], "ens193")


def test_netplan_names_are_pinned_by_netplan_itself_not_by_a_link_file(repaired):
    # set-name is netplan's own pin (netplan generates the .link file from it at boot)
    assert repaired["files"]["/etc/systemd/network/10-vmferry-ens256.link"] is None


def test_fstab_tools_and_the_report(repaired):
    report = repaired["report"]
    assert repaired["files"]["/etc/fstab"].startswith(f"UUID={build.VARIANTS['legacy'].root_uuid} / ext4 ")
    assert repaired["masks"] == {"open-vm-tools.service": "/dev/null", "vgauth.service": "/dev/null"}
    by_file = {c["file"]: c for c in report["changes"]}
    assert by_file["/etc/fstab"]["old"].startswith("/dev/sda1 / ext4")
    assert by_file["/etc/netplan/01-ens256.yaml"]["old"] == RECIPE["/etc/netplan/01-ens256.yaml"][0]
    assert all(c["reason"] for c in report["changes"])
    assert report["source"] == ["vmware"]           # inferred from the initramfs (mptspi, vmxnet3)
    # the dry run listed exactly the changes the real run made
    assert [(c["file"], c["new"]) for c in repaired["dry"]["changes"]] == \
           [(c["file"], c["new"]) for c in report["changes"]]
    assert repaired["dry"]["dry_run"] is True


def test_refuses_to_modify_in_place_and_bad_targets(tmp_path):
    image = tmp_path / "x.img"
    image.write_bytes(b"\0" * 1024)
    r = run_vmferry("guest", "repair", image, "--for", "kvm")
    assert r.returncode == 2 and "in place" in r.stderr and r.stderr.count("\n") == 1
    r = run_vmferry("guest", "repair", image, "--for", "kvm,bhyve", "-o", tmp_path / "y.img")
    assert r.returncode == 2 and "bhyve" in r.stderr and not (tmp_path / "y.img").exists()
    r = run_vmferry("guest", "repair", image, "--for", "kvm", "--set", "vmferry.net.0.address=1.2.3.4")
    assert r.returncode == 2 and "prefix" in r.stderr


def test_generalize_resets_the_identity_of_the_copy(repaired):
    g = repaired["general"]
    assert g["/etc/machine-id"] == ""                       # systemd's convention: empty, not removed
    assert g["/etc/ssh/ssh_host_ed25519_key"] is None and g["/etc/ssh/ssh_host_ed25519_key.pub"] is None
    assert g["/var/lib/dhcp/dhclient.ens192.leases"] is None
    assert g["/etc/udev/rules.d/70-persistent-net.rules"] is None
    assert g["/etc/hostname"] == ""
    unit = configparser.ConfigParser()
    unit.read_string(g["/etc/systemd/system/vmferry-ssh-keygen.service"])
    assert unit["Service"]["ExecStart"] == "/usr/bin/ssh-keygen -A" and "ssh.service" in unit["Unit"]["Before"]
    assert g["wants"] == "/etc/systemd/system/vmferry-ssh-keygen.service"
    assert g["/usr/bin/ssh-keygen"] == "#!/bin/sh\n"              # the guest's tool itself is untouched
    report = json.dumps(repaired["report"])
    assert "secret-of-the-source" not in report                # private keys never appear in the report


def test_package_is_written_anew_with_its_boot_disk_repaired(tmp_path):
    """A VMware OVA of the legacy guest: the output is a VMware OVA whose guest names its root by UUID and
    pins eth0 to the MAC vmferry gives the NIC; the source OVA is untouched."""
    from tests.guest.test_end_to_end import vmware_ova
    from vmferry.dialects import read_package
    from vmferry.package import open_package
    from vmferry.targets.macs import nic_macs

    work = tmp_path / "work"
    work.mkdir()
    ova = vmware_ova(build.build("legacy"), work)
    before = _digest(ova)
    portable = read_package(open_package(str(ova)).envelope)
    mac = nic_macs(portable.systems[0], portable.default_profile)[0]
    out = tmp_path / "repaired.ova"
    res = run_vmferry("guest", "repair", ova, "--for", "kvm,vmware", "-o", out, "--json", timeout=900)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["image"] == str(out) and report["source"] == ["vmware"]
    assert _digest(ova) == before
    inspected = json.loads(run_vmferry("inspect", "--json", out).stdout)
    assert inspected["dialect"]["name"] == "vmware"
    doc = json.loads(run_vmferry("guest", out, "--json", timeout=900).stdout)
    names = {(d["where"], d["mountpoint"]): d["style"] for d in doc["report"]["disk_names"]}
    assert names[("/etc/fstab", "/")] == "uuid"
    pins = [b for b in doc["report"]["network"] if b["where"] == "/etc/systemd/network/10-vmferry-eth0.link"]
    assert [(b["kind"], b["interface"], b["mac"]) for b in pins] == [("mac", "eth0", mac)]
    assert doc["readiness"]["vmware"]["status"] == "ready"


def test_convert_repairs_and_reports_what_it_could_not(tmp_path):
    """convert --to kvm of an OVA whose guest configures five interfaces by name but has one NIC: the
    first (slot order) follows the NIC's MAC, each of the others is a VMF-KVM-004 finding."""
    from types import SimpleNamespace

    from tests.guest.test_end_to_end import vmware_ova

    raw = tmp_path / "conventions.img"
    run(["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", str(_prepared(tmp_path)), str(raw)])
    work = tmp_path / "work"
    work.mkdir()
    ova = vmware_ova(SimpleNamespace(image=str(raw), variant="conventions"), work)
    out = tmp_path / "kvm"
    res = run_vmferry("convert", ova, "--to", "kvm", "-o", out, "--domain-type", "qemu", "--json", timeout=900)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    unrepaired = sorted(f["message"].split("interface ")[1].split()[0] for f in doc["findings"]
                        if f["rule"] == "VMF-KVM-004" and "configured by name" in f["message"])
    assert unrepaired == ["ens192", "ens193", "ens224", "ens256"]
    repair = doc["repairs"][0]
    nm = next(c for c in repair["changes"] if c["file"].endswith("ens161.nmconnection"))
    from lxml import etree

    domain_mac = etree.parse(doc["domains"][0]).find("devices/interface/mac").get("address")
    assert f"mac-address={domain_mac.upper()}" in nm["new"]          # the guest follows the domain's MAC
    assert any(c["what"] == "guest /etc/fstab" for c in doc["changes"] if c["kind"] == "repaired")
