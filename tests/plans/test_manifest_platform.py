"""Manifest additions of issue 12: sites with `platform: libvirt`, components whose source is a running
libvirt domain or a package."""

from __future__ import annotations

import pytest
import yaml

from vmferry.errors import PlanError
from vmferry.plans.manifest import load_app

OVA_FREE = {"name": "shop", "components": {"db": {"source": {"domain": "shop-db"},
                                                  "nics": [{"network": "back", "address": "10.1.2.20/24"}]}}}


def _load(tmp_path, doc):
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_app(path)


def _sites(**dr):
    libvirt = {"uri": "qemu:///system", "storage": "replicas", "networks": {"back": "dr-back"},
               "test_network": "dr-test", **dr}
    return {"dc1": {"platform": "libvirt", "libvirt": {"uri": "qemu:///system", "storage": "/srv/dc1"}},
            "dr": {"platform": "libvirt", "libvirt": libvirt}}


def test_libvirt_sites_and_domain_components(tmp_path):
    app = _load(tmp_path, {**OVA_FREE, "sites": _sites()})
    db = app.components["db"]
    assert (db.source_kind, db.domain, db.package, db.system) == ("domain", "shop-db", "", None)
    assert db.nics[0].network == "back" and db.nics[0].address == "10.1.2.20"
    dr = app.sites["dr"]
    assert dr.platform == "libvirt" and dr.networks == {}
    assert dr.libvirt.storage_dir == str(tmp_path / "replicas")       # relative to the manifest
    assert dr.libvirt.network("back") == "dr-back" and dr.libvirt.network("front") is None
    assert dr.libvirt.test_network == "dr-test" and dr.libvirt.storage_pool is None
    assert app.sites["dc1"].libvirt.storage_dir == "/srv/dc1"


@pytest.mark.parametrize(("sites", "component", "message"), [
    ({"dr": {"platform": "vsphere", "libvirt": {"uri": "qemu:///system"}}}, None, "sites.dr.platform: must be one of libvirt"),
    ({"dr": {"platform": "libvirt"}}, None, "needs a libvirt: mapping"),
    ({"dr": {"libvirt": {"uri": "qemu:///system"}, "networks": {}}}, None, "sites.dr.libvirt: needs platform: libvirt"),
    (_sites(pool="p"), None, "exactly one of storage"),
    ({"dr": {"platform": "libvirt", "libvirt": {"storage": "/x"}}}, None, "missing key 'uri'"),
    ({"dr": {"platform": "libvirt", "libvirt": {"uri": "nope", "storage": "/x"}}}, None, "not a libvirt connection URI"),
    (_sites(test_network="dr-back"), None, "must be isolated"),
    (_sites(extra=1), None, "unknown key 'extra'"),
    (None, {"source": {"domain": "a", "package": "b.ova"}}, "exactly one of package"),
    (None, {"source": {"domain": "a"}, "package": "b.ova"}, "package: or source:, not both"),
    (None, {"source": {"domain": "a"}, "system": "x"}, "only a package source has systems"),
    (None, {"source": {"domain": "a"}, "nics": [{"address": "10.0.0.1/24"}]}, "missing key 'network'"),
    (None, {"source": {"vm": "a"}}, "unknown key 'vm'"),
    (None, {"nics": []}, "missing key 'package'"),
    (None, {"source": {"domain": "a/b"}}, "not a libvirt domain name"),
])
def test_bad_platforms_and_sources_are_refused_with_the_key_path(tmp_path, sites, component, message):
    doc = dict(OVA_FREE)
    if component is not None:
        doc["components"] = {"db": component}
    if sites is not None:
        doc["sites"] = sites
    with pytest.raises(PlanError) as info:
        _load(tmp_path, doc)
    assert message in str(info.value) and "app.yaml" in str(info.value)
