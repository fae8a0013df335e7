"""Static IP settings written as VMware vApp properties survive `convert --to dmtf` (as vmferry's
portable keys, in a descriptor with DMTF namespaces only) and come out of `vmferry env` in the form
cloud-init's OVF datasource applies."""

from __future__ import annotations

import json

from lxml import etree

from tests.ovfenv.conftest import DATA
from vmferry.ovf import names as N
from vmferry.summary import summarize
from vmferry.validate import validate_package


def test_vapp_static_ip_survives_dmtf_and_reaches_cloud_init(vmferry, tmp_path, cloud_init_read):
    dmtf = tmp_path / "portable.ovf"
    got = vmferry("convert", DATA / "vapp.ovf", "--to", "dmtf", "-o", dmtf, "--descriptor-only", "--json")
    assert got.returncode == 0, got.stderr
    assert any(f["rule"] == "VMF-PROP-010" for f in json.loads(got.stdout)["findings"])
    # standard: XSD-valid, DMTF namespaces only
    assert not [f for f in validate_package(dmtf, descriptor_only=True, strict=True).findings
                if f.severity == "error"]
    tree = etree.parse(str(dmtf))
    assert not any(str(el.tag).startswith(f"{{{N.VMW}}}") for el in tree.iter())
    # the settings are there under the portable keys
    props = {p.key: p.value for p in summarize(dmtf).systems[0].properties}
    assert props["vmferry.net.0.address"].startswith("192.0.2.10/")
    assert props["vmferry.net.0.gateway"] == "192.0.2.1"
    # and a guest gets them from the OVF environment, as cloud-init reads it
    iso = tmp_path / "seed.iso"
    assert vmferry("env", dmtf, "-o", iso).returncode == 0
    seen = cloud_init_read(iso)
    (iface,) = seen["interfaces"]
    (subnet,) = iface["subnets"]
    assert (subnet["type"], subnet["address"], subnet["prefix"], subnet["gateway"]) == \
        ("static", "192.0.2.10", 24, "192.0.2.1")
    assert subnet["dns_nameservers"] == ["192.0.2.53", "192.0.2.54"]
    assert seen["metadata"]["local-hostname"] == "app1"
