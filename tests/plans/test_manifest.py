"""Manifest validation: bad input gives one line naming the file and the key, exit 2, no output."""

from __future__ import annotations

import pytest

from tests.plans.servers import edit_yaml
from vmferry.cli.main import main
from vmferry.plans import load_app


def test_example_reads(example):
    app = load_app(example)
    assert sorted(app.components) == ["app", "db", "web1", "web2"]
    assert app.components["app"].system == "app" and [n.network for n in app.components["app"].nics] == ["back", "data"]
    assert app.components["db"].nics[0].network == "data"          # from the package, not the manifest
    cert = app.certificates[0]
    assert cert.ip_sans == ("10.1.1.11", "10.1.1.12")              # read from certs/web.pem
    assert cert.dns_names == ("www.shop.example.test",)
    assert app.services["ldap"].is_identity and app.sites["cloud"].networks["data"].mtu == 1450


def test_addresses_from_package_properties(example):
    """Without nics: in the manifest, addresses come from the package's vmferry.net.* properties."""
    pkg = example.parent / "packages" / "web.ovf"
    pkg.write_text(pkg.read_text().replace('ovf:key="0.address" ovf:type="string" ovf:userConfigurable="true" '
                                           'ovf:value=""', 'ovf:key="0.address" ovf:type="string" '
                                           'ovf:userConfigurable="true" ovf:value="10.1.1.50/25"'))
    edit_yaml(example, lambda d: d["components"]["web2"].pop("nics"))
    nic = load_app(example).components["web2"].nics[0]
    assert (nic.network, nic.address, nic.prefix) == ("front", "10.1.1.50", 25)


CASES = [
    (lambda d: d["components"]["web1"].update(colour="blue"), "components.web1: unknown key 'colour'"),
    (lambda d: d["components"]["web1"].update(nics=[{"address": "10.1.1.300/24"}]),
     "components.web1.nics[0].address: '10.1.1.300/24' is not an IP address"),
    (lambda d: d["components"]["web1"].update(nics=[{"network": "back"}]),
     "components.web1.nics[0].network: 'back' differs from the package's 'front'"),
    (lambda d: d["components"]["db"].update(system="cache"), "components.db.system: "),
    (lambda d: d["components"]["db"].pop("system"), "holds 2 systems"),
    (lambda d: d["components"]["db"].update(package="packages/missing.ova"), "components.db.package: cannot read"),
    (lambda d: d["dependencies"].append({"from": "app", "to": "cache"}), "dependencies[5].to: 'cache' is neither"),
    (lambda d: d["dependencies"].append({"from": "app", "to": "service:redis"}), "unknown service 'redis'"),
    (lambda d: d["load_balancer"]["pools"][0]["members"].append("web3"), "load_balancer.pools[0].members: unknown"),
    (lambda d: d["firewall"].append({"from": "web9", "to": "db"}), "firewall[6].from: 'web9' is not any"),
    (lambda d: d["dns"]["records"].append({"name": "x", "type": "MX", "address": "10.0.0.1"}), "dns.records[4].type"),
    (lambda d: d["sites"]["cloud"]["networks"]["data"].update(pool="10.20.4.1-10.20.4.9"), "is not a range inside"),
    (lambda d: d["sites"]["dc1"]["networks"]["front"].update(gateway="10.9.9.9"), "is not in 10.1.1.0/24"),
    (lambda d: d["moves"][0]["readdress"].append({"from": "10.1.3.0/24", "to": "10.20.0.0/16"}),
     "must have the same family and prefix length"),
    (lambda d: d.pop("components"), "missing key 'components'"),
    (lambda d: d["moves"][0].update(overrides={"db": {1: "10.20.3.9"}}), "moves[0].overrides.db: db has no NIC 1"),
    (lambda d: d["moves"][0].update(overrides={"dbx": {0: "10.20.3.9"}}), "moves[0].overrides: unknown key 'dbx'"),
    (lambda d: d["moves"][0].update(overrides={"db": {0: "ten"}}), "moves[0].overrides.db.0: 'ten' is not an IP"),
]


@pytest.mark.parametrize("change, message", CASES)
def test_bad_manifest_one_line_exit_2(example, capsys, change, message):
    edit_yaml(example, change)
    code = main(["plan", str(example), "--from", "dc1", "--to", "cloud", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert str(example) in captured.err and message in captured.err


def test_yaml_syntax_error_names_the_line(tmp_path, capsys):
    path = tmp_path / "app.yaml"
    path.write_text("name: shop\ncomponents:\n  web1: {package: [\n")
    assert main(["plan", str(path), "--from", "a", "--to", "b"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "not valid YAML" in err and "line 4" in err


def test_unknown_site_and_usage(example, capsys):
    assert main(["plan", str(example), "--from", "dc1", "--to", "mars"]) == 2
    assert "unknown site 'mars'" in capsys.readouterr().err
    assert main(["plan", str(example), "--from", "dc1"]) == 2
    assert "give both --from and --to" in capsys.readouterr().err
    assert main(["plan", str(example), "--ss", "app"]) == 2
    assert "COMPONENT=FILE" in capsys.readouterr().err


def test_vmware_vapp_addresses_are_read(example):
    """Source addresses in VMware's vApp convention (ip0/netmask0) are understood through netconv."""
    pkg = example.parent / "packages" / "web.ovf"
    text = pkg.read_text()
    start = text.index('<ProductSection ovf:class="vmferry.net"')
    end = text.index("</ProductSection>", start) + len("</ProductSection>")
    pkg.write_text(text[:start] + """<ProductSection>
      <Info>vApp network settings</Info>
      <Property ovf:key="ip0" ovf:type="string" ovf:value="10.1.1.77"/>
      <Property ovf:key="netmask0" ovf:type="string" ovf:value="255.255.255.0"/>
      <Property ovf:key="gateway" ovf:type="string" ovf:value="10.1.1.1"/>
    </ProductSection>""" + text[end:])
    edit_yaml(example, lambda d: d["components"]["web1"].pop("nics"))
    nic = load_app(example).components["web1"].nics[0]
    assert (nic.network, nic.address, nic.prefix) == ("front", "10.1.1.77", 24)


def test_component_from_an_ova(example, tmp_path):
    """A component may come from an OVA (read in place, not unpacked)."""
    src = tmp_path / "db-dir"
    src.mkdir()
    (src / "backend.ovf").write_bytes((example.parent / "packages" / "backend.ovf").read_bytes())
    ova = example.parent / "packages" / "backend.ova"
    assert main(["pack", str(src), "-o", str(ova)]) == 0
    edit_yaml(example, lambda d: d["components"]["db"].update(package="packages/backend.ova"))
    app = load_app(example)
    assert app.components["db"].package.endswith("backend.ova")
    assert [(n.network, n.address) for n in app.components["db"].nics] == [("data", "10.1.3.30")]
