"""Issue 3 acceptance: static IP settings written as VMware vApp properties survive ``convert --to dmtf``
and come out of ``vmferry env`` in the form cloud-init reads."""

from __future__ import annotations

import json
import re

from tests.ovfenv.conftest import DATA
from vmferry.netconv import write_profiled
from vmferry.portable import PropertySpec, Variant

EXPECTED = {"type": "static", "address": "192.0.2.10", "prefix": 24, "netmask": "255.255.255.0",
            "gateway": "192.0.2.1", "dns_nameservers": ["192.0.2.53", "192.0.2.54"],
            "dns_search": ["corp.example.com", "example.com"]}


def test_vapp_static_ip_survives_dmtf_and_reaches_cloud_init(vmferry, tmp_path, cloud_init_read):
    out = tmp_path / "dmtf"
    got = vmferry("convert", DATA / "vapp.ovf", "--to", "dmtf", "-o", out)
    assert got.returncode == 0, got.stderr
    descriptor = (out / "vapp.ovf").read_text()
    assert 'ovf:key="vmferry.net.0.address"' in descriptor

    iso = tmp_path / "seed.iso"
    assert vmferry("env", out / "vapp.ovf", "-o", iso).returncode == 0
    read = cloud_init_read(iso)
    assert read["metadata"]["local-hostname"] == "app1"
    assert read["interfaces"][0]["subnets"] == [EXPECTED]

    # The portable keys alone carry the settings: drop the VAMI section and read again.
    portable_only = re.sub(r'<ProductSection ovf:class="vami".*?</ProductSection>', "", descriptor, flags=re.S)
    assert 'ovf:class="vami"' not in portable_only and "ip0" not in portable_only
    (out / "vapp.ovf").write_text(portable_only)
    (out / "vapp.mf").unlink()
    iso2 = tmp_path / "seed2.iso"
    got = vmferry("env", out / "vapp.ovf", "-o", iso2, "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["network"]["0"]["origin"] == "vmferry"
    read2 = cloud_init_read(iso2)
    assert read2["interfaces"][0]["subnets"] == [EXPECTED]
    assert read2["metadata"]["local-hostname"] == "app1"


def test_write_profiled_keeps_profile_values():
    props = [PropertySpec("ip0", value="192.0.2.10", values=[Variant("198.51.100.10", ("lab",))]),
             PropertySpec("netmask0", value="255.255.255.0", values=[Variant("255.255.255.128", ("lab",))]),
             PropertySpec("gateway", value="192.0.2.1")]
    out = {p.key: p for p in write_profiled(props, ["production", "lab"])}
    addr = out["vmferry.net.0.address"]
    assert addr.value == "192.0.2.10/24"
    assert [(v.value, v.profiles) for v in addr.values] == [("198.51.100.10/25", ("lab",))]
    assert out["vmferry.net.0.gateway"].values == []          # the same in every profile
